"""The workers' outcomes as one job's result, and a lost worker's requests as records."""

from __future__ import annotations

import pytest

from runner.load.deal import Deal
from runner.load.loadjob import LoadResult
from runner.load.records import ClientHealth
from runner.run.metrics import summarize
from runner.run.workermerge import Lane, lost_records, merge, worst_health


def outcome(stopped: str = "done", lag: list[float] | None = None,
            loop: list[float] | None = None) -> LoadResult:
    return LoadResult([], ClientHealth(lag or [], loop or []), 100.0, 2.0, stopped)


def test_the_self_check_is_the_worst_worker_s_so_one_bound_worker_makes_the_job_bound() -> None:
    calm, busy = ClientHealth([1.0] * 100, [0.5] * 100), ClientHealth([2.0] * 100, [30.0] * 100)
    health = worst_health([calm, busy])
    assert health.scheduling_lag_ms == busy.scheduling_lag_ms  # each by its own p99
    assert health.loop_delay_ms == busy.loop_delay_ms
    client = summarize([], health=health)["client"]
    assert client["client_bound"] and "event-loop delay" in client["reason"]
    assert not summarize([], health=worst_health([calm, calm]))["client"]["client_bound"]


@pytest.mark.parametrize(("ends", "lost", "interrupted", "first", "expected"), [
    (["done", "done"], False, False, None, "done"),
    (["done", "duration"], False, False, None, "duration"),
    (["error_rate", "rate_limited"], False, False, "error_rate", "error_rate"),
    (["done"], True, False, None, "worker_lost"),
    (["interrupted"], True, True, None, "interrupted"),
    (["interrupted", "interrupted"], False, True, None, "interrupted"),
])
def test_why_the_job_stopped(ends: list[str], lost: bool, interrupted: bool, first: str | None,
                             expected: str) -> None:
    lanes = [Lane(Deal(k, 2, 0), 1, result=outcome(end)) for k, end in enumerate(ends)]
    if lost:
        lanes.append(Lane(Deal(1, 2, 0), 1, lost="gone"))
    assert merge(lanes, [], interrupted, first).stopped == expected


def test_a_lost_closed_loop_worker_s_unsent_requests_are_all_recorded() -> None:
    lane = Lane(Deal(1, 2, warmup=2), streams=2, received={1, 3, 5}, lost="worker 1 lost",
                lost_at=101.0)
    records = lost_records(lane, total=12, whole=True, window_at=100.0)
    assert [r.index for r in records] == [7, 9, 11]
    assert all(r.error_kind == "worker_lost" and not r.ok and r.error == "worker 1 lost"
               for r in records)
    assert records[0].sent_ms == pytest.approx(1000.0)


def test_a_stopped_closed_loop_counts_only_what_was_in_flight() -> None:
    lane = Lane(Deal(0, 2, warmup=0), streams=2, received={0, 4}, lost="x", lost_at=5.0)
    records = lost_records(lane, total=None, whole=True, window_at=4.0)  # no end: in flight
    assert [r.index for r in records] == [2, 6, 8]  # a gap below its highest, and 2 streams


def test_a_lost_open_loop_worker_keeps_its_arrivals_schedule() -> None:
    deal = Deal(0, 2, warmup=1, arrivals=((1, 0.0), (3, 0.5), (5, 2.0)))
    lane = Lane(deal, streams=1, received={0}, lost="x", lost_at=11.0)
    everything = lost_records(lane, total=None, whole=True, window_at=10.0)
    assert [(r.index, r.scheduled_ms, r.sent_ms) for r in everything] == [
        (1, 0.0, 1000.0), (3, 500.0, 1000.0), (5, 2000.0, 2000.0)]
    due = lost_records(lane, total=None, whole=False, window_at=10.0)  # the job was stopped
    assert [r.index for r in due] == [1, 3]


def test_a_worker_lost_in_its_warm_ups_loses_them_too() -> None:
    lane = Lane(Deal(1, 2, warmup=4), streams=1, received=set(), lost="x", lost_at=1.0)
    records = lost_records(lane, total=8, whole=True, window_at=None)
    assert [(r.index, r.warmup) for r in records] == [(1, True), (3, True), (5, False),
                                                      (7, False)]
