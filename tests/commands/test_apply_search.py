"""A capacity search end to end against the simulator, whose capacity is known: with
--max-streams N, a stream beyond N waits a whole answer (ttft + 7 x itl = 380 ms) before its
TTFT starts, so a closed loop of N + 1 streams puts >= 1 in 6 requests far above the 80 ms TTFT
SLO, while N streams keep TTFT at 30 ms: 50 ms of margin a busy machine does not cross."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from apply_helpers import manifest, run_dirs, simulator
from cli_helpers import run_cli

from runner.errors import EXIT_GATE, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK
from runner.schema import load_schema

PLAN = """\
version: 1
name: cap
inventory: {server: sim, fallback: false}
benchmarks:
  - name: knee
    models: "*"
    workload: {synthetic: {input_tokens: 16}, max_tokens: 8}
    load: {search: {over: concurrency, from: 1, to: 24, precision: 0.01}, requests: 24}
    slo: {ttft_ms: {p95: 80}}
"""
SIM = ("--models", "tiny", "--ttft-ms", "30", "--itl-ms", "50", "--output-tokens", "8")


def _apply(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
           streams: int) -> tuple[int, str, dict]:
    with simulator(*SIM, "--max-streams", str(streams)) as (url, _):
        configs = tmp_path / "configs"
        configs.mkdir(exist_ok=True)
        (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {url}\n")
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        plan = tmp_path / "p.yaml"
        plan.write_text(PLAN)
        code, out, err = run_cli(capsys, "apply", str(plan), "--results",
                                 str(tmp_path / "results"), "--quiet", "--gate")
    assert code == EXIT_OK, err  # with --gate: the trials that miss the SLO do not gate
    return code, out, manifest(run_dirs(tmp_path / "results", "cap")[-1])


def test_the_search_finds_the_simulators_capacity_and_compare_gates_its_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, out, first = _apply(tmp_path, capsys, monkeypatch, streams=4)
    assert "capacity tiny: 4 streams (ttft_ms p95 <= 80 bound it; 6 trials) [knee]" in out
    [record] = first["capacity"]
    jsonschema.validate(record, {"$ref": "#/$defs/capacity",
                                 "$defs": load_schema("result")["$defs"]})
    assert record["capacity"] == 4 and record["unit"] == "streams"
    assert record["last_pass"] == "knee/tiny/concurrency=4"
    assert record["first_fail"] == "knee/tiny/concurrency=5"
    assert record["bound_by"]["metric"] == "ttft_ms" and record["bound_by"]["value"] > 80
    assert not record["bound_hit"] and record["stopped_reason"] == "precision"
    ids = [job["id"] for job in first["jobs"]]
    assert ids == [f"knee/tiny/concurrency={c}" for c in (1, 2, 4, 8, 6, 5)]
    assert [job["status"] for job in first["jobs"]] == ["ok"] * 6 and first["status"] == "ok"
    page = (run_dirs(tmp_path / "results", "cap")[-1] / "report.html").read_text()
    assert "Capacity tiny: 4 streams" in page and "SLO limit 80" in page
    assert "knee: 4 streams" in page

    _, out, second = _apply(tmp_path, capsys, monkeypatch, streams=2)
    assert second["capacity"][0]["capacity"] == 2, out
    code, out, err = run_cli(capsys, "compare", "previous", "latest", "--plan", "cap",
                             "--results", str(tmp_path / "results"), "--gate", "--metric",
                             "ttft_p50")
    assert code == EXIT_GATE
    [row] = [x for x in out.splitlines() if x.strip().startswith(">>  capacity")]
    assert row.split()[2:6] == ["streams", "4.00", "2.00", "-2.00"], row
    # the trials each search chose (8, 6, 5 and 3) are its own: no "missing from NEW"
    assert "missing from NEW" not in out + err
    code, out, _ = run_cli(capsys, "history", "--metric", "capacity", "--format", "json",
                           "--results", str(tmp_path / "results"))
    assert code == EXIT_OK
    [series] = [s for s in json.loads(out)["series"] if s["job_id"] == "knee/tiny#capacity"]
    assert [p["value"] for p in series["points"]] == [4, 2]


def test_a_search_without_an_slo_is_refused_where_it_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN.replace("    slo: {ttft_ms: {p95: 80}}\n", ""))
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID
    assert f"{plan}:8:20: a capacity search needs the benchmark's slo" in out + err


SWEEP_PLAN = """\
version: 1
name: sw
inventory: {server: sim, fallback: false}
benchmarks:
  - name: sweep
    models: "*"
    workload: {synthetic: {input_tokens: 16}, max_tokens: 8}
    load: {sweep: {rates: 3, concurrency: 8}, requests: 40}
"""
SWEEP_SIM = ("--models", "tiny", "--ttft-ms", "30", "--itl-ms", "5", "--output-tokens", "8")


def test_a_sweep_runs_constant_rates_between_the_measured_sync_and_max_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with simulator(*SWEEP_SIM, "--max-streams", "4") as (url, _):
        configs = tmp_path / "configs"
        configs.mkdir()
        (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {url}\n")
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        plan = tmp_path / "sw.yaml"
        plan.write_text(SWEEP_PLAN)
        code, out, err = run_cli(capsys, "apply", str(plan), "--results",
                                 str(tmp_path / "results"), "--quiet")
    assert code == EXIT_OK, err
    [run] = run_dirs(tmp_path / "results", "sw")
    jobs = manifest(run)["jobs"]
    assert [j["id"] for j in jobs[:2]] == ["sweep/tiny/concurrency=1", "sweep/tiny/concurrency=8"]
    summaries = [json.loads((run / "jobs" / f"{j['slug']}.json").read_text()) for j in jobs]
    low, high = (s["metrics"]["throughput"]["requests_per_s"] for s in summaries[:2])
    # one stream answers in 65 ms (about 15 req/s); four at once (the simulator's limit) 4x that
    assert 10 < low < 16 and 2.5 * low < high < 4.2 * low
    rates = [j["params"]["rate"] for j in jobs[2:]]
    assert len(rates) == 3 and low < rates[0] < rates[1] < rates[2] < high
    assert all(j["params"]["arrival"] == "constant" for j in jobs[2:])
    assert all(j["status"] == "ok" for j in jobs) and f"rate={rates[0]!r}" in out


def test_an_slo_check_with_no_data_does_not_decide_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tpot_ms of non-streamed answers has no value: the search stops there and says so, not
    'even the first point missed the SLO: lower search.from'."""
    with simulator(*SIM) as (url, _):
        configs = tmp_path / "configs"
        configs.mkdir()
        (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {url}\n")
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        plan = tmp_path / "p.yaml"
        plan.write_text(PLAN.replace("max_tokens: 8}", "max_tokens: 8, stream: false}")
                        .replace("requests: 24", "requests: 4").replace("to: 24", "to: 4")
                        .replace("ttft_ms: {p95: 80}", "tpot_ms: {p95: 60}"))
        code, out, err = run_cli(capsys, "apply", str(plan), "--results",
                                 str(tmp_path / "results"), "--quiet")
    assert code == EXIT_OK, err
    [record] = manifest(run_dirs(tmp_path / "results", "cap")[-1])["capacity"]
    jsonschema.validate(record, {"$ref": "#/$defs/capacity",
                                 "$defs": load_schema("result")["$defs"]})
    assert record["capacity"] is None and record["first_fail"] is None
    assert record["stopped_reason"] == "no_data"
    # the trial that ran is in the record, with why it decided nothing (it was left out)
    [trial] = record["trials"]
    assert trial["outcome"] == "no_data" and trial["metric"] is None
    assert trial["value"] == 1 and trial["id"].endswith("concurrency=1")
    assert "no data for the SLO check tpot_ms p95" in out
    assert "; 1 trial)" in out  # the recap counts it (it said 0 trials)
    assert "lower search.from" not in out


def test_a_search_interrupted_between_trials_resumes_with_its_done_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C after the second trial: --resume (the command the run prints) runs the search
    again, its two done trials taken from the run, and records one capacity (it said 'none of
    the selected jobs belong to run', exit 3)."""
    import signal

    from runner.results.store import RunStore

    write_job = RunStore.write_job
    written: list[str] = []

    def write_then_interrupt(self: RunStore, summary: Any) -> None:
        write_job(self, summary)
        written.append(summary["id"])
        if len(written) == 2:
            signal.raise_signal(signal.SIGINT)  # handled before write_job returns

    with simulator(*SIM, "--max-streams", "4") as (url, _):
        configs = tmp_path / "configs"
        configs.mkdir()
        (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {url}\n")
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        plan = tmp_path / "p.yaml"
        plan.write_text(PLAN)
        results = str(tmp_path / "results")
        with monkeypatch.context() as patch:
            patch.setattr(RunStore, "write_job", write_then_interrupt)
            code, out, err = run_cli(capsys, "apply", str(plan), "--results", results,
                                     "--quiet", "--no-report")
        assert code == EXIT_INTERRUPTED, err
        [run] = run_dirs(tmp_path / "results", "cap")
        assert f"--resume {run}" in out + err
        code, out, err = run_cli(capsys, "apply", str(plan), "--results", results, "--quiet",
                                 "--no-report", "--resume", str(run))
    assert code == EXIT_OK, out + err
    done = manifest(run)
    ids = [job["id"] for job in done["jobs"]]
    assert ids == [f"knee/tiny/concurrency={c}" for c in (1, 2, 4, 8, 6, 5)]
    assert {job["search"] for job in done["jobs"]} == {"knee/tiny"}
    [record] = done["capacity"]
    assert record["capacity"] == 4 and record["stopped_reason"] == "precision"
    assert "ok (resumed)" in out and written[:2] == ids[:2]


@pytest.mark.parametrize("load", [
    "{search: {over: concurrency, from: 1, to: 2}, requests: 4}",
    "{sweep: {rates: 1, concurrency: 2}, requests: 4}",
])
def test_a_search_not_started_when_the_run_was_interrupted_runs_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    load: str,
) -> None:
    """Ctrl-C during model a's search: model b's search had recorded nothing, so --resume
    warned 'not part of run ... start a new run for them', never ran it, and called the run
    ok with 'capacity b: none (interrupted)'."""
    import signal

    from runner.results.store import RunStore

    write_job = RunStore.write_job

    def write_then_interrupt(self: RunStore, summary: Any) -> None:
        write_job(self, summary)
        signal.raise_signal(signal.SIGINT)  # after the first job of model a's search

    with simulator("--models", "a,b", "--ttft-ms", "5", "--itl-ms", "1", "--output-tokens",
                   "4") as (url, _):
        configs = tmp_path / "configs"
        configs.mkdir()
        (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {url}\n")
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        plan = tmp_path / "p.yaml"
        plan.write_text(PLAN.replace("models: \"*\"", "models: \"a,b\"")
                        .replace(PLAN.splitlines()[7].strip(), f"load: {load}"))
        results = str(tmp_path / "results")
        with monkeypatch.context() as patch:
            patch.setattr(RunStore, "write_job", write_then_interrupt)
            code, out, err = run_cli(capsys, "apply", str(plan), "--results", results,
                                     "--quiet", "--no-report")
        assert code == EXIT_INTERRUPTED, err
        [run] = run_dirs(tmp_path / "results", "cap")
        assert manifest(run)["status"] == "interrupted"
        [row] = [line for line in out.splitlines() if line.startswith("knee       b")]
        assert "pending" in row and " pending=2" in out  # b, and a's next trial
        code, out, err = run_cli(capsys, "apply", str(plan), "--results", results, "--quiet",
                                 "--no-report", "--resume", str(run))
    assert code == EXIT_OK, out + err
    assert "not part of run" not in err
    done = manifest(run)
    assert {job["model"] for job in done["jobs"]} == {"a", "b"}
    assert {job["status"] for job in done["jobs"]} == {"ok"} and done["status"] == "ok"
    assert all(job.get("search") for job in done["jobs"])  # no planned-search entry is left
    if "search" in load:
        assert sorted((r["model"], r["stopped_reason"]) for r in done["capacity"]) == [
            ("a", "bound"), ("b", "bound")]
