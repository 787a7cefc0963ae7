"""The RECAP (pure): aligned rows, totals that count SLO misses, absent numbers, next steps."""

from __future__ import annotations

from typing import Any

import pytest

from runner.run.recap import RunFacts, job_cells, job_line, number, render, slo_misses, totals
from runner.run.validity import judge_validity

SLO_MISSED = {"passed": False, "checks": [{"metric": "ttft_ms", "stat": "p95", "limit": 500,
                                           "value": 612.3456, "passed": False}]}


def job(model: str, status: str = "ok", slo: dict[str, Any] | None = None,
        error: str | None = None, **metrics: Any) -> dict[str, Any]:
    measured = {"requests": {"ok": 20, "failed": 0}, "ttft_ms": {"p50": 41.16, "p95": 429.4187},
                "tpot_ms": {"p50": 4.0}, "throughput": {"output_tokens_per_s": 1286.54},
                "slo": slo, "client": {"client_bound": False},
                "validity": {"verdict": "valid", "reasons": []}, **metrics}
    return {"id": f"b/{model}", "benchmark": "b", "model": model, "point": {"concurrency": 1},
            "status": status, "error": error, "metrics": measured}


FACTS = RunFacts("results/p/r1", "ok", "plans/p.yaml", "p", "inventory: live", {
    "benchmarks": 2, "skipped": 1, "models": 2, "jobs": 3, "requests": 60},
    "results/p/r1/report.html")


@pytest.mark.parametrize(("value", "text"), [
    (None, "-"), (0, "0"), (12, "12"), (429.4186779732903, "429.4"), (41.16099345, "41.2"),
    (4.0, "4.00"), (0.0123456, "0.0123"), (1286.54, "1286.5"),
])
def test_numbers_have_sensible_digits(value: float | None, text: str) -> None:
    assert number(value) == text


def test_cells_show_absent_metrics_as_absent_never_zero() -> None:
    cells = job_cells(job("m", tpot_ms={"count": 0, "p50": None}))
    assert cells[4:10] == ["20", "0", "41.2", "429.4", "-", "1286.5"]
    assert job_cells({**job("m"), "metrics": None, "status": "skipped"})[4:10] == ["-"] * 6


def test_a_failed_job_is_not_also_client_bound_or_an_slo_miss() -> None:
    failed = job("m", "failed", SLO_MISSED, "server unreachable (3 x connection; first: refused)",
                 client={"client_bound": True})
    assert slo_misses(failed) == []
    assert job_cells(failed)[-1] == "(server unreachable (3 x connection; first: refused))"


def test_totals_count_slo_misses_and_use_the_manifests_words() -> None:
    jobs = [job("a"), job("b", slo=SLO_MISSED), {**job("c", "interrupted"), "metrics": None}]
    assert totals(jobs) == {"ok": 2, "slo_missed": 1, "failed": 0, "skipped": 0,
                            "interrupted": 1}
    statuses = {"b/c": "pending"}
    assert totals(jobs, statuses)["pending"] == 1 and totals(jobs, statuses)["interrupted"] == 0


def test_render_ends_with_the_report_and_next_commands() -> None:
    text = render([job("a"), job("b", slo=SLO_MISSED)], FACTS)
    lines = text.splitlines()
    assert lines[2].split()[:4] == ["benchmark", "model", "params", "status"]
    assert lines[3].split()[:4] == ["b", "a", "concurrency=1", "ok"]
    assert "SLO missed: ttft_ms p95 612.3 (limit <= 500)" in lines[4]
    assert lines[-7:] == [
        "planned: 2 benchmarks (1 skipped), 2 models, 3 jobs, 60 requests",
        "jobs: ok=2 slo_missed=1 failed=0 skipped=0 interrupted=0",
        "inventory: live", "results: results/p/r1", "report: results/p/r1/report.html",
        "next: runner report results/p/r1 --format md",
        "      runner compare previous latest --plan p"]


@pytest.mark.parametrize(
    ("status", "jobs"),
    [("interrupted", {"a": "interrupted"}), ("partial", {"a": "ok", "b": "pending"}),
     ("failed", {"a": "failed", "b": "pending"})],  # --fail-fast left b to run
)
def test_an_unfinished_run_ends_with_how_to_resume(status: str, jobs: dict[str, str]) -> None:
    facts = RunFacts("results/p/r 1", status, "plans/p.yaml", "p", "inventory: live", {},
                     statuses={f"b/{model}": s for model, s in jobs.items()})
    text = render([job("a", jobs["a"])], facts)
    last = "resume with: runner apply plans/p.yaml --resume 'results/p/r 1'"
    assert text.splitlines()[-1] == last
    assert "planned:" not in text and "next:" not in text


def test_a_failed_run_with_every_job_run_says_why_and_how_to_run_again() -> None:
    facts = RunFacts("results/p/r1", "failed", "plans/p.yaml", "p", "inventory: live", {},
                     statuses={"b/a": "failed", "b/b": "ok"})
    text = render([job("a", "failed"), job("b", "ok")], facts)
    assert text.splitlines()[-1] == ("failed: runner report results/p/r1 --format md shows why; "
                                     "run again with: runner apply plans/p.yaml")
    assert "planned:" not in text and "next:" not in text


def test_the_resume_hint_keeps_the_options_that_reach_the_same_server() -> None:
    facts = RunFacts("r/p/1", "interrupted", "plans/p.yaml", "p", "inventory: live", {},
                     statuses={"b/a": "interrupted"},
                     options=("--server", "demo", "--results", "my results"))
    text = render([job("a", "interrupted")], facts)
    assert text.splitlines()[-1] == ("resume with: runner apply plans/p.yaml --server demo "
                                     "--results 'my results' --resume r/p/1")


def test_an_ok_job_notes_its_cancelled_requests_and_retry_after_pauses() -> None:
    cut = job("m", requests={"ok": 18, "failed": 0, "cancelled": 2},
              retry_after={"pauses": 3, "paused_s": 4.5})
    assert job_cells(cut)[-1] == "2 cancelled  paused 3x 4.50 s (Retry-After)"
    assert job_cells(job("m", retry_after={"pauses": 0, "paused_s": 0.0}))[-1] == ""


def test_a_model_id_or_message_with_controls_cannot_forge_a_line_or_clear_the_screen() -> None:
    forged = "m\njobs: ok=999 slo_missed=0 failed=0 skipped=0 interrupted=0\x1b[2J"
    failed = job("x\x1b]0;title\x07", status="failed", error="HTTP 500: \x1b[2J\rboom\nFAKE")
    lines = render([job(forged), failed], FACTS).splitlines()
    assert [line for line in lines if line.startswith("jobs:")] == [
        "jobs: ok=1 slo_missed=0 failed=1 skipped=0 interrupted=0"]
    assert len(lines) == len(render([job("a"), job("b")], FACTS).splitlines())
    assert "m\\njobs: ok=999" in lines[3] and "\\x1b[2J" in lines[3]
    assert "(HTTP 500: \\x1b[2J\\rboom\\nFAKE)" in lines[4]
    assert not any(c in "\n".join(lines) for c in "\x1b\x07\r")


def test_the_verdict_and_its_first_reason_and_tokens_chunks_are_on_the_jobs_line() -> None:
    figures = {"client": {"client_bound": True, "reason": "event-loop delay p99 23.4 ms > 10 ms"},
               "output_tokens_source": {"usage": 0, "chunks": 20, "usage_inconsistent": 0},
               "requests": {"ok": 20, "failed": 0}}
    bound = job("m", **figures, validity=judge_validity(figures))
    assert job_cells(bound)[-1] == ("invalid: client_bound (event-loop delay p99 23.4 ms > 10 ms)"
                                    " +1 more  tokens≈chunks")
    estimated = {**figures, "client": {"client_bound": False}}
    assert job_cells(job("m", **estimated, validity=judge_validity(estimated)))[-1] == (
        "degraded: tokens_from_chunks (20 of 20 ok requests counted by content chunks (no usage))"
        "  tokens≈chunks")
    assert job_cells(job("m"))[-1] == ""  # valid says nothing


def test_a_job_stored_before_verdicts_says_its_validity_is_unknown() -> None:
    old = job("m", client={"client_bound": True})
    del old["metrics"]["validity"]
    assert job_cells(old)[-1] == "validity unknown  client_bound"
    assert job_cells({**old, "metrics": None, "status": "skipped"})[-1] == ""


def test_the_recap_shows_queue_inclusive_latency_when_the_queue_is_material() -> None:
    """Issue 10 §4: the recap showed TTFT p50 304 ms of requests that had waited a second
    for a max_concurrency slot; now the queue-inclusive figures stand beside it."""
    queued = {"client_queue_ms": {"p50": 880.0, "p90": 1500.0}, "e2e_ms": {"p50": 340.0},
              "ttft_from_scheduled_ms": {"p50": 1180.4}, "e2e_from_scheduled_ms": {"p50": 1222.0}}
    notes = job_cells(job("m", **queued))[-1]
    assert notes == "queued: TTFT p50 1180 ms, E2E p50 1222 ms from scheduled (queue p50 880 ms)"
    small = {**queued, "client_queue_ms": {"p50": 1.0, "p90": 2.0}}
    assert job_cells(job("m", **small))[-1] == ""



def test_an_embeddings_job_shows_inputs_and_latency_never_a_zero_output_rate() -> None:
    embed = job("e", ttft_ms={"count": 0, "p50": None, "p95": None},
                tpot_ms={"count": 0, "p50": None}, e2e_ms={"p50": 5.5, "p95": 6.12},
                throughput={"output_tokens_per_s": None, "inputs_per_s": 345.2,
                            "prompt_tokens_per_s": 4142.4})
    cells = job_cells(embed)
    assert cells[4:10] == ["20", "0", "-", "-", "-", "345.2 inputs/s (4142.4 prompt tok/s)"]
    assert cells[10] == "latency p50 5.50 p95 6.12 ms"
    line = job_line(embed)
    assert "tok/s" not in line.replace("prompt tok/s", "") and "TTFT" not in line, line
    assert "ok=20 failed=0  345.2 inputs/s (4142.4 prompt tok/s)  latency p50 5.50 p95 6.12 ms" \
        in line
    # a chat job keeps its output tok/s and no latency note
    assert "latency" not in job_cells(job("m"))[10] and "1286.5 tok/s" in job_line(job("m"))


def test_a_ttfo_check_missed_by_answers_that_never_came_says_so() -> None:
    check = {"metric": "ttfo_ms", "stat": "p95", "limit": 1000, "value": None, "passed": False,
             "status": "fail", "unanswered": 6}
    summary = {"status": "ok", "metrics": {"slo": {"status": "fail", "checks": [check]}}}
    assert slo_misses(summary) == [
        "ttfo_ms p95 not reached (6 answers with no answer text) (limit <= 1000)"]
