"""GuideLLM's sweep: the rates between the measured ones, and its jobs (fake job runs)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from runner.plan.expand import Job
from runner.run.sweep import run_sweep_jobs, sweep_rates


@dataclass(frozen=True)
class Spec:
    job: Job
    search_id: str | None = None


@pytest.mark.parametrize(("low", "high", "count", "expected"), [
    (10, 50, 3, [20.0, 30.0, 40.0]),
    (1, 2, 1, [1.5]),
    (5, 5, 3, []),  # the server does not scale: nothing between
    (9, 3, 2, []),
    (10.0001, 10.0003, 2, []),  # rounding would land on the ends
])
def test_rates_lie_evenly_and_strictly_between(low, high, count, expected) -> None:
    assert sweep_rates(low, high, count) == expected


def _run(rate_of: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    params = {"input_tokens": 16, "concurrency": 1, "sweep": {"rates": 2, "concurrency": 8},
              "requests": 10}
    job = Job("b/tiny", "b_tiny-0", "b", "tiny", {}, params)
    added: list[dict[str, Any]] = []

    async def run_job(spec: Any) -> dict[str, Any]:
        assert spec.search_id == "b/tiny" and "sweep" not in spec.job.params
        rate = rate_of(spec.job.params)
        return {"id": spec.job.id, "status": "ok" if rate else "failed",
                "metrics": {"throughput": {"requests_per_s": rate}}}

    summaries = asyncio.run(run_sweep_jobs(Spec(job), run_job, added.append, lambda: False))
    return summaries, added


def test_a_sweep_measures_then_runs_constant_rates_between() -> None:
    summaries, added = _run(lambda p: {1: 10.0, 8: 40.0}.get(p.get("concurrency"), 1.0))
    assert [e["id"] for e in added] == ["b/tiny/concurrency=1", "b/tiny/concurrency=8",
                                        "b/tiny/rate=20.0", "b/tiny/rate=30.0"]
    assert added[2]["params"]["arrival"] == "constant" and "concurrency" not in added[2]["params"]
    assert len(summaries) == 4


def test_a_sweep_whose_measuring_job_failed_stops_there() -> None:
    summaries, added = _run(lambda p: None if p.get("concurrency") == 8 else 10.0)
    assert [e["id"] for e in added] == ["b/tiny/concurrency=1", "b/tiny/concurrency=8"]
    assert len(summaries) == 2
