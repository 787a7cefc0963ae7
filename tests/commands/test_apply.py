"""`runner apply` end to end against the simulator: results, faults, interrupts, resume, locks."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from apply_helpers import apply_process, jsonl_lines, manifest, run_dirs, simulator, wait_for
from cli_helpers import run_cli

from runner.errors import EXIT_GATE, EXIT_INTERRUPTED, EXIT_JOBS_FAILED, EXIT_OK, EXIT_STALE

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-sim-secret-5c1d9e"


def test_demo_plan_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", "plans/demo.yaml", "--results", str(results))
    assert code == EXIT_OK, err
    assert "RECAP" in out and "jobs: ok=4 slo_missed=0 failed=0 skipped=0 interrupted=0" in out
    [run] = run_dirs(results, "demo")
    data = manifest(run)
    assert data["status"] == "ok" and data["inventory"]["source"] == "live"
    assert [j["status"] for j in data["jobs"]] == ["ok"] * 4
    for job in data["jobs"]:
        summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
        assert summary["metrics"]["requests"]["ok"] == job["params"]["requests"]
        lines = jsonl_lines(run / "jobs" / f"{job['slug']}.requests.jsonl")
        assert len(lines) == job["params"]["requests"] + job["params"]["warmup_requests"]
        assert all(line["ok"] for line in lines)
    with sqlite3.connect(results / "index.sqlite") as db:
        assert db.execute("select count(*) from jobs").fetchone() == (4,)
        assert db.execute("select status from runs").fetchall() == [("ok",)]


def write_setup(tmp_path: Path, url: str, plan_body: str) -> tuple[Path, Path]:
    configs = tmp_path / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "servers.yaml").write_text(
        f"servers:\n  sim:\n    url: {url}\n    api_key_env: SIM_KEY\n    timeout_s: 5\n")
    plan = tmp_path / "p.yaml"
    plan.write_text(plan_body)
    return configs, plan


SLOW_PLAN = """\
version: 1
name: p
inventory: {server: sim, fallback: false}
benchmarks:
  - name: b
    models: all
    workload: {synthetic: {input_tokens: 16}, max_tokens: 40}
    load: {concurrency: 2, requests: 6, request_timeout_s: 10}
    matrix: {max_tokens: [40, 41, 42]}
"""


def test_server_killed_mid_job_fails_that_job_and_the_run_goes_on(tmp_path: Path) -> None:
    with simulator("--models", "m1", "--itl-ms", "25", "--api-key-env", "SIM_KEY",
                   env={"SIM_KEY": SECRET}) as (url, proc):
        configs, plan = write_setup(tmp_path, url, SLOW_PLAN)
        env = {"RUNNER_CONFIG_DIR": str(configs), "SIM_KEY": SECRET}
        apply = apply_process(str(plan), "--results", "results", cwd=tmp_path, env=env)
        first = lambda: sorted((tmp_path / "results" / "p").glob("*/jobs/*.requests.jsonl"))  # noqa: E731
        wait_for(lambda: first() and first()[0].stat().st_size > 0, what="first records")
        proc.kill()
        out, err = apply.communicate(timeout=60)
    assert apply.returncode == EXIT_JOBS_FAILED, err
    [run] = run_dirs(tmp_path / "results", "p")
    jobs = manifest(run)["jobs"]
    assert [j["status"] for j in jobs] == ["failed", "failed", "failed"]  # later ones ran too
    summary = json.loads((run / "jobs" / f"{jobs[0]['slug']}.json").read_text())
    assert summary["metrics"]["errors"].get("connection", 0) >= 1
    records = jsonl_lines(run / "jobs" / f"{jobs[0]['slug']}.requests.jsonl")
    assert any(r["ok"] for r in records) and any(r["error_kind"] == "connection" for r in records)
    assert "jobs: ok=0 slo_missed=0 failed=3" in out
    everything = out + err + "".join(p.read_text() for p in run.rglob("*") if p.is_file())
    assert SECRET not in everything


def test_sigint_stops_cleanly_and_resume_runs_only_the_rest(tmp_path: Path) -> None:
    with simulator("--models", "m1", "--itl-ms", "20") as (url, _):
        configs, plan = write_setup(tmp_path, url, SLOW_PLAN)
        env = {"RUNNER_CONFIG_DIR": str(configs)}
        apply = apply_process(str(plan), "--results", "results", cwd=tmp_path, env=env)
        jobs_dir = lambda: list((tmp_path / "results" / "p").glob("*/jobs"))  # noqa: E731
        wait_for(lambda: jobs_dir() and len(list(jobs_dir()[0].glob("*.json"))) >= 1,
                 what="the first finished job")
        apply.send_signal(signal.SIGINT)
        out, err = apply.communicate(timeout=30)
        assert apply.returncode == EXIT_INTERRUPTED, err
        [run] = run_dirs(tmp_path / "results", "p")
        data = manifest(run)
        assert data["status"] == "interrupted"
        statuses = [j["status"] for j in data["jobs"]]
        # the job in flight (if the signal found one) is interrupted, the others never started
        assert statuses[0] == "ok" and set(statuses[1:]) <= {"interrupted", "pending"}
        for job in data["jobs"][1:]:
            assert (run / "jobs" / f"{job['slug']}.json").exists() == (job["status"] != "pending")
        # The recap uses the manifest's words, and its last line says how to go on.
        rows = [line.split() for line in out.splitlines() if line.startswith("b ")]
        assert [row[3] for row in rows] == statuses
        counts = {s: statuses.count(s) for s in ("ok", "interrupted", "pending") if s in statuses}
        assert all(f"{s}={n}" in out for s, n in counts.items())
        resume_line = f"resume with: runner apply {plan} --resume results/p/{run.name}"
        assert out.splitlines()[-1] == resume_line
        first_log = run / "jobs" / f"{data['jobs'][0]['slug']}.requests.jsonl"
        before = first_log.read_text()

        resume = apply_process(str(plan), "--results", "results", "--resume", str(run),
                               cwd=tmp_path, env=env)
        out, err = resume.communicate(timeout=60)
        assert resume.returncode == EXIT_OK, err
    assert [j["status"] for j in manifest(run)["jobs"]] == ["ok", "ok", "ok"]
    assert manifest(run)["status"] == "ok"
    assert first_log.read_text() == before  # nothing run twice
    assert "(resumed)" in out
    assert run_dirs(tmp_path / "results", "p") == [run]


def test_stale_lock_is_exit_5_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    quick = SLOW_PLAN.replace("max_tokens: [40, 41, 42]", "max_tokens: [4]")
    with simulator("--models", "m1,m2", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, quick.replace("models: all", "models: 'm*'"))
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        lock = tmp_path / "p.lock.json"
        code, _, _ = run_cli(capsys, "plan", str(plan), "--out", str(lock))
        assert code == EXIT_OK
        results = str(tmp_path / "results")
        code, out, _ = run_cli(capsys, "apply", str(lock), "--results", results)
        assert code == EXIT_OK and "jobs: ok=2 slo_missed=0 failed=0" in out
        plan.write_text(plan.read_text() + "# edited\n")
        code, _, err = run_cli(capsys, "apply", str(lock), "--results", results)
        assert code == EXIT_STALE and "changed since the lock was made" in err
        code, out, _ = run_cli(capsys, "apply", str(lock), "--results", results, "--force")
        assert code == EXIT_OK and "jobs: ok=2" in out
    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        write_setup(tmp_path, url, plan.read_text())
        code, _, err = run_cli(capsys, "apply", str(lock), "--results", results, "--force")
        assert code == EXIT_STALE and "no longer served: m2" in err
        code, out, _ = run_cli(capsys, "apply", str(lock), "--results", results, "--force",
                               "--allow-drift")
        assert code == EXIT_OK and "jobs: ok=1 slo_missed=0 failed=0" in out


@contextmanager
def refusing_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                      models: str) -> Iterator[Path]:
    """A keyed simulator: the inventory call succeeds with the key, then every request is
    sent without it and refused (401)."""
    with simulator("--models", models, "--ttft-ms", "1", "--itl-ms", "1",
                   "--api-key-env", "SIM_KEY", env={"SIM_KEY": SECRET}) as (url, _):
        configs, plan = write_setup(tmp_path, url, body)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        monkeypatch.setenv("SIM_KEY", SECRET)
        monkeypatch.setattr("runner.run.executor.auth_headers", lambda server, env: {})
        yield plan


def test_fail_fast_skips_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = SLOW_PLAN.replace("models: all", "models: 'm*'").replace(
        "max_tokens: [40, 41, 42]", "max_tokens: [4, 5]")
    with refusing_requests(tmp_path, monkeypatch, body, "m1,m2") as plan:
        code, out, _ = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"),
                               "--fail-fast")
    assert code == EXIT_JOBS_FAILED
    assert "failed=1 skipped=3" in out and "--fail-fast" in out


def test_retries_rerun_a_failed_job_and_the_recap_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = SLOW_PLAN.replace("max_tokens: [40, 41, 42]", "max_tokens: [4]").replace(
        "    matrix:", "    retries: 2\n    matrix:")
    with refusing_requests(tmp_path, monkeypatch, body, "m1") as plan:
        code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"))
    assert code == EXIT_JOBS_FAILED
    assert "(attempt 3)" in err and "(attempt 4)" not in err
    [run] = run_dirs(tmp_path / "r", "p")
    [job] = manifest(run)["jobs"]
    summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
    assert summary["attempts"] == 3 and summary["metrics"]["errors"] == {"http_401": 6}
    # The server's own words come with the count, once, in the recap line.
    assert "no request succeeded (6 x http_401; first: HTTP 401: " in out
    [line] = [x for x in out.splitlines() if x.startswith("b ")]
    assert line.count("http_401") == 1 and "SLO" not in line and "client_bound" not in line
    assert len(jsonl_lines(run / "jobs" / f"{job['slug']}.requests.jsonl")) == 6  # last attempt


GATED = """\
version: 1
name: g
inventory: {server: sim, fallback: false}
benchmarks:
  - name: slo
    models: 'm*'
    workload: {synthetic: {input_tokens: 8}, max_tokens: 4}
    load: {concurrency: 1, requests: 4}
    matrix: {concurrency: [1, 2]}
    slo:
      ttft_ms: {p95: TTFT_LIMIT}
      error_rate: 0
"""


def test_gate_turns_slo_misses_into_exit_4_and_junit_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import xml.etree.ElementTree as ET

    from runner.errors import EXIT_GATE

    with simulator("--models", "m1", "--ttft-ms", "20", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, GATED.replace("TTFT_LIMIT", "5"))
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        results, junit = str(tmp_path / "r"), tmp_path / "ci" / "junit.xml"
        code, out, _ = run_cli(capsys, "apply", str(plan), "--results", results)
        assert code == EXIT_OK and "SLO missed: ttft_ms p95" in out  # no gate: shown only
        code, out, err = run_cli(capsys, "apply", str(plan), "--results", results, "--gate",
                                 "--junit", str(junit))
        assert code == EXIT_GATE and err.count("GATE: slo/m1/") == 2
        suite = ET.parse(junit).getroot()
        assert suite.get("tests") == "2" and suite.get("failures") == "2"
        [failure, *_] = suite.iter("failure")
        assert failure.get("type") == "slo" and "ttft_ms p95" in (failure.get("message") or "")
        plan.write_text(GATED.replace("TTFT_LIMIT", "5000").replace("benchmarks:",
                                                                   "gate: true\nbenchmarks:"))
        code, out, _ = run_cli(capsys, "apply", str(plan), "--results", results)
        assert code == EXIT_OK and out.count("SLO ok") == 2
        plan.write_text(GATED.replace("TTFT_LIMIT", "5").replace("benchmarks:",
                                                                "gate: true\nbenchmarks:"))
        code, _, _ = run_cli(capsys, "apply", str(plan), "--results", results)
        assert code == EXIT_GATE


def test_a_bad_dataset_line_stops_before_any_job_and_names_plan_and_benchmark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.errors import EXIT_INVALID

    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n{"nope": 1}\n')
    body = SLOW_PLAN.replace("workload: {synthetic: {input_tokens: 16}, max_tokens: 40}",
                             "workload: {dataset: prompts.jsonl, max_tokens: 4}")
    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, body)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"))
    assert code == EXIT_INVALID and out == ""
    assert err.startswith(f"error: {plan}: benchmark 'b': ") and "prompts.jsonl:2" in err
    assert not (tmp_path / "r").exists()


# --- issue 8: nothing ran is not a success; a lock runs what was planned; the last lines ----

TWO_BENCHMARKS = """\
version: 1
name: p
inventory: {server: sim, fallback: false}
vars: {max_tokens: 4}
benchmarks:
  - name: latency
    models: 'm*'
    tags: [latency]
    workload: {synthetic: {input_tokens: 8}, max_tokens: "{{ max_tokens }}"}
    load: {concurrency: 1, requests: 2}
    slo:
      ttft_ms: {p95: TTFT_LIMIT}
  - name: throughput
    models: 'm*'
    tags: [throughput]
    workload: {synthetic: {input_tokens: 8}, max_tokens: "{{ max_tokens }}"}
    load: {concurrency: 2, requests: 2}
"""


def test_a_tag_typo_runs_nothing_is_exit_3_with_did_you_mean_and_leaves_no_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.errors import EXIT_INVENTORY

    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, TWO_BENCHMARKS.replace("TTFT_LIMIT", "5000"))
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        results = tmp_path / "results"
        for command in ("plan", "apply"):
            code, out, err = run_cli(capsys, command, str(plan), "--tags", "latncy",
                                     "--results", str(results)) if command == "apply" else \
                run_cli(capsys, command, str(plan), "--tags", "latncy")
            assert code == EXIT_INVENTORY, (command, err)
            assert "the selection leaves no job to run" in err
            assert "--tags 'latncy': no benchmark has this tag (did you mean latency?)" in err
            assert "Traceback" not in err and "RECAP" not in out
        assert not results.exists()  # no empty run to become `latest`
        # One good tag and one typo: the jobs run, and the typo is a warning.
        code, out, err = run_cli(capsys, "apply", str(plan), "--tags", "latency,latncy",
                                 "--results", str(results))
        assert code == EXIT_OK
        assert "WARNING: --tags 'latncy': no benchmark has this tag (did you mean latency?)" in err


def test_recap_counts_agree_with_the_plan_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with simulator("--models", "m1,m2", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, TWO_BENCHMARKS.replace("TTFT_LIMIT", "5000"))
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        code, view, _ = run_cli(capsys, "plan", str(plan), "--tags", "latency")
        assert code == EXIT_OK
        code, out, _ = run_cli(capsys, "apply", str(plan), "--tags", "latency",
                               "--results", str(tmp_path / "r"))
    assert code == EXIT_OK
    total = view.splitlines()[-1].removeprefix("TOTAL: ")
    assert total == "2 benchmarks (1 skipped), 2 models, 2 jobs, 4 requests"
    assert f"planned: {total}" in out.splitlines()
    assert "jobs: ok=2 slo_missed=0 failed=0 skipped=0 interrupted=0" in out.splitlines()
    [run] = run_dirs(tmp_path / "r", "p")
    assert manifest(run)["options"]["tags"] == "latency"


@pytest.mark.parametrize("option", [["--tags", "latency"], ["--skip-tags", "latency"],
                                    ["--limit", "m1"], ["-e", "max_tokens=8"],
                                    ["--max-jobs", "1"]])
def test_a_lock_refuses_selection_and_variable_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    option: list[str],
) -> None:
    from runner.errors import EXIT_INVALID

    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, TWO_BENCHMARKS.replace("TTFT_LIMIT", "5000"))
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        lock = tmp_path / "lock.json"
        assert run_cli(capsys, "plan", str(plan), "--tags", "throughput", "--out",
                       str(lock))[0] == EXIT_OK
        results = tmp_path / "results"
        code, out, err = run_cli(capsys, "apply", str(lock), *option, "--results", str(results))
        assert code == EXIT_INVALID and out == ""
        assert "a lock runs exactly what was planned; re-plan with these options" in err
        assert option[0].split("/")[0] in err and not results.exists()
        code, out, _ = run_cli(capsys, "apply", str(lock), "--results", str(results))
    assert code == EXIT_OK
    [run] = run_dirs(results, "p")
    data = manifest(run)
    assert [j["benchmark"] for j in data["jobs"]] == ["throughput"]
    assert data["options"]["tags"] == "throughput" and data["options"]["lock"] is True
    summary = json.loads((run / "jobs" / f"{data['jobs'][0]['slug']}.json").read_text())
    assert summary["params"]["max_tokens"] == 4


def test_slo_misses_are_counted_everywhere_even_without_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import xml.etree.ElementTree as ET

    with simulator("--models", "m1,m2", "--ttft-ms", "20", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, TWO_BENCHMARKS.replace("TTFT_LIMIT", "5"))
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        junit = tmp_path / "junit.xml"
        code, out, _ = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"),
                               "--junit", str(junit))
    assert code == EXIT_OK  # no gate: counted and shown, not an exit code
    assert "jobs: ok=4 slo_missed=2 failed=0 skipped=0 interrupted=0" in out.splitlines()
    [run] = run_dirs(tmp_path / "r", "p")
    summary_md = (run / "summary.md").read_text()
    assert "**ok, SLO missed by 2 of 4 jobs** · jobs: ok=4 slo_missed=2" in summary_md
    assert "&lt;" not in summary_md and "(limit \\<= 5)" in summary_md
    html = (run / "report.html").read_text()
    assert '<span class="badge s-slo_missed">ok, SLO missed by 2 of 4 jobs</span>' in html
    suites = ET.parse(junit).getroot()
    assert suites.get("failures") == "0"
    missed = {s.get("name"): s.find("properties/property").get("value")  # type: ignore[union-attr]
              for s in suites.iter("testsuite")}
    assert missed == {"p.latency": "2", "p.throughput": "0"}


def test_the_recap_names_the_report_and_the_next_commands_in_aligned_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with simulator("--models", "m1,model-with-a-long-name", "--ttft-ms", "1",
                   "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, TWO_BENCHMARKS.replace("TTFT_LIMIT", "5000"))
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        code, out, _ = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"))
    assert code == EXIT_OK
    [run] = run_dirs(tmp_path / "r", "p")
    lines = out.splitlines()
    start = lines.index("RECAP " + "*" * 66) + 1
    table = lines[start:lines.index("", start)]
    assert len(table) == 5 and table[0].split()[:4] == ["benchmark", "model", "params", "status"]
    # Text cells start where their header starts; numbers end where theirs ends.
    starts = [table[0].index(h) for h in ("model", "params", "status")]
    ends = [table[0].index(h) + len(h) for h in ("req ok", "TTFT p50 ms", "tok/s")]
    for row in table[1:]:
        assert all(row[i - 1] == " " and row[i] != " " for i in starts), row
        assert all(row[i - 1] != " " and row[i:i + 1] in ("", " ") for i in ends), row
    assert lines[-3] == f"report: {run / 'report.html'}"
    assert lines[-2] == f"next: runner report {run} --format md"
    assert lines[-1] == "      runner compare previous latest --plan p"
    assert "resume with" not in out


def test_an_unreachable_server_is_said_once_with_its_first_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    dead_url: str,
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {dead_url}\n")
    (configs / "models.yaml").write_text("models:\n  - {id: m1}\n")
    plan = tmp_path / "p.yaml"
    plan.write_text(TWO_BENCHMARKS.replace("TTFT_LIMIT", "5").replace(
        "fallback: false", "fallback: true").replace("requests: 2", "requests: 4"))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    code, out, _ = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"))
    assert code == EXIT_JOBS_FAILED
    [run] = run_dirs(tmp_path / "r", "p")
    rows = [line for line in out.splitlines() if line.startswith(("latency ", "throughput "))]
    assert len(rows) == 2
    for row in rows:
        assert row.count("unreachable") == 1 and "(server unreachable (" in row
        assert "; first: " in row and "onnect" in row.split("; first: ")[1]
        assert "SLO" not in row and "client_bound" not in row
        assert row.split()[6:9] == ["-", "-", "-"]  # TTFT/TPOT that do not exist are absent
    assert "jobs: ok=0 slo_missed=0 failed=2" in out
    assert out.splitlines()[-1] == (f"failed: runner report {run} --format md shows why; "
                                    f"run again with: runner apply {plan} "
                                    f"--results {tmp_path / 'r'}")
    md = (run / "summary.md").read_text()
    assert "SLO missed" not in md and "slo_missed" not in md


def test_a_job_without_streaming_shows_no_chunk_metrics_rather_than_e2e_or_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = TWO_BENCHMARKS.replace("TTFT_LIMIT", "5000").replace(
        "max_tokens: \"{{ max_tokens }}\"}", "max_tokens: \"{{ max_tokens }}\", stream: false}")
    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, body)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        code, out, _ = run_cli(capsys, "apply", str(plan), "--tags", "latency",
                               "--results", str(tmp_path / "r"))
    assert code == EXIT_OK
    [row] = [line.split() for line in out.splitlines() if line.startswith("latency ")]
    assert row[8] == "-" and row[6] == "-"  # TPOT and TTFT absent (TTFT was E2E: issue 10)
    [run] = run_dirs(tmp_path / "r", "p")
    [md_row] = [line for line in (run / "summary.md").read_text().splitlines()
                if line.startswith("| m1 ")]
    assert [c.strip() for c in md_row.split("|")][6] == "–"  # the TPOT p50 cell
    [job] = manifest(run)["jobs"]
    summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
    assert summary["params"]["stream"] is False and summary["metrics"]["tpot_ms"]["p50"] is None
    assert summary["metrics"]["ttft_ms"]["count"] == 0 and summary["metrics"]["e2e_ms"]["count"]
    assert summary["metrics"]["validity"] == {"verdict": "valid", "reasons": []}  # apply judges


def test_an_slo_on_tpot_of_answers_that_were_not_streamed_is_no_data_and_fails_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Seen (issue 10 §7): stream false gave TPOT 0.0 ms, `tpot_ms: {p50: 1}` passed, --gate 0.
    body = TWO_BENCHMARKS.replace("ttft_ms: {p95: TTFT_LIMIT}", "tpot_ms: {p50: 1}").replace(
        "max_tokens: \"{{ max_tokens }}\"}", "max_tokens: \"{{ max_tokens }}\", stream: false}")
    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "20") as (url, _):
        configs, plan = write_setup(tmp_path, url, body)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        code, out, _ = run_cli(capsys, "apply", str(plan), "--tags", "latency", "--gate",
                               "--results", str(tmp_path / "r"))
    assert code == EXIT_GATE
    [row] = [line for line in out.splitlines() if line.startswith("latency ")]
    assert "SLO no data: tpot_ms p50 no data (limit <= 1)" in row
    [run] = run_dirs(tmp_path / "r", "p")
    [job] = manifest(run)["jobs"]
    metrics = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())["metrics"]
    assert metrics["slo"]["status"] == "no_data" and metrics["slo"]["passed"] is False
    assert metrics["streamed"] == {"streamed": 0, "not_streamed": 2}
    assert metrics["goodput"]["requests"] == 0
    assert "SLO no data" in (run / "summary.md").read_text()


def test_a_lock_whose_models_are_all_gone_runs_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.errors import EXIT_INVENTORY

    body = TWO_BENCHMARKS.replace("TTFT_LIMIT", "5000").replace("models: 'm*'", "models: all")
    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, body)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        lock = tmp_path / "lock.json"
        assert run_cli(capsys, "plan", str(plan), "--out", str(lock))[0] == EXIT_OK
    with simulator("--models", "other", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        write_setup(tmp_path, url, body)
        results = tmp_path / "results"
        code, out, err = run_cli(capsys, "apply", str(lock), "--allow-drift",
                                 "--results", str(results))
    assert (code, out) == (EXIT_INVENTORY, "")
    assert "none of the locked jobs can run" in err and not results.exists()


def test_a_duration_job_ends_at_its_duration_and_grace_not_when_the_answers_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 9: `duration_s: 5` against a 1 token/s stream took 60 s. Here the answer would
    take 60 s; the job ends after its 2 s and a 2 s grace (the default: duration_s), and the
    request cut then is kept as cancelled."""
    plan_body = SLOW_PLAN.replace(
        "max_tokens: 40}", "max_tokens: 60, extra_body: {ignore_eos: true}}").replace(
        "load: {concurrency: 2, requests: 6, request_timeout_s: 10}\n"
        "    matrix: {max_tokens: [40, 41, 42]}\n", "load: {concurrency: 1, duration_s: 2}\n")
    with simulator("--models", "m1", "--itl-ms", "1000") as (url, _):
        configs, plan = write_setup(tmp_path, url, plan_body)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        started = time.monotonic()
        code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"))
        took = time.monotonic() - started
    assert code == EXIT_JOBS_FAILED, err
    assert took < 30  # not the answer's 60 s
    assert "(no request succeeded (1 cancelled, still running when the job ended))" in out
    [run] = run_dirs(tmp_path / "r", "p")
    [job] = manifest(run)["jobs"]
    summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
    assert summary["params"]["duration_grace_s"] == 2 and summary["stopped"] == "duration"
    assert summary["metrics"]["requests"] == {"total": 1, "ok": 0, "failed": 0, "cancelled": 1,
                                              "warmup": 0}
    assert summary["error"] == "no request succeeded (1 cancelled, still running when the job " \
                               "ended)"
    [record] = jsonl_lines(run / "jobs" / f"{job['slug']}.requests.jsonl")
    assert record["error_kind"] == "cancelled" and record["content_chunks"] >= 1


ALL_PARAMS_PLAN = """\
version: 1
name: p
inventory: {server: sim, fallback: false}
benchmarks:
  - name: every
    models: 'm*'
    workload: {endpoint: chat, synthetic: {input_tokens: 8, input_tokens_stddev: 1},
               max_tokens: 4, temperature: 0, seed: 3, prompt_reuse: across_runs, stream: true,
               extra_body: {ignore_eos: true}}
    load: {rate: 50, arrival: constant, max_concurrency: 2, requests: 3, duration_s: 30,
           duration_grace_s: 5, warmup_requests: 1, request_timeout_s: 30, stall_timeout_s: 20,
           job_timeout_s: 60}
"""


def test_a_lock_keeps_every_param_a_plan_takes_and_apply_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plan with prompt_reuse or duration_grace_s once made a lock that validate refused.
    from runner import defaults

    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        configs, plan = write_setup(tmp_path, url, ALL_PARAMS_PLAN)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
        lock = tmp_path / "lock.json"
        assert run_cli(capsys, "plan", str(plan), "--out", str(lock))[0] == EXIT_OK
        [job] = json.loads(lock.read_text())["jobs"]
        # batch_size is an embeddings job's only (a chat job drops it)
        assert set(defaults.PARAMS) - {"dataset", "template", "concurrency", "batch_size"} \
            <= set(job["params"])
        code, out, err = run_cli(capsys, "validate", str(lock))
        assert code == EXIT_OK, out + err
        code, out, err = run_cli(capsys, "apply", str(lock), "--results", str(tmp_path / "r"))
    assert code == EXIT_OK, out + err
