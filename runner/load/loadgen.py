"""The load generator: sends a job's requests (closed or open loop) and measures every answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from runner.load.exchange import Target
from runner.load.loadjob import PROBE_MIN, LoadJob, LoadResult, ignore
from runner.load.prefixes import with_priming
from runner.load.records import RequestRecord
from runner.load.sessions import SessionJob
from runner.load.workload import PromptSource

__all__ = ["PROBE_MIN", "LoadResult", "Target", "load_job", "run_load"]


async def run_load(
    target: Target,
    params: Mapping[str, Any],
    prompts: PromptSource,
    *,
    on_record: Callable[[RequestRecord], None] | None = None,
    stop: asyncio.Event | None = None,
    hurry: asyncio.Event | None = None,
    grace_s: float = 2.0,
    before_window: Callable[[], Awaitable[object]] | None = None,
    max_error_rate: float = 0.0,
) -> LoadResult:
    """Run one job's load; `stop` (an interrupt) ends it early, in-flight requests get `grace_s`
    unless `hurry` (a second interrupt) is or gets set: then they are cancelled at once.

    At `duration_s` sending stops and in-flight requests get `duration_grace_s`, then they are
    cancelled. The job stops early, in-flight requests getting `grace_s`, when the server cannot
    be benchmarked: its first requests all refused (`unreachable`), a run of requests all timed
    out (`unresponsive`), or it still asked to wait after PAUSES_IN_A_ROW pauses (`rate_limited`).
    A 429, or a 503 with Retry-After, pauses sending for the whole job (see `pacing`). It also
    stops early, with `early_stop` saying why, once its answer is known (see earlystop: its
    error rate passed `early_stop.error_rate`, default `max_error_rate`, as `error_rate`; an
    open loop's server over-saturated, as `saturated`).

    Warm-up requests come first (indices 0..warmup_requests-1, marked `warmup`) and all end
    before the measured window opens (see Schedule._warm_up). Every finished request, failed or
    cancelled ones included, goes to `on_record` as it ends; warm-ups when the window opens,
    with offsets from its start (or at the job's end, if it never opened). `before_window` is
    awaited after the warm-ups ended and before the window opens (not when there is none)."""
    job = load_job(target, params, prompts, on_record or ignore, max_error_rate)
    job.before_window = before_window
    return await job.run(stop, hurry, grace_s)


def load_job(target: Target, params: Mapping[str, Any], prompts: PromptSource,
             on_record: Callable[[RequestRecord], None], max_error_rate: float) -> LoadJob:
    """The running job `run_load` runs (a worker process runs its part of one: run.workers),
    multi-turn sessions or single requests, its warm-ups counting the priming requests."""
    kind: type[LoadJob] = SessionJob if params.get("session") else LoadJob
    return kind(target, with_priming(params), prompts, on_record, max_error_rate)
