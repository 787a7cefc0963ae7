"""A job's load split into shares and run by worker processes: `run_split` is run_load with
`lanes` processes instead of one (runner.run.repetitions calls it for `--workers N`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from runner.load.deal import Deal, deal_load
from runner.load.exchange import Target
from runner.load.loadjob import LoadResult
from runner.load.prefixes import with_priming
from runner.load.records import RequestRecord
from runner.load.replay import replay_offsets
from runner.run.workerpool import run_pool
from runner.run.workers import Share


def shares_for(target: Target, params: Mapping[str, Any], prompts: Any, lanes: int,
               max_error_rate: float = 0.0, grace_s: float = 2.0) -> list[Share]:
    """The job's load in `lanes` shares, dealt from its one schedule (runner.load.deal): each
    with its streams (closed loop: its dealt slot openings; open loop: its turn's part of
    max_concurrency, when set) and its indices and arrivals.

    Raises:
        ValueError: an open loop with neither requests nor duration_s (workercount.workers_for
            gives such a job one worker)."""
    warmup = int(with_priming(params).get("warmup_requests") or 0)
    deals = deal_load(params, lanes, warmup, replay_offsets(params, prompts))
    return [Share(target, _own_params(params, deal), prompts, deal, max_error_rate, grace_s)
            for deal in deals]


def _own_params(params: Mapping[str, Any], deal: Deal) -> dict[str, Any]:
    """The job's params as one worker sees its share: its streams, and an open loop's rate (and
    a ramp's start) divided among the workers, which is what its own checks compare with
    (early stop's saturation rule, the unreachable probe's second of arrivals); its arrivals
    themselves come dealt from the whole job's schedule."""
    own = dict(params)
    if deal.arrivals is None:
        own["concurrency"] = len(deal.openings)
        return own
    if params.get("max_concurrency") is not None:
        own["max_concurrency"] = max(1, len(range(deal.lane, int(params["max_concurrency"]),
                                                  deal.lanes)))
    if params.get("rate") is not None:
        own["rate"] = float(params["rate"]) / deal.lanes
    ramp = params.get("ramp_up")
    if isinstance(ramp, Mapping) and ramp.get("start") is not None:
        own["ramp_up"] = {**ramp, "start": float(ramp["start"]) / deal.lanes}
    return own


def total_requests(params: Mapping[str, Any]) -> int | None:
    """A closed loop's requests, warm-ups and priming included; None without `requests`."""
    requests = params.get("requests")
    warmup = int(with_priming(params).get("warmup_requests") or 0)
    return None if requests is None else warmup + int(requests)


async def run_split(
    target: Target, params: Mapping[str, Any], prompts: Any, lanes: int, *,
    on_record: Callable[[RequestRecord], None], stop: asyncio.Event | None = None,
    hurry: asyncio.Event | None = None, grace_s: float = 2.0,
    before_window: Callable[[], Awaitable[object]] | None = None, max_error_rate: float = 0.0,
    pool: Callable[..., Awaitable[LoadResult]] = run_pool,
) -> LoadResult:
    """runner.load.loadgen.run_load's job sent by `lanes` workers (same arguments and result;
    see workerpool.run_pool for how they run and workermerge.merge for the result). `pool`
    runs the shares: worker processes (run_pool) or Ray actors (raypool.run_ray_pool)."""
    shares = shares_for(target, params, prompts, lanes, max_error_rate, grace_s)
    return await pool(shares, total_requests(params), on_record, stop, hurry, before_window)
