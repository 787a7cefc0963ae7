"""The workers' outcomes as the job's one result: their records, the worst worker's self-check,
why the job stopped; and the records of a lost worker's requests (`worker_lost`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from runner.load.deal import Deal
from runner.load.loadjob import LoadResult
from runner.load.records import ClientHealth, RequestRecord

# Why the job stopped, of several workers' reasons: the server's verdict before a plain end.
NORMAL_ENDS = ("done", "duration")


@dataclass
class Lane:
    """One worker as its driver sees it: its deal, the indices it recorded, its outcome
    (None until "done") or why it was lost, and when (wall time)."""

    deal: Deal
    streams: int
    received: set[int] = field(default_factory=set)
    result: LoadResult | None = None
    lost: str | None = None
    lost_at: float | None = None


def merge(lanes: Sequence[Lane], records: list[RequestRecord], interrupted: bool,
          first_reason: str | None) -> LoadResult:
    """The job's result from its lanes' outcomes and every record they (and `lost_records`)
    gave. stopped: `interrupted` when the run was interrupted, else `worker_lost` when a
    worker was lost, else the first reason a worker stopped for other than done/duration
    (`first_reason`: the others were told to give up for it), else duration or done. The
    self-check is the worst worker's (`worst_health`); duration_s and warmup_s the longest."""
    results = [lane.result for lane in lanes if lane.result is not None]
    ends = [r.stopped for r in results]
    if interrupted and ("interrupted" in ends or any(lane.lost for lane in lanes)):
        stopped = "interrupted"
    elif any(lane.lost for lane in lanes):
        stopped = "worker_lost"
    else:
        stopped = first_reason or ("duration" if "duration" in ends else "done")
    early = next((r.early_stop for r in results if r.early_stop), None)
    records.sort(key=lambda r: r.index)
    return LoadResult(
        records, worst_health([r.health for r in results]),
        min((r.started_at for r in results), default=0.0),
        max((r.duration_s for r in results), default=0.0), stopped,
        [p for r in results for p in r.pauses_s], max((r.warmup_s for r in results), default=0.0),
        early if early and early.get("reason") == stopped else None)


def worst_health(healths: Sequence[ClientHealth]) -> ClientHealth:
    """Send lag and event-loop delay each of the worker whose p99 of it is the highest: the job
    is client-bound when any worker was."""
    def worst(lists: list[list[float]]) -> list[float]:
        return max(lists, key=_p99, default=[])
    return ClientHealth(worst([h.scheduling_lag_ms for h in healths]),
                        worst([h.loop_delay_ms for h in healths]))


def _p99(values: list[float]) -> float:
    if not values:
        return -math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def lost_records(lane: Lane, total: int | None, whole: bool,
                 window_at: float | None) -> list[RequestRecord]:
    """A lost worker's requests that never ended, each a failed record of kind worker_lost:
    `whole` (the job was meant to go on) every planned request of its share it did not
    record; else (the job was stopped meanwhile, or its share has no end) the ones it had
    sent or was due to send when it died: up to its highest recorded index and its streams
    beyond (closed loop), or arrivals due by then (open loop). Offsets count from the
    window's opening (`window_at`, wall time; None: it never opened, they are 0)."""
    died_ms = 0.0 if window_at is None or lane.lost_at is None \
        else max(0.0, (lane.lost_at - window_at) * 1e3)
    offsets = dict(lane.deal.arrivals or ())
    whole = whole and (total is not None or _open(lane))
    return [_lost(lane, index, died_ms, offsets.get(index))
            for index in _lost_indices(lane, total, whole, died_ms, offsets)]


def _open(lane: Lane) -> bool:
    return lane.deal.arrivals is not None


def _lost_indices(lane: Lane, total: int | None, whole: bool, died_ms: float,
                  offsets: dict[int, float]) -> list[int]:
    unrecorded = (i for i in lane.deal.indices(total) if i not in lane.received)
    if whole:
        return list(unrecorded)
    if _open(lane):
        return [i for i in unrecorded if offsets.get(i, 0.0) * 1e3 <= died_ms]
    top, found, beyond = max(lane.received, default=-1), [], 0
    for index in unrecorded:
        beyond += index > top
        if beyond > lane.streams:
            break
        found.append(index)
    return found


def _lost(lane: Lane, index: int, died_ms: float, offset_s: float | None) -> RequestRecord:
    scheduled = None if offset_s is None else offset_s * 1e3
    return RequestRecord(index=index, warmup=index < lane.deal.warmup, scheduled_ms=scheduled,
                         sent_ms=max(died_ms, scheduled or 0.0), ok=False,
                         error_kind="worker_lost", error=lane.lost)
