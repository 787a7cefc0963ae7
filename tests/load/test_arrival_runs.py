"""Arrival shapes and early stop on the wire (issue 13 §3, §4, §5): gamma and ramped schedules
against the simulator, a server that starts failing half-way (scripted), the simulator's
max_streams queue."""

from __future__ import annotations

import asyncio
import itertools
import statistics
from typing import Any

import pytest
from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, chunk, text, usage_chunk

from runner.load.arrivals import arrival_offsets, slot_openings
from runner.load.loadgen import LoadResult, Target, run_load
from runner.load.workload import prompt_source
from runner.mock.server import MockConfig, serving


def job(**params: Any) -> dict[str, Any]:
    return {"endpoint": "chat", "input_tokens": 8, "max_tokens": 4, "temperature": 0,
            "seed": 3, "stream": True, "warmup_requests": 0, "request_timeout_s": 30, **params}


def against_simulator(config: MockConfig, params: dict[str, Any]) -> LoadResult:
    async def main() -> LoadResult:
        async with serving(config) as url:
            return await run_load(Target(url, {}, "m"), params, prompt_source(params, ".", {}))

    return asyncio.run(main())


FAST = MockConfig(models=("m",), ttft_ms=5, itl_ms=1)


@pytest.mark.parametrize("shape", [
    {"arrival": "gamma", "burstiness": 0.3},
    {"arrival": "poisson", "ramp_up": {"shape": "exponential", "duration_s": 1, "start": 5}},
])
def test_records_are_scheduled_on_the_computed_schedule(shape: dict[str, Any]) -> None:
    """The schedule is computed up front from the params alone: every record's scheduled_ms
    is its computed offset, whatever the server did."""
    params = job(rate=60, requests=40, **shape)
    result = against_simulator(FAST, params)
    assert result.stopped == "done" and all(r.ok for r in result.records)
    expected = [t * 1e3 for t in itertools.islice(arrival_offsets(params), 40)]
    assert [r.scheduled_ms for r in result.records] == pytest.approx(expected, abs=0.01)


def test_a_closed_loop_ramp_opens_its_slots_on_the_curve() -> None:
    """Slots open at 0, 0.1, 0.2 and 0.3 s: whenever a request is sent, no more requests are
    in flight than slots are open then (a worker never sends before its slot opened)."""
    params = job(concurrency=4, requests=24, ramp_up={"duration_s": 0.3, "start": 1})
    openings = slot_openings(params)
    assert openings == pytest.approx([0, 0.1, 0.2, 0.3])
    slow = MockConfig(models=("m",), ttft_ms=50, itl_ms=10)  # 80 ms answers
    result = against_simulator(slow, params)
    assert result.stopped == "done" and all(r.ok for r in result.records)
    spans = [(r.sent_ms, r.sent_ms + (r.e2e_ms or 0)) for r in result.records]
    most = 0
    for sent, _ in spans:
        in_flight = sum(1 for s, e in spans if s <= sent < e)
        assert in_flight <= sum(1 for at in openings if at * 1e3 <= sent + 0.5), sent
        most = max(most, in_flight)
    assert most >= 2  # it did ramp up past its first slot


ANSWER = [(0, ROLE), (2, text("a")), (4, chunk(finish="stop")),
          (5, usage_chunk(completion_tokens=1)), (6, DONE)]


def test_a_server_failing_half_way_stops_the_job_early_with_its_figure() -> None:
    """It answers 30 requests, then every one fails: with max_error_rate 0.1 the job stops
    soon after, far before the 2000 planned."""
    script = Script(ANSWER, fail_after=30)
    params = job(concurrency=2, requests=2000)
    with scripted_server(script) as url:
        result = asyncio.run(run_load(Target(url, {}, "m"), params,
                                      prompt_source(params, ".", {}), max_error_rate=0.1))
    assert result.stopped == "error_rate"
    detail = result.early_stop
    assert detail is not None and detail["reason"] == "error_rate"
    assert detail["lower_bound"] > detail["threshold"] == 0.1
    assert detail["finished"] == detail["failed"] + 30
    assert len(result.records) < 100 and len(script.arrived) < 100
    # Without a max_error_rate the same server runs the whole job (the default benchmark).
    script = Script(ANSWER, fail_after=30)
    params = job(concurrency=4, requests=120)
    with scripted_server(script) as url:
        result = asyncio.run(run_load(Target(url, {}, "m"), params,
                                      prompt_source(params, ".", {})))
    assert result.stopped == "done" and len(result.records) == 120
    assert result.early_stop is None


def test_max_streams_queues_beyond_n_and_bounds_the_throughput() -> None:
    """max_streams 2, 100 ms answers: 8 closed-loop slots queue in the simulator, and its
    throughput is at most 2 / 0.1 s = 20 requests/s (it cannot be faster; a busy machine
    only makes it slower), while TTFT includes the queue (a wait of ~3 answers)."""
    config = MockConfig(models=("m",), ttft_ms=40, itl_ms=20, max_streams=2)
    result = against_simulator(config, job(concurrency=8, requests=24))
    records = result.records
    assert all(r.ok for r in records)
    ends = [r.sent_ms + (r.e2e_ms or 0) for r in records]
    span_s = (max(ends) - min(r.sent_ms for r in records)) / 1e3
    assert len(records) / span_s <= 20 * 1.001
    assert statistics.median(r.ttft_ms or 0 for r in records) >= 200  # 3 x 100 ms queued
    with pytest.raises(ValueError, match="max_streams"):
        MockConfig(max_streams=0)


def test_clients_that_leave_while_queued_are_no_error_in_the_simulator(
        caplog: pytest.LogCaptureFixture) -> None:
    """Requests still queued at the job's end are cancelled by the client: the simulator
    passes their turn on, without a traceback (it read each body before queueing)."""
    config = MockConfig(models=("m",), ttft_ms=100, itl_ms=0, max_streams=1)
    params = job(rate=50, arrival="constant", duration_s=0.4, duration_grace_s=0)
    with caplog.at_level("ERROR"):
        result = against_simulator(config, params)
    assert any(r.error_kind == "cancelled" for r in result.records)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text[:500]
