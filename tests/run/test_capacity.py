"""Running a capacity search as trial jobs (fake trial runs) and the record it makes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from runner.plan.expand import Job
from runner.run.capacity import capacity_line, run_search_jobs, trial_outcome

SEARCH = {"over": "rate", "from": 1, "to": 64, "precision": 0.1, "max_jobs": 12}
SLO_CHECK = {"metric": "ttft_ms", "stat": "p95", "limit": 500}


@dataclass(frozen=True)
class Spec:
    job: Job
    search_id: str | None = None


def _summary(job: Job, ttft: float, verdict: str = "valid", status: str = "ok") -> dict[str, Any]:
    check = {**SLO_CHECK, "value": ttft, "passed": ttft <= 500}
    reasons = [{"code": "client_bound", "severity": "invalid", "figure": "send lag p99 80 ms"}] \
        if verdict == "invalid" else []
    return {"id": job.id, "status": status, "error": None, "stopped": "done",
            "metrics": {"slo": {"passed": check["passed"], "checks": [check]},
                        "validity": {"verdict": verdict, "reasons": reasons}}}


def _search(knee: float, invalid_from: float | None = None) -> tuple[list[Any], dict[str, Any],
                                                                    list[dict[str, Any]]]:
    job = Job("b/tiny", "b_tiny-0", "b", "tiny", {}, {"rate": 1.0, "search": SEARCH})
    added: list[dict[str, Any]] = []

    async def run_job(spec: Any) -> dict[str, Any]:
        rate = spec.job.params["rate"]
        assert "search" not in spec.job.params and spec.search_id == "b/tiny"
        bad = invalid_from is not None and rate >= invalid_from
        return _summary(spec.job, 100 if rate <= knee else 900, "invalid" if bad else "valid")

    summaries, record = asyncio.run(run_search_jobs(Spec(job), run_job, added.append,
                                                    lambda: False))
    return summaries, record, added


def test_trials_are_ordinary_jobs_and_the_record_names_the_bound() -> None:
    summaries, record, added = _search(knee=20)
    assert [e["id"] for e in added] == [s["id"] for s in summaries]
    assert added[0]["id"] == "b/tiny/rate=1.0" and added[0]["params"]["rate"] == 1.0
    assert 20 / 1.1 <= record["capacity"] <= 20 and record["unit"] == "req/s"
    assert record["bound_by"] == {**SLO_CHECK, "value": 900}
    fails = [t["id"] for t in record["trials"] if t["outcome"] == "fail"]
    assert record["first_fail"] == min(fails, key=lambda i: float(i.split("=")[1]))
    assert record["stopped_reason"] == "precision" and not record["bound_hit"]
    line = capacity_line(record)
    assert line.startswith(f"capacity tiny: {record['capacity']:g} req/s (ttft_ms p95 <= 500 "
                           f"bound it; {len(summaries)} trials)")


def test_an_invalid_trial_stops_the_search_with_an_explanation() -> None:
    _, record, _ = _search(knee=20, invalid_from=4)
    assert [t["value"] for t in record["trials"]] == [1.0, 2.0, 4.0]
    assert record["capacity"] == 2.0 and record["stopped_reason"] == "invalid"
    assert "b/tiny/rate=4.0 is invalid (send lag p99 80 ms)" in record["explanation"]
    assert "cannot decide" in capacity_line(record)


def test_capacity_is_null_when_from_fails_and_bound_hit_when_to_passes() -> None:
    _, none, _ = _search(knee=0.5)
    assert none["capacity"] is None and none["stopped_reason"] == "from_failed"
    assert capacity_line(none) == (
        "capacity tiny: none (ttft_ms p95 <= 500 bound it; even the first point (search.from) "
        "missed the SLO: lower search.from; 1 trial) [b]")
    _, top, _ = _search(knee=1000)
    assert top["capacity"] == 64.0 and top["bound_hit"] and top["stopped_reason"] == "bound"


def test_a_trial_that_says_nothing_about_the_slo_ends_the_search() -> None:
    job = Job("b/tiny/rate=1.0", "s", "b", "tiny", {}, {})
    assert trial_outcome(_summary(job, 100, status="interrupted")) == (None, "interrupted")
    assert trial_outcome({"status": "failed", "metrics": None}) == (None, "failed")
    assert trial_outcome(_summary(job, 900, status="failed")) == ("fail", None)
    blind = {"passed": False, "status": "no_data", "checks": [
        {**SLO_CHECK, "value": None, "passed": False, "status": "no_data"}]}
    no_answer = _summary(job, 0, status="failed")
    no_answer["metrics"]["slo"] = blind  # every request failed: a fail, not 'no data'
    assert trial_outcome(no_answer) == ("fail", None)
    ok = _summary(job, 0)
    ok["metrics"]["slo"] = blind
    assert trial_outcome(ok) == (None, "no_data")


def test_an_over_saturated_trial_is_a_fail_not_an_invalid_one() -> None:
    """Above the knee an open loop over-saturates and early_stop stops the trial (validity
    saturated, invalid): that is the answer the search looks for, not a cause to stop it
    ('an invalid trial cannot decide the search')."""
    job = Job("b/tiny", "b_tiny-0", "b", "tiny", {}, {"rate": 1.0, "search": SEARCH})

    async def run_job(spec: Any) -> dict[str, Any]:
        rate = spec.job.params["rate"]
        summary = _summary(spec.job, 100)  # its SLO held on the records it kept
        if rate > 20:
            summary["early_stop"] = {"reason": "saturated", "target_per_s": rate,
                                     "completed_per_s": 20.0}
            summary["metrics"]["validity"] = {"verdict": "invalid", "reasons": [
                {"code": "saturated", "severity": "invalid", "figure": "completed 20"}]}
        return summary

    _, record = asyncio.run(run_search_jobs(Spec(job), run_job, lambda _: None, lambda: False))
    assert 20 / 1.1 <= record["capacity"] <= 20 and record["stopped_reason"] == "precision"
    assert record["bound_by"]["metric"] == "saturated"
    assert record["bound_by"]["value"] == 20.0
    assert "over-saturated at " in capacity_line(record)
    assert [t["metric"] for t in record["trials"]] == [100] * len(record["trials"])
    from runner.report.capacitychart import capacity_chart
    assert "SLO limit" not in capacity_chart(record)


def test_a_trial_whose_requests_all_failed_is_not_bound_by_an_slo_it_never_measured() -> None:
    """Every request of the first trial failed (a 404): the record named 'ttft_ms p95 <= 500
    bound it; lower search.from', an SLO that had no data to judge."""
    job = Job("b/tiny", "b_tiny-0", "b", "tiny", {}, {"rate": 1.0, "search": SEARCH})

    async def run_job(spec: Any) -> dict[str, Any]:
        summary = _summary(spec.job, 0, status="failed")
        summary["error"] = "no request succeeded (3 x http_404)"
        summary["metrics"]["slo"] = {"passed": False, "status": "no_data", "checks": [
            {**SLO_CHECK, "value": None, "passed": False, "status": "no_data"}]}
        return summary

    _, record = asyncio.run(run_search_jobs(Spec(job), run_job, lambda _: None, lambda: False))
    assert record["capacity"] is None and record["bound_by"] is None
    assert record["explanation"].startswith(
        "trial b/tiny/rate=1.0 failed: no request succeeded (3 x http_404)")
    assert "bound it" not in capacity_line(record)


def test_a_trial_that_fell_short_of_its_rate_is_a_fail() -> None:
    """max_concurrency 2 let the client send 20 req/s whatever the trial's rate: the trials at
    40 and 80 req/s (rate_shortfall, degraded) passed their SLO on what was sent, and the
    search called 80 req/s the capacity ('search.to met the SLO')."""
    job = Job("b/tiny", "b_tiny-0", "b", "tiny", {}, {"rate": 1.0, "search": SEARCH})

    async def run_job(spec: Any) -> dict[str, Any]:
        rate = spec.job.params["rate"]
        summary = _summary(spec.job, 100)  # TTFT from the send: the client queue is not in it
        if rate > 20:
            summary["metrics"]["rate"] = {"target_per_s": rate, "achieved_per_s": 20.0,
                                          "scheduled_per_s": rate, "ratio": 20.0 / rate}
            summary["metrics"]["validity"] = {"verdict": "degraded", "reasons": [
                {"code": "rate_shortfall", "severity": "degraded", "figure": "achieved 20"}]}
        return summary

    _, record = asyncio.run(run_search_jobs(Spec(job), run_job, lambda _: None, lambda: False))
    assert 20 / 1.1 <= record["capacity"] <= 20 and record["stopped_reason"] == "precision"
    assert record["bound_by"]["metric"] == "rate_shortfall" and not record["bound_hit"]
    assert record["bound_by"]["value"] == 20.0 and record["bound_by"]["limit"] > 20
    assert "achieved 20 of " in capacity_line(record)
    from runner.report.capacitychart import capacity_chart
    assert "SLO limit" not in capacity_chart(record)
