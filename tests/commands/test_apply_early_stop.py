"""Early stop through `runner apply` (issue 13 §3, §5). An open loop far beyond the
simulator's capacity: it serves 2 answers at once (servers.yaml max_streams), 200 ms each, so
it completes at most 10 requests/s; the plan sends 40/s for a minute. The job stops early as
saturated, says so in its JSON, the recap and the report, and keeps its records. A server that
starts failing half-way (scripted) stops its job as error_rate."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from apply_helpers import jsonl_lines, run_dirs
from cli_helpers import run_cli
from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, chunk, text, usage_chunk

from runner.errors import EXIT_JOBS_FAILED, EXIT_OK
from runner.schema import load_schema

SERVERS = """\
servers:
  sim: {kind: mock, models: [m1], ttft_ms: 50, itl_ms: 10, max_streams: 2}
"""
PLAN = """\
version: 1
name: sat
inventory: {server: sim, fallback: false}
benchmarks:
  - name: flood
    models: all
    workload: {synthetic: {input_tokens: 8}, max_tokens: 16}
    load: {rate: 40, arrival: constant, duration_s: 60, request_timeout_s: 120}
"""


def test_an_open_loop_beyond_capacity_stops_as_saturated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "sat.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "apply", "sat.yaml", "--results", "results")
    assert code == EXIT_OK, err
    [run] = run_dirs(tmp_path / "results", "sat")
    [summary_file] = (run / "jobs").glob("*.json")
    job = json.loads(summary_file.read_text())
    jsonschema.validate(job, load_schema("result"))
    assert job["stopped"] == "saturated"
    stop = job["early_stop"]
    # The simulator's true capacity is 2 / 0.2 s = 10 requests/s: never more is completed.
    assert stop["completed_per_s"] <= 10 * 1.05 and stop["target_per_s"] == 40
    assert stop["wait_p50_ms"] >= 1.25 * stop["previous_wait_p50_ms"]
    assert stop["at_s"] < 60  # stopped before its duration: far fewer requests than 2400
    records = jsonl_lines(next((run / "jobs").glob("*.requests.jsonl")))
    assert len(records) < 2400 * 0.75 and len(records) == job["metrics"]["requests"]["total"]
    validity = job["metrics"]["validity"]
    assert validity["verdict"] == "invalid"
    assert [r["code"] for r in validity["reasons"]][:1] == ["saturated"]
    [line] = [x for x in out.splitlines() if x.startswith("flood ")]
    assert "invalid: saturated (completed" in line
    summary = (run / "summary.md").read_text()
    assert "ok · stopped early: saturated · invalid" in summary
    assert "**saturated** (completed" in summary
    assert "stopped early: saturated" in (run / "report.html").read_text()


def test_a_replay_beyond_capacity_stops_as_saturated_against_its_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same flood as a trace: 40 requests a second for a minute. The watch follows the
    trace's schedule (a replay has no rate) and stops it as the open loop above."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "flood.jsonl").write_text("".join(
        f'{{"timestamp_ms": {i * 25}, "input_tokens": 8}}\n' for i in range(2400)))
    (tmp_path / "sat.yaml").write_text(PLAN.replace(
        "{synthetic: {input_tokens: 8}, max_tokens: 16}", "{trace: flood.jsonl, max_tokens: 16}")
        .replace("{rate: 40, arrival: constant, duration_s: 60, request_timeout_s: 120}",
                 "{replay: {speed: 1}, request_timeout_s: 120}"))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "apply", "sat.yaml", "--results", "results")
    assert code == EXIT_OK, err
    [run] = run_dirs(tmp_path / "results", "sat")
    [summary_file] = (run / "jobs").glob("*.json")
    job = json.loads(summary_file.read_text())
    jsonschema.validate(job, load_schema("result"))
    assert job["stopped"] == "saturated", job.get("early_stop")
    assert "invalid: saturated (completed" in out
    stop = job["early_stop"]
    assert stop["completed_per_s"] <= 10 * 1.05 and 20 <= stop["target_per_s"] <= 40.5
    assert stop["at_s"] < 60 and job["metrics"]["replay"]["cut_short"]
    assert [r["code"] for r in job["metrics"]["validity"]["reasons"]][:1] == ["saturated"]


FAILING_PLAN = """\
version: 1
name: half
inventory: {server: flaky, fallback: false}
benchmarks:
  - name: dies
    models: all
    workload: {synthetic: {input_tokens: 8}, max_tokens: 1}
    load: {concurrency: 2, requests: 2000, request_timeout_s: 10}
    max_error_rate: 0.1
"""
ANSWER = [(0, ROLE), (2, text("a")), (4, chunk(finish="stop")),
          (5, usage_chunk(completion_tokens=1)), (6, DONE)]


def test_a_server_failing_half_way_stops_the_job_early_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = Script(ANSWER, fail_after=40)
    with scripted_server(script) as url:
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "servers.yaml").write_text(
            f"servers:\n  flaky:\n    url: {url}\n    timeout_s: 5\n")
        (tmp_path / "half.yaml").write_text(FAILING_PLAN)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
        monkeypatch.chdir(tmp_path)
        code, out, err = run_cli(capsys, "apply", "half.yaml", "--results", "results",
                                 "--no-probe")  # the probe would take 2 of its 40 answers
    assert code == EXIT_JOBS_FAILED, err
    assert len(script.received) < 100  # of 2000 planned
    [run] = run_dirs(tmp_path / "results", "half")
    [summary_file] = (run / "jobs").glob("*.json")
    job = json.loads(summary_file.read_text())
    jsonschema.validate(job, load_schema("result"))
    assert job["status"] == "failed" and job["stopped"] == "error_rate"
    stop = job["early_stop"]
    assert stop["threshold"] == 0.1 and stop["lower_bound"] > 0.1
    assert stop["finished"] - stop["failed"] == 40
    assert job["error"].startswith("stopped early: error rate ")
    [line] = [x for x in out.splitlines() if x.startswith("dies ")]
    assert "(stopped early: error rate" in line and "engine died" in line
    assert "failed · stopped early: error\\_rate" in (run / "summary.md").read_text()
    assert "stopped early: error rate" in (run / "report.html").read_text()  # its errors
