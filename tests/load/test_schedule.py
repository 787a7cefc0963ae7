"""When requests are sent (issue 10 §4, §7): a max_concurrency queue is the plan's, not the
client's lateness; warm-ups end before the measured window. Against a scripted server that
knows when each request arrived and when its answer ended (the same perf_counter clock)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, chunk, text, usage_chunk

from runner.load.loadgen import LoadResult, Target, run_load
from runner.load.workload import prompt_source
from runner.run.metrics import Expectation, summarize
from runner.run.queueing import queue_material

# 340 ms per answer, as in the issue: a role chunk, 16 tokens 20 ms apart, finish, usage, DONE.
ANSWER_340_MS = [(0, ROLE), *[(20.0 * i, text("tok ")) for i in range(1, 17)],
                 (330, chunk(finish="stop")), (335, usage_chunk(completion_tokens=16)),
                 (340, DONE)]
SLACK_MS = 50.0  # a busy machine's share of a hand-over; the queue waits are 300-2000 ms


def load(script: Script, **params: Any) -> LoadResult:
    job = {"endpoint": "chat", "input_tokens": 8, "max_tokens": 16, "temperature": 0, "seed": 0,
           "stream": True, "requests": 1, "warmup_requests": 0, "request_timeout_s": 20,
           **params}
    with scripted_server(script) as url:
        return asyncio.run(run_load(Target(url, {}, "m"), job, prompt_source(job, ".", {})))


def test_a_max_concurrency_queue_is_queue_ms_not_client_lateness() -> None:
    """Seen: 10 req/s, max_concurrency 1, ~340 ms per request: flagged client_bound with
    "scheduling lag p99 1736 ms", the wait for the slot. True values: each request waits from
    its scheduled time until the previous answer ended; the client sends it at once then."""
    script = Script(ANSWER_340_MS)
    result = load(script, rate=10, arrival="constant", max_concurrency=1, requests=8)
    records = result.records
    assert [r.ok for r in records] == [True] * 8
    t0 = script.arrived[0] - records[0].sent_ms / 1e3  # the client's offset 0, server clock
    ended_ms = [(end - t0) * 1e3 for end in sorted(script.ended)]
    truth = [0.0] + [max(0.0, ended_ms[i - 1] - (r.scheduled_ms or 0))
                     for i, r in enumerate(records) if i]
    assert [r.queue_ms for r in records] == pytest.approx(truth, abs=SLACK_MS)
    assert truth[-1] > 1500  # the queue grows by 240 ms a request
    # A generous threshold: the queue (1500+ ms) crossed it; the client's own lateness never.
    metrics = summarize(records, health=result.health, client_bound_threshold_ms=200,
                        expect=Expectation(rate=10))
    assert metrics["client"]["client_bound"] is False, metrics["client"]["reason"]
    assert metrics["client_queue_ms"]["count"] == 8
    assert metrics["client_queue_ms"]["max"] == pytest.approx(truth[-1], abs=SLACK_MS)
    # Queue-inclusive latency: the wait, the send and the answer.
    for r in records:
        assert r.e2e_from_scheduled_ms == pytest.approx((r.queue_ms or 0) + r.e2e_ms, abs=SLACK_MS)
        assert r.ttft_from_scheduled_ms == pytest.approx((r.queue_ms or 0) + r.ttft_ms,
                                                         abs=SLACK_MS)
    assert queue_material(metrics)
    # The rate: 10/s asked, one request per answer sent; the server saw the truth.
    true_rate = 7 / (script.arrived[-1] - script.arrived[0])
    rate = metrics["rate"]
    assert rate["target_per_s"] == 10
    assert rate["achieved_per_s"] == pytest.approx(true_rate, rel=0.1)
    assert rate["ratio"] == pytest.approx(true_rate / 10, rel=0.1) and rate["ratio"] < 0.5


def test_an_open_loop_without_max_concurrency_has_no_queue() -> None:
    script = Script([(0, ROLE), (10, text("a")), (20, chunk(finish="stop")), (30, DONE)])
    result = load(script, rate=20, arrival="constant", requests=4)
    assert [r.queue_ms for r in result.records] == [None] * 4
    assert summarize(result.records)["client_queue_ms"]["count"] == 0


def test_open_loop_warmups_end_before_the_first_measured_arrival() -> None:
    """Issue 10 §7: warm-ups are not sent beside measured requests; measured arrivals keep
    their schedule from the window's start."""
    script = Script([(0, ROLE), (50, text("a")), (100, chunk(finish="stop")), (105, DONE)])
    result = load(script, rate=20, arrival="constant", max_concurrency=2, warmup_requests=2,
                  requests=4)
    warm, measured = result.records[:2], result.records[2:]
    assert [r.warmup for r in result.records] == [True, True, False, False, False, False]
    assert all(r.ok for r in result.records)
    assert all(r.sent_ms + (r.e2e_ms or 0) <= 0 for r in warm)
    assert [r.scheduled_ms for r in measured] == [0.0, 50.0, 100.0, 150.0]
    assert sorted(script.ended)[1] <= sorted(script.arrived)[2]  # the server saw it too
    assert summarize(result.records)["requests"]["warmup"] == 2


def test_duration_counts_from_the_window_not_from_the_warmups() -> None:
    """A 400 ms warm-up and duration_s 0.3: the measured window still gets its 0.3 s (the
    duration used to run out during the warm-up, leaving nothing measured)."""
    script = Script([(0, ROLE), (200, text("a")), (390, chunk(finish="stop")), (400, DONE)])
    result = load(script, concurrency=1, warmup_requests=1, requests=None, duration_s=0.3,
                  duration_grace_s=5)
    assert result.stopped == "duration"
    measured = [r for r in result.records if not r.warmup]
    assert len(measured) == 1 and measured[0].ok
    assert 0 <= measured[0].sent_ms < 100
    assert result.warmup_s >= 0.4
