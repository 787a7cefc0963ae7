"""Repetitions through `runner apply` and `runner compare --gate` (issue 13 §2, §5), against
the simulator, whose TTFT is configured (servers.yaml ttft_ms): a job with `repeat: 3` stores 3
repetitions, its TTFT p50 interval reaches the configured TTFT, two runs of one simulator pass
the gate, and a run of a simulator twice as slow fails it, outside both intervals."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest
from apply_helpers import jsonl_lines, run_dirs
from cli_helpers import run_cli

from runner.errors import EXIT_GATE, EXIT_OK
from runner.report.render import render_report
from runner.schema import load_schema

# Long enough that the loopback's own delay and a busy machine's jitter stay far below the
# compare threshold (10% = 20 ms): two runs of one simulator must pass the gate.
TTFT_MS = 200
# A request seen by the client takes the simulator's ttft_ms plus the loopback's own delay
# (sending the request, parsing the answer): about 1 ms here, far less than this on a busy
# machine.
LOOPBACK_MS = 20
PLAN = """\
version: 1
name: rep
inventory: {server: sim, fallback: false}
benchmarks:
  - name: steady
    models: all
    workload: {synthetic: {input_tokens: 8}, max_tokens: 4}
    load: {concurrency: 2, requests: 8, repeat: 3, repeat_pause_s: 0.05}
"""


def servers(ttft_ms: int) -> str:
    return f"servers:\n  sim: {{kind: mock, models: [m1], ttft_ms: {ttft_ms}, itl_ms: 5}}\n"


def apply(tmp_path: Path, capsys: pytest.CaptureFixture[str], ttft_ms: int) -> tuple[Path, str]:
    (tmp_path / "configs" / "servers.yaml").write_text(servers(ttft_ms))
    before = set(run_dirs(tmp_path / "results", "rep"))
    code, out, err = run_cli(capsys, "apply", "rep.yaml", "--results", "results")
    assert code == EXIT_OK, err
    [run] = set(run_dirs(tmp_path / "results", "rep")) - before
    return run, out


def test_repeated_runs_store_repetitions_with_intervals_and_gate_on_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "rep.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    first, out = apply(tmp_path, capsys, TTFT_MS)
    [summary_file] = (first / "jobs").glob("*[!s].json")
    job = json.loads(summary_file.read_text())
    jsonschema.validate(job, load_schema("result"))
    reps = job["metrics"]["repetitions"]
    assert reps["count"] == 3 and len(reps["per_repetition"]) == 3
    records = jsonl_lines(next((first / "jobs").glob("*.requests.jsonl")))
    request_schema = {"$defs": load_schema("result")["$defs"], "$ref": "#/$defs/request"}
    for record in records:
        jsonschema.validate(record, request_schema)
    assert [sum(r["repetition"] == n for r in records) for n in (1, 2, 3)] == [8, 8, 8]
    p50s = [rep["ttft_ms"]["p50"] for rep in reps["per_repetition"]]
    assert job["metrics"]["ttft_ms"]["p50"] == sorted(p50s)[1]  # the median repetition
    low, high = reps["intervals"]["ttft_ms.p50"]
    # The interval reaches the configured TTFT, less the loopback's own few ms
    assert low <= TTFT_MS + LOOPBACK_MS and high >= TTFT_MS
    assert all(TTFT_MS <= p50 <= TTFT_MS + LOOPBACK_MS for p50 in p50s)
    [line] = [x for x in out.splitlines() if x.startswith("steady ")]
    assert "×3 (95% CI TTFT p50 " in line and " tok/s)" in line
    assert "×3 (95% CI TTFT p50 " in (first / "summary.md").read_text()
    [row] = csv.DictReader(io.StringIO(render_report(str(first), "csv")))
    assert row["repetitions.count"] == "3" and "repetitions.per_repetition" not in row
    assert json.loads(row["repetitions.intervals.ttft_ms.p50"]) == [low, high]

    second, _ = apply(tmp_path, capsys, TTFT_MS)
    code, text, _ = run_cli(capsys, "compare", str(first), str(second), "--gate",
                            "--metric", "ttft_p50")
    assert code == EXIT_OK, text

    slow, _ = apply(tmp_path, capsys, 2 * TTFT_MS)
    code, data, _ = run_cli(capsys, "compare", str(first), str(slow), "--gate",
                            "--metric", "ttft_p50", "--format", "json")
    assert code == EXIT_GATE
    compared = json.loads(data)
    assert compared["noise"]["repetitions"] == {"method": "student_t", "level": 0.95}
    [row] = compared["jobs"][0]["rows"]
    assert row["outside_both"] is True and row["gates"] is True
    assert row["intervals"]["base"] == [low, high]


def test_ctrl_c_in_the_pause_leaves_the_job_interrupted_and_resume_runs_every_repetition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SIGINT after the first of 3 repetitions: the job is interrupted, not ok with one
    repetition (a --resume then took it as done and never ran the other two)."""
    import signal
    from typing import Any

    from runner.errors import EXIT_INTERRUPTED
    from runner.run import repetitions

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(servers(5))
    (tmp_path / "rep.yaml").write_text(PLAN.replace("pause_s: 0.05", "pause_s: 3600"))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    run_once = repetitions._run_once

    async def once_then_interrupt(*args: Any) -> Any:
        done = await run_once(*args)
        signal.raise_signal(signal.SIGINT)  # before the hour's pause
        return done

    with monkeypatch.context() as patch:
        patch.setattr(repetitions, "_run_once", once_then_interrupt)
        code, _, err = run_cli(capsys, "apply", "rep.yaml", "--results", "results",
                                 "--no-report")
    assert code == EXIT_INTERRUPTED, err
    [run] = run_dirs(tmp_path / "results", "rep")
    [summary_file] = (run / "jobs").glob("*[!s].json")
    job = json.loads(summary_file.read_text())
    assert job["status"] == "interrupted" and job["stopped"] == "interrupted"
    assert job["error"] == "interrupted after 1 of 3 repetitions (load.repeat)"
    (tmp_path / "rep.yaml").write_text(PLAN)  # the short pause: --force
    code, _, err = run_cli(capsys, "apply", "rep.yaml", "--results", "results",
                             "--no-report", "--resume", str(run), "--force")
    assert code == EXIT_OK, err
    job = json.loads(summary_file.read_text())
    assert job["status"] == "ok" and job["metrics"]["repetitions"]["count"] == 3
