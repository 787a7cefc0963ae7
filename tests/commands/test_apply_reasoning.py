"""`runner apply` against the simulator as a reasoning model (issue 14 §3): every request
records TTFO beside TTFT and the usage's reasoning tokens, the job summary splits reasoning
from answer, an SLO may bound ttfo_ms (pass and fail), the report shows TTFT and TTFO side by
side, and `compare` compares TTFO."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apply_helpers import stored_jobs
from cli_helpers import run_cli, run_json

from runner.errors import EXIT_GATE, EXIT_OK

THOUGHTS = 4
SERVERS = f"""\
servers:
  sim: {{kind: mock, models: [m1], ttft_ms: 20, itl_ms: 25, output_tokens: 3,
         reasoning_tokens: {THOUGHTS}}}
"""
# TTFT is the first reasoning token (ttft_ms 20); TTFO comes THOUGHTS x itl_ms = 100 ms later.
# The bounds are far from both on either side, so a busy machine cannot flip the verdicts.
PLAN = """\
version: 1
name: think
inventory: {server: sim, fallback: false}
benchmarks:
  - name: loose
    models: all
    workload: {synthetic: {input_tokens: 4}, max_tokens: 64}
    load: {concurrency: 2, requests: 4}
    slo: {ttfo_ms: {p95: 60000}, ttft_ms: {p95: 60000}}
  - name: strict
    models: all
    workload: {synthetic: {input_tokens: 4}, max_tokens: 64}
    load: {concurrency: 2, requests: 4}
    slo: {ttfo_ms: {p50: 100}, ttft_ms: {p95: 60000}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "think.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def checks(job: dict[str, Any]) -> dict[str, str]:
    return {c["metric"]: c["status"] for c in job["metrics"]["slo"]["checks"]}


def test_a_reasoning_model_run_records_ttfo_and_reasoning_tokens(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "apply", "think.yaml", "--results", "results",
                             "--no-probe", "--gate")
    assert code == EXIT_GATE, out + err  # the strict job's TTFO bound fails
    jobs = stored_jobs(project / "results", "think")
    for job in jobs.values():
        for record in job["records"]:
            assert record["ok"] and record["ttfo_ms"] > record["ttft_ms"]
            assert (record["reasoning_tokens"], record["reasoning_chunks"]) == (THOUGHTS, THOUGHTS)
            assert record["output_tokens"] == THOUGHTS + 3
        split = job["metrics"]["reasoning"]
        assert split["requests_with_reasoning"] == 4 and split["source"] == "usage"
        assert (split["reasoning_tokens"]["p50"], split["answer_tokens"]["p50"]) == (THOUGHTS, 3)
        assert job["metrics"]["ttfo_ms"]["count"] == 4
    assert checks(jobs["loose"]) == {"ttfo_ms": "pass", "ttft_ms": "pass"}
    assert jobs["loose"]["metrics"]["goodput"]["requests"] == 4
    # The first reasoning token meets the TTFT bound; the answer, 100 ms later, misses TTFO's.
    assert checks(jobs["strict"]) == {"ttfo_ms": "fail", "ttft_ms": "pass"}
    assert jobs["strict"]["metrics"]["goodput"]["requests"] == 0
    assert "ttfo_ms" in out  # the recap names the missed bound


def test_the_report_shows_ttft_and_ttfo_side_by_side_and_compare_compares_ttfo(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):
        run_cli(capsys, "apply", "think.yaml", "--results", "results", "--no-probe")
    runs = sorted(p for p in (project / "results" / "think").iterdir() if p.is_dir())
    code, report, err = run_cli(capsys, "report", str(runs[-1]), "--format", "md")
    assert code == EXIT_OK, err
    head = next(line for line in report.splitlines() if "TTFO p50" in line)
    assert head.index("TTFT p50") < head.index("TTFO p50") < head.index("Reasoning tok p50")
    assert "| loose/m1 | 4 of 4 |" in report and "| usage |" in report
    code, html, err = run_cli(capsys, "report", str(runs[-1]), "--format", "html", "-o", "-")
    assert code == EXIT_OK and "<h3>Reasoning</h3>" in html and "TTFO p95" in html, err
    code, compared, err = run_json(capsys, "compare", str(runs[0]), str(runs[1]), "--format",
                                   "json", "--metric", "ttft_p50,ttfo_p50,ttfo_p95",
                                   "--threshold", "1000%")
    assert code == EXIT_OK, err  # two runs of one simulator: a busy machine moves ms, not 10x
    for job in compared["jobs"]:
        rows = {row["metric"]: row for row in job["rows"]}
        assert set(rows) == {"ttft_p50", "ttfo_p50", "ttfo_p95"}
        for side in ("base", "new"):
            assert rows["ttfo_p50"][side] > rows["ttft_p50"][side]


def test_a_run_without_reasoning_shows_no_reasoning_table(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "configs" / "servers.yaml").write_text(SERVERS.replace(
        f"reasoning_tokens: {THOUGHTS}", "reasoning_tokens: 0"))
    run_cli(capsys, "apply", "think.yaml", "--results", "results", "--no-probe")
    [run] = [p for p in (project / "results" / "think").iterdir() if p.is_dir()]
    code, report, err = run_cli(capsys, "report", str(run), "--format", "md")
    assert code == EXIT_OK and "TTFO" not in report, err
    for job in stored_jobs(project / "results", "think").values():
        assert job["metrics"]["reasoning"]["requests_with_reasoning"] == 0
        assert all(r["ttfo_ms"] == r["ttft_ms"] for r in job["records"])


def test_the_responses_endpoint_reasons_and_is_split_as_chat_is(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The simulator answered /v1/responses without reasoning, whatever reasoning_tokens said,
    # so reasoning on the Responses endpoint was never run end to end.
    (project / "think.yaml").write_text(PLAN.replace("max_tokens: 64}",
                                                     "max_tokens: 64, endpoint: responses}"))
    code, _, err = run_cli(capsys, "apply", "think.yaml", "--results", "results", "--no-probe")
    assert code == EXIT_OK, err  # the strict SLO misses, and no gate was asked for
    jobs = stored_jobs(Path("results"), "think")
    loose = jobs["loose"]["metrics"]
    assert loose["ttfo_ms"]["p50"] - loose["ttft_ms"]["p50"] > THOUGHTS * 25 * 0.5
    assert loose["reasoning"]["requests_with_reasoning"] == 4
    assert loose["reasoning"]["reasoning_tokens"]["p50"] == THOUGHTS
    assert loose["reasoning"]["answer_tokens"]["p50"] == 3
    assert loose["reasoning"]["source"] == "usage"
    assert checks(jobs["strict"])["ttfo_ms"] == "fail"
