"""The early-stop rules (issue 13 §3), fed records and figures: no clock, no server."""

from __future__ import annotations

from typing import Any

import pytest

from runner.load.earlystop import STOP, EarlyStop, saturation
from runner.load.records import RequestRecord
from runner.run.executor import judge


def rec(index: int, ok: bool = True, **fields: Any) -> RequestRecord:
    return RequestRecord(index=index, ok=ok, error_kind=None if ok else "http",
                         sent_ms=fields.pop("sent_ms", index * 10.0),
                         e2e_ms=fields.pop("e2e_ms", 100.0), **fields)


def feed(stop: EarlyStop, records: list[RequestRecord]) -> tuple[int, dict[str, Any] | None]:
    """How many records were fed until a rule held (all of them when none did)."""
    for i, record in enumerate(records, start=1):
        if (detail := stop.observe(record)) is not None:
            return i, detail
    return len(records), None


CLOSED = {"concurrency": 4}


def test_errors_stop_only_after_min_requests_and_say_the_figure() -> None:
    """Every request fails: the rule waits for min_requests (20) before it may decide."""
    n, detail = feed(EarlyStop(CLOSED, 0.1), [rec(i, ok=False) for i in range(100)])
    assert n == STOP.min_requests == 20
    assert detail == {"reason": "error_rate", "error_rate": 1.0, "lower_bound": 0.6897, "z": 3.0,
                      "threshold": 0.1, "finished": 20, "failed": 20, "min_requests": 20}


def test_an_error_rate_at_the_threshold_never_stops_on_noise() -> None:
    """10% failed, max_error_rate 0.1: the job passes in the end, so it must not be stopped
    (3 failures of the first 24 are 12.5%: a naive rate check stops there)."""
    records = [rec(i, ok=i % 10 != 3) for i in range(400)]
    assert feed(EarlyStop(CLOSED, 0.1), records)[1] is None
    n, detail = feed(EarlyStop(CLOSED, 0.02), records)  # 10% is 5 x 2%: clear soon
    assert detail is not None and detail["error_rate"] == pytest.approx(0.1, abs=0.03)
    assert detail["lower_bound"] > 0.02 and 20 <= n < 100


def test_the_default_benchmark_keeps_running_and_early_stop_turns_it_on() -> None:
    failing = [rec(i, ok=False) for i in range(50)]
    assert feed(EarlyStop(CLOSED, 0.0), failing)[1] is None  # max_error_rate 0: off
    on = EarlyStop({**CLOSED, "early_stop": {"min_requests": 5}}, 0.0)  # defaults to 0
    assert feed(on, failing)[0] == 5
    off = EarlyStop({**CLOSED, "early_stop": {"error_rate": False}}, 0.5)
    assert feed(off, failing)[1] is None
    # a limit of 0 stops at the first failure after min_requests, never without one
    fresh = EarlyStop({**CLOSED, "early_stop": {"min_requests": 5}}, 0.0)
    assert feed(fresh, [rec(i) for i in range(200)])[1] is None
    assert feed(EarlyStop({**CLOSED, "early_stop": {}}, 0.0),
                [rec(i, ok=i != 30) for i in range(200)])[0] == 31
    own = EarlyStop({**CLOSED, "early_stop": {"error_rate": 0.5, "min_requests": 3}}, 0.0)
    n, detail = feed(own, failing)
    assert detail is not None and 3 < n < 20 and detail["threshold"] == 0.5


def test_warmups_and_cancelled_requests_do_not_count() -> None:
    stop = EarlyStop(CLOSED, 0.1)
    noise = [rec(i, ok=False, warmup=True) for i in range(30)]
    noise += [RequestRecord(index=i, error_kind="cancelled") for i in range(30, 60)]
    assert feed(stop, noise)[1] is None and stop.finished == 0


def answers(rate_per_s: float, seconds: float, wait_ms: Any) -> list[tuple[float, float]]:
    step = 1e3 / rate_per_s
    return [(i * step, wait_ms(i * step)) for i in range(int(seconds * rate_per_s))]


def test_saturation_needs_both_a_shortfall_and_a_growing_wait() -> None:
    window = 5e3
    growing = answers(10, 10, lambda t: 50 + t / 2)  # a queue: the wait grows with time
    steady = answers(10, 10, lambda t: 50.0)
    detail = saturation(growing, 10e3, window, 40.0)
    assert detail is not None and detail["reason"] == "saturated"
    assert detail["completed_per_s"] == pytest.approx(10, abs=0.3)
    assert detail["wait_p50_ms"] >= STOP.wait_growth * detail["previous_wait_p50_ms"]
    assert saturation(steady, 10e3, window, 40.0) is None  # slow but not queueing
    assert saturation(growing, 10e3, window, 11.0) is None  # it keeps up with its target
    assert saturation(growing[:3], 10e3, window, 40.0) is None  # too few answers to judge


def test_saturation_is_open_loop_only_and_can_be_turned_off() -> None:
    assert not EarlyStop(CLOSED, 0.0).saturation
    assert EarlyStop({"rate": 5}, 0.0).saturation
    assert not EarlyStop({"rate": 5, "early_stop": {"saturation": False}}, 0.0).saturation
    # a window spans at least 20 arrivals: 10 s at 2 req/s
    assert EarlyStop({"rate": 2}, 0.0).window_ms == 10e3


def test_an_open_loop_fed_a_growing_queue_stops_as_saturated() -> None:
    stop = EarlyStop({"rate": 40}, 0.0)
    records = [rec(i, sent_ms=i * 100.0, scheduled_ms=i * 25.0, ttft_ms=50.0, e2e_ms=200.0)
               for i in range(200)]  # sent 10/s of 40/s scheduled: the lag grows
    n, detail = feed(stop, records)
    assert detail is not None and detail["reason"] == "saturated" and n < 120
    assert detail["target_per_s"] == 40 and detail["at_s"] >= 10


def test_judge_fails_an_error_rate_stop_with_its_figure() -> None:
    metrics = {"requests": {"ok": 2, "cancelled": 0}, "error_rate": 0.9,
               "errors": {"http": 18}}
    detail = {"reason": "error_rate", "error_rate": 0.9, "threshold": 0.1, "finished": 20,
              "failed": 18, "min_requests": 20}
    detail.update(lower_bound=0.6, z=3.0)
    status, error = judge(metrics, "error_rate", 0.1, "engine died", detail)
    assert status == "failed"
    assert error == ("stopped early: error rate 0.9 (at least 0.6 at 3 standard errors) above "
                     "0.1 after 20 requests (early_stop.min_requests 20; 18 x http; first: "
                     "engine died)")


REPLAY = {"replay": {"speed": 1}, "trace": "t.jsonl"}


def bursty_schedule_s() -> list[float]:
    """10 s at 5/s, 10 s at 50/s, 10 s at 5/s: the rate a trace asks for varies."""
    return ([i / 5 for i in range(50)] + [10 + i / 50 for i in range(500)]
            + [20 + i / 5 for i in range(50)])


def test_a_healthy_replay_through_a_burst_is_never_stopped_as_saturated() -> None:
    """The server keeps up with every send: its answers end 0.5 s after the send (0.7 s in the
    burst, whose TTFT triples). Completions follow the schedule by the latency, so at the
    burst's start they trail the sends of the same window; that is no saturation."""
    schedule = bursty_schedule_s()
    stop = EarlyStop(REPLAY, 0.0, schedule_s=schedule)
    assert stop.saturation
    records = []
    for i, due_s in enumerate(schedule):
        busy = 10 <= due_s < 20
        ttft = 300.0 if busy else 100.0
        records.append(rec(i, sent_ms=due_s * 1e3, scheduled_ms=due_s * 1e3, ttft_ms=ttft,
                           e2e_ms=ttft + 400))
    records.sort(key=lambda r: r.sent_ms + (r.e2e_ms or 0))
    assert feed(stop, records) == (len(records), None)


def test_an_overloaded_replay_stops_as_saturated_against_its_schedule() -> None:
    """Sends on time at 40/s, answers at most 10/s: the queue grows, the wait with it."""
    schedule = [i / 40 for i in range(800)]
    stop = EarlyStop(REPLAY, 0.0, schedule_s=schedule)
    records, free = [], 0.0
    for i, due_s in enumerate(schedule):
        end = max(due_s * 1e3 + 200, free + 100)
        free = end
        records.append(rec(i, sent_ms=due_s * 1e3, scheduled_ms=due_s * 1e3,
                           ttft_ms=end - due_s * 1e3 - 100, e2e_ms=end - due_s * 1e3))
    n, detail = feed(stop, records)
    assert detail is not None and detail["reason"] == "saturated" and n < 200
    # the target: sends due in the window its answers were due in (40/s, a little less where
    # that window starts before the trace)
    assert 30 <= detail["target_per_s"] <= 40.5
    assert detail["completed_per_s"] == pytest.approx(10, abs=1)
    # turned off, it runs to the end
    off = EarlyStop({**REPLAY, "early_stop": {"saturation": False}}, 0.0, schedule_s=schedule)
    assert feed(off, records)[1] is None
