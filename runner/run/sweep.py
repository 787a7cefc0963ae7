"""GuideLLM's sweep as ordinary jobs of the run: a synchronous job (concurrency 1) and a
throughput job (concurrency `sweep.concurrency`) measure the lowest and highest rates (successful
requests per second, metrics.throughput.requests_per_s), then `sweep.rates` constant-rate jobs
run at rates evenly spaced strictly between them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from runner.plan.expand import Job
from runner.plan.searchplan import sweep_settings
from runner.run.capacity import RunJob, derived_job, entry

_LOAD = ("concurrency", "rate", "arrival", "max_concurrency", "sweep")


def sweep_rates(low: float, high: float, count: int) -> list[float]:
    """`count` rates evenly spaced strictly between `low` and `high` (req/s), 4 significant
    digits, without repeats; none when `high` is not above `low`."""
    if not high > low > 0:
        return []
    step = (high - low) / (count + 1)
    rates = (float(f"{low + i * step:.4g}") for i in range(1, count + 1))
    return list(dict.fromkeys(r for r in rates if low < r < high))


def sweep_jobs(job: Job, rates: Sequence[float] = ()) -> list[Job]:
    """The synchronous and throughput jobs of `job`'s sweep, or with `rates` its rate jobs."""
    sweep = sweep_settings(job.params)
    base = {k: v for k, v in job.params.items() if k not in _LOAD}
    if rates:
        return [derived_job(job, {"rate": r}, {**base, "rate": r, "arrival": "constant"})
                for r in rates]
    return [derived_job(job, {"concurrency": c}, {**base, "concurrency": c})
            for c in (1, sweep["concurrency"])]


async def run_sweep_jobs(spec: Any, run_job: RunJob, add_job: Callable[[dict[str, Any]], None],
                         stop: Callable[[], bool]) -> list[dict[str, Any]]:
    """Run the sweep of `spec` (a JobSpec whose job holds `sweep`); returns its jobs' summaries.
    It ends after the first two when either measured no rate."""
    summaries = await _run_all(spec, sweep_jobs(spec.job), run_job, add_job, stop)
    measured = [_rate(s) for s in summaries]
    if len(measured) < 2 or None in measured:
        return summaries
    low, high = measured
    assert low is not None and high is not None
    rates = sweep_rates(low, high, spec.job.params["sweep"]["rates"])
    return summaries + await _run_all(spec, sweep_jobs(spec.job, rates), run_job, add_job, stop)


async def _run_all(spec: Any, jobs: Sequence[Job], run_job: RunJob,
                   add_job: Callable[[dict[str, Any]], None],
                   stop: Callable[[], bool]) -> list[dict[str, Any]]:
    summaries = []
    for job in jobs:
        if stop():
            break
        add_job(entry(job, spec.job.id))
        summaries.append(await run_job(replace(spec, job=job, search_id=spec.job.id)))
    return summaries


def _rate(summary: Mapping[str, Any]) -> float | None:
    if summary.get("status") != "ok":
        return None
    value = ((summary.get("metrics") or {}).get("throughput") or {}).get("requests_per_s")
    return float(value) if isinstance(value, int | float) and value > 0 else None
