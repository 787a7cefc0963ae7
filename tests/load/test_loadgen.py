"""The load generator against small in-test servers and the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import itertools
import json
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
from aiohttp import web

from runner.errors import InputError
from runner.load.arrivals import arrival_offsets
from runner.load.exchange import Target
from runner.load.loadgen import PROBE_MIN, LoadResult, run_load
from runner.load.records import RequestRecord
from runner.load.workload import prompt_source
from runner.mock.process import mock_process
from runner.mock.server import MockConfig, serving
from runner.plan.planfile import complete_params
from runner.redaction import redact

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
KEY = "sk-test-secret-123456"


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """A loopback server answering both OpenAI endpoints with `handler`."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    app.router.add_post("/v1/completions", handler)
    app_runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{app_runner.addresses[0][1]}"
    finally:
        await app_runner.cleanup()


def event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def token(text: str = "tok ") -> bytes:
    return event({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})


FINISH = event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
DONE = b"data: [DONE]\n\n"


def usage(completion: int) -> bytes:
    return event({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": completion,
                                           "total_tokens": 5 + completion}})


def streaming(*parts: bytes, delay_s: float = 0.0, cut: bool = False) -> Handler:
    """An SSE answer of `parts`, `delay_s` apart; `cut` breaks the connection instead of ending."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for part in parts:
            await asyncio.sleep(delay_s)
            await response.write(part)
        if cut:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response

    return handler


def params(**overrides: Any) -> dict[str, Any]:
    base = {"endpoint": "chat", "input_tokens": 8, "max_tokens": 4, "temperature": 0, "seed": 0,
            "stream": True, "concurrency": 1, "requests": 1, "warmup_requests": 0,
            "request_timeout_s": 10}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def load(url: str, job: dict[str, Any], **kwargs: Any) -> Coroutine[Any, Any, LoadResult]:
    target = Target(url, {"Authorization": f"Bearer {KEY}"}, "m")
    return run_load(target, job, prompt_source(job, ".", {}), **kwargs)


def run(handler: Handler, job: dict[str, Any], **kwargs: Any) -> LoadResult:
    async def main() -> LoadResult:
        async with serve(handler) as url:
            return await load(url, job, **kwargs)

    return asyncio.run(main())


def test_closed_loop_sends_warmup_then_requests_at_the_concurrency() -> None:
    """Issue 10 §7: the warm-ups all end before the measured window opens (they were sent at
    t=0 beside measured requests); then the measured requests run at the concurrency."""
    in_flight, peak, bodies, log = [0], [0], [], []
    all_in = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.json())
        measured = len(bodies) > 2  # the server sees the two warm-ups first
        log.append(("start", len(bodies) - 1, time.monotonic()))
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        if in_flight[0] == 3:
            all_in.set()
        try:
            # The first measured answers wait until three requests are in: the peak is the
            # concurrency however slow the machine. A client that sends fewer fails after 5 s.
            if measured:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_in.wait(), 5)
                all_in.set()
            return await streaming(token(), FINISH, usage(1), DONE, delay_s=0.05)(request)
        finally:
            in_flight[0] -= 1
            log.append(("end", len(bodies) - 1, time.monotonic()))

    seen: list[RequestRecord] = []
    result = run(handler, params(concurrency=3, requests=7, warmup_requests=2),
                 on_record=seen.append)
    assert result.stopped == "done"
    assert [r.index for r in result.records] == list(range(9))
    assert [r.warmup for r in result.records] == [True] * 2 + [False] * 7
    assert all(r.ok for r in result.records)
    assert sorted(r.index for r in seen) == list(range(9))
    assert peak[0] == 3
    assert len(bodies) == 9 and bodies[0]["stream_options"] == {"include_usage": True}
    assert len(result.health.scheduling_lag_ms) == 7 - 3  # not a worker's first request
    assert all(r.scheduled_ms is None for r in result.records)
    # The server saw both warm-ups end before the third request came, and the records agree:
    # warm-ups end before offset 0, where the window opens, measured requests start after it.
    third = next(t for what, n, t in log if what == "start" and n == 2)
    assert sum(what == "end" and t <= third for what, n, t in log) == 2
    warm, measured = result.records[:2], result.records[2:]
    assert all(r.sent_ms + (r.e2e_ms or 0) <= 0 for r in warm)
    assert min(r.sent_ms for r in measured) >= 0
    assert 0 < result.warmup_s < result.duration_s
    assert {r.index: r.sent_ms for r in seen[:2]} == {r.index: r.sent_ms for r in warm}


def test_many_workers_take_turns_to_start_and_all_finish() -> None:
    """64 workers start at once: a few per event-loop iteration, every request sent once."""
    received: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        received.append(len(received))
        return await streaming(token(), FINISH, DONE)(request)

    result = run(handler, params(concurrency=64, requests=300))
    assert result.stopped == "done"
    assert len(received) == len(result.records) == 300
    assert all(r.ok for r in result.records)
    assert len(result.health.scheduling_lag_ms) == 300 - 64


def test_stop_while_workers_wait_for_their_turn_sends_nothing_more() -> None:
    received: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        received.append(time.monotonic())
        return await streaming(token(), FINISH, DONE, delay_s=0.2)(request)

    async def main() -> LoadResult:
        stop = asyncio.Event()
        stop.set()  # already set: the supervisor stops the job in its first iteration
        async with serve(handler) as url:
            return await load(url, params(concurrency=64, requests=64), stop=stop, grace_s=0)

    result = asyncio.run(main())
    assert result.stopped == "interrupted"
    assert len(received) <= len(result.records) <= 4  # the first iteration's starts only
    assert {r.error_kind for r in result.records} == {"cancelled"}


def test_open_loop_constant_rate_keeps_absolute_offsets() -> None:
    result = run(streaming(token(), FINISH, DONE),
                 params(concurrency=None, rate=40, arrival="constant", requests=12))
    assert result.stopped == "done"
    assert [r.scheduled_ms for r in result.records] == [i * 25.0 for i in range(12)]
    lateness = [r.sent_ms - (r.scheduled_ms or 0) for r in result.records]
    sent = [r.sent_ms for r in result.records]
    assert min(lateness) >= 0 and sent == sorted(sent)  # never early, in order
    # How late is the client's to report (benchmarks/loadgen.py measures it), not asserted.
    assert result.health.scheduling_lag_ms == pytest.approx(lateness)
    assert all(r.ok for r in result.records)


def test_poisson_arrivals_are_seeded() -> None:
    first = list(itertools.islice(arrival_offsets({"rate": 10, "seed": 1}), 2000))
    again = list(itertools.islice(arrival_offsets({"rate": 10, "seed": 1}), 2000))
    other = list(itertools.islice(arrival_offsets({"rate": 10, "seed": 2}), 2000))
    assert first == again != other
    assert first[0] == 0.0 and first == sorted(first)
    assert 0.09 < statistics.mean(b - a for a, b in itertools.pairwise(first)) < 0.11


def test_max_concurrency_queues_arrivals_and_shows_the_wait() -> None:
    result = run(streaming(token(), FINISH, DONE, delay_s=0.05),
                 params(concurrency=None, rate=100, arrival="constant", max_concurrency=1,
                        requests=4))
    waits = [r.sent_ms - (r.scheduled_ms or 0) for r in result.records]
    assert 0 <= waits[0] < 100  # not queued behind an answer (each takes 100 ms or more)
    assert waits[1] < waits[2] < waits[3]
    assert waits[3] >= 270  # three answers of at least 100 ms minus 30 ms of arrivals
    sends = [r.sent_ms for r in result.records]
    ends = [r.sent_ms + (r.e2e_ms or 0) for r in result.records]
    assert all(s >= e - 1e-6 for s, e in zip(sends[1:], ends, strict=False))  # one at a time


def test_duration_stops_sending() -> None:
    result = run(streaming(token(), FINISH, DONE, delay_s=0.02),
                 params(concurrency=2, requests=None, duration_s=0.3))
    assert result.stopped == "duration" and result.duration_s >= 0.3
    # Each worker sends at most every 40 ms (two 20 ms parts), only before 300 ms: 0..280.
    assert 2 <= len(result.records) <= 16
    assert all(r.ok for r in result.records)
    # A worker takes a request only if its previous one ended before 300 ms: only each worker's
    # last request may end later.
    ends = sorted(r.sent_ms + (r.e2e_ms or 0) for r in result.records)
    assert all(end < 300 for end in ends[:-2])


def test_open_loop_duration_stops_arrivals() -> None:
    result = run(streaming(token(), FINISH, DONE),
                 params(concurrency=None, rate=20, arrival="constant", requests=None,
                        duration_s=0.5))
    assert result.stopped == "duration"
    # Arrivals at 0, 50, ..., 450 ms, none at 500 or later. One still waiting at 500 ms (on a
    # busy machine) is never sent, nor any after it: the records are a prefix of the schedule.
    scheduled = [r.scheduled_ms for r in result.records]
    assert scheduled == [i * 50.0 for i in range(len(scheduled))]
    assert 5 <= len(scheduled) <= 10  # the first five were due 300 ms or more before the end


def json_error(status: int, message: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        body = {"error": {"message": message, "type": "x", "code": str(status)}}
        return web.json_response(body, status=status)

    return handler


async def slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(5)
    return web.Response()


ERRORS: list[tuple[str, Handler, dict[str, Any], tuple[str, int | None, str]]] = [
    ("http 500", json_error(500, "Internal error"), {}, ("http", 500, "HTTP 500: Internal error")),
    ("http 429", json_error(429, "Rate limit reached"), {},
     ("rate_limited", 429, "HTTP 429: Rate limit reached")),
    ("http 503", json_error(503, "Overloaded"), {}, ("http", 503, "HTTP 503: Overloaded")),
    ("timeout", slow, {"request_timeout_s": 0.2},
     ("timeout", None, "no complete answer within request_timeout_s")),
    ("server closes mid-stream", streaming(token(), token(), cut=True), {},
     ("connection", None, "ClientPayloadError")),
    ("error event", streaming(token(), event({"error": {"message": "engine died"}}), DONE), {},
     ("stream_error", None, "engine died")),
    ("truncated", streaming(token(), token()), {},
     ("truncated", None, "the stream ended before a finish reason")),
    ("invalid", streaming(b"data: {not json\n\n", DONE), {},
     ("invalid_response", None, "an event is not JSON: {not json")),
]


@pytest.mark.parametrize(("handler", "job", "expected"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_errors_are_recorded_by_kind(
    handler: Handler, job: dict[str, Any], expected: tuple[str, int | None, str]
) -> None:
    result = run(handler, params(**job))
    (record,) = result.records
    assert not record.ok
    assert (record.error_kind, record.http_status) == expected[:2]
    assert record.error is not None and expected[2] in record.error
    assert record.e2e_ms is not None


def test_connection_refused_stops_early_as_unreachable(dead_url: str) -> None:
    result = asyncio.run(load(dead_url, params(concurrency=4, requests=None, duration_s=30)))
    assert result.stopped == "unreachable"
    assert result.duration_s < 15  # long before the 30 s duration (it takes milliseconds)
    assert 4 <= len(result.records) < 50
    assert {r.error_kind for r in result.records} == {"connection"}


def test_errors_never_show_the_key() -> None:
    async def echo(request: web.Request) -> web.Response:
        message = f"bad key {request.headers['Authorization']} (also {KEY[:-2]}xx)"
        return web.json_response({"error": {"message": message}}, status=401)

    (record,) = run(echo, params()).records
    assert record.error is not None and KEY not in record.error and "sk-test" not in record.error
    assert record.error.startswith("HTTP 401: bad key ***")


def test_errors_never_show_part_of_a_key_cut_by_shortening() -> None:
    async def echo(request: web.Request) -> web.Response:
        # "HTTP 401: " + this, cut at 199 characters, would keep "sk-tes" of the key
        message = "a" * 182 + " " + request.headers["Authorization"].removeprefix("Bearer ")
        return web.json_response({"error": {"message": message}}, status=401)

    (record,) = run(echo, params()).records
    assert record.error is not None and "sk-tes" not in record.error


def test_redact() -> None:
    headers = {"Authorization": "Bearer abcdefgh"}
    assert redact("x abcdefgh y sk-1234567 z", headers) == "x *** y sk-*** z"


def test_stop_event_cancels_in_flight_requests() -> None:
    written: list[int] = []  # tokens written, per answer

    async def main() -> LoadResult:
        stop = asyncio.Event()

        async def handler(request: web.Request) -> web.StreamResponse:
            """101 tokens 50 ms apart; the stop comes once all three answers have three."""
            await request.read()
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            mine = len(written)
            written.append(0)
            with contextlib.suppress(ConnectionResetError):
                for _ in range(101):
                    await response.write(token())
                    written[mine] += 1
                    if len(written) == 3 and min(written) >= 3:
                        stop.set()
                    await asyncio.sleep(0.05)
                await response.write(DONE)
            return response

        async with serve(handler) as url:
            job = params(concurrency=3, requests=100, job_timeout_s=30)  # if the stop never comes
            return await load(url, job, stop=stop, grace_s=0.1)

    result = asyncio.run(main())
    assert result.stopped == "interrupted"
    assert len(result.records) == 3
    assert {r.error_kind for r in result.records} == {"cancelled"}
    assert not any(r.ok for r in result.records)
    assert all(r.content_chunks >= 3 for r in result.records)  # measured until cancelled
    assert len(written) == 3 and max(written) < 101  # every answer was cut, none ran out


def test_stop_grace_lets_short_requests_finish() -> None:
    async def main() -> LoadResult:
        stop = asyncio.Event()
        async with serve(streaming(token(), FINISH, DONE, delay_s=0.1)) as url:
            asyncio.get_running_loop().call_later(0.05, stop.set)
            # The answers take 300 ms; the grace is ample for a busy machine and costs nothing.
            return await load(url, params(concurrency=2, requests=10), stop=stop, grace_s=30)

    result = asyncio.run(main())
    assert result.stopped == "interrupted"
    assert len(result.records) == 2 and all(r.ok for r in result.records)


def test_hurry_cuts_the_grace_period_short_and_keeps_every_record() -> None:
    """A second interrupt: in-flight requests are cancelled now, not after `grace_s`, and the
    load generator still returns normally (no CancelledError) with every record."""
    async def main() -> tuple[LoadResult, float]:
        stop, hurry = asyncio.Event(), asyncio.Event()
        async with serve(streaming(token(), *[token()] * 100, DONE, delay_s=0.05)) as url:
            loop = asyncio.get_running_loop()
            loop.call_later(0.2, stop.set)
            loop.call_later(0.4, hurry.set)
            started = time.monotonic()
            result = await load(url, params(concurrency=3, requests=100), stop=stop,
                                hurry=hurry, grace_s=30)
            return result, time.monotonic() - started

    result, took = asyncio.run(main())
    assert result.stopped == "interrupted" and took < 15  # far from the 30 s grace
    assert len(result.records) == 3 and {r.error_kind for r in result.records} == {"cancelled"}


def test_job_timeout() -> None:
    result = run(streaming(token(), *[token()] * 100, DONE, delay_s=0.05),
                 params(concurrency=2, requests=10, job_timeout_s=0.3), grace_s=0.05)
    assert result.stopped == "job_timeout"
    # Cancelled, not finished: the job did not wait for its 5 s answers; nor end early.
    assert {r.error_kind for r in result.records} == {"cancelled"}
    assert result.duration_s >= 0.3


def test_usage_is_the_token_source_when_present_else_chunks() -> None:
    with_usage = run(streaming(token(), token(), FINISH, usage(7), DONE), params()).records[0]
    assert (with_usage.output_tokens, with_usage.output_tokens_source) == (7, "usage")
    assert (with_usage.prompt_tokens, with_usage.content_chunks) == (5, 2)
    without = run(streaming(token(), token(), token(), FINISH, DONE), params()).records[0]
    assert (without.output_tokens, without.output_tokens_source) == (3, "chunks")
    assert without.prompt_tokens is None


def test_an_answer_not_streamed_has_no_chunk_timings() -> None:
    """Issue 10 §7: its TTFT was the whole request time; one body has no chunk arrivals."""
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12}}
        return web.json_response(body)

    (record,) = run(handler, params(stream=False)).records
    assert record.ok and record.ttft_ms is None and record.tpot_ms is None
    assert record.streamed is False and record.e2e_ms is not None and record.e2e_ms >= 50
    assert (record.output_tokens, record.output_tokens_source) == (9, "usage")
    assert record.itl_ms == []


def test_template_failing_for_one_request_stops_the_job() -> None:
    job = params(input_tokens=None, template="{{ items[i] }}", requests=3)
    target = Target("http://127.0.0.1:9", {}, "m")
    with pytest.raises(InputError, match="request 2"):
        asyncio.run(run_load(target, job, prompt_source(job, ".", {"items": ["a", "b"]})))


def test_ttft_and_itl_against_the_simulator_follow_its_schedule() -> None:
    """The simulator in its own process: no token is measured before the simulator's schedule
    lets it come (TTFT 50 ms, then one per 10 ms). How close the measurement comes is
    measured by benchmarks/loadgen.py, not asserted: a busy machine makes every figure late."""
    job = params(concurrency=8, requests=24, max_tokens=20, warmup_requests=4)
    with mock_process(MockConfig(models=("m",), ttft_ms=50, itl_ms=10)) as url:
        result = asyncio.run(load(url, job))
    measured = [r for r in result.records if not r.warmup]
    assert all(r.ok and r.output_tokens == 20 for r in measured)
    assert {r.output_tokens_source for r in measured} == {"usage"}
    assert {r.content_chunks for r in measured} == {20}
    for r in measured:  # token k comes at TTFT + k * ITL or later, never earlier
        arrivals = list(itertools.accumulate(r.itl_ms, initial=r.ttft_ms or 0))
        assert all(t >= 50 + 10 * k - 1e-6 for k, t in enumerate(arrivals)), arrivals
    # Sanity, far above the 50 and 10 ms due: the figures are milliseconds, not microseconds.
    assert statistics.median(r.ttft_ms or 0 for r in measured) < 1000
    assert statistics.median(x for r in measured for x in r.itl_ms) < 100
    assert result.health.loop_delay_ms


@pytest.mark.parametrize("stream", [True, False])
def test_completions_against_the_simulator(stream: bool) -> None:
    async def main() -> LoadResult:
        async with serving(MockConfig(models=("m",), ttft_ms=5, itl_ms=1)) as url:
            return await load(url, params(endpoint="completions", stream=stream, requests=3,
                                          concurrency=2, max_tokens=8))

    result = asyncio.run(main())
    assert all(r.ok and r.output_tokens == 8 for r in result.records)
    assert all(r.finish_reason == "length" for r in result.records)
    assert all((r.content_chunks == 8) is stream for r in result.records)


# --- how a job ends: the duration's grace, a server that never answers ----------------------


def tokens_every(interval_s: float, count: int) -> Handler:
    """A stream of `count` tokens, one every `interval_s` (a slow server)."""
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            for _ in range(count):
                await response.write(token())
                await asyncio.sleep(interval_s)
            await response.write(FINISH + DONE)
        return response

    return handler


def timed(handler: Handler, job: dict[str, Any], **kwargs: Any) -> tuple[LoadResult, float]:
    started = time.monotonic()
    result = run(handler, job, **kwargs)
    return result, time.monotonic() - started


def test_duration_cancels_requests_still_running_after_the_grace() -> None:
    """Issue 9: `duration_s: 5` against a 1 token/s stream took 60 s. The answers here would
    take 30 s; the job ends after its 0.5 s and a 0.5 s grace, the cut answers `cancelled`."""
    result, took = timed(tokens_every(0.5, 60), params(concurrency=2, requests=None,
                                                       duration_s=0.5, duration_grace_s=0.5))
    assert result.stopped == "duration"
    assert took < 10  # not the answers' 30 s (about 1 s: the duration and its grace)
    assert len(result.records) == 2
    assert {r.error_kind for r in result.records} == {"cancelled"}
    assert all(not r.ok and r.content_chunks >= 1 for r in result.records)  # measured until cut


def test_duration_grace_lets_requests_in_flight_finish() -> None:
    result, took = timed(tokens_every(0.1, 3), params(concurrency=2, requests=None,
                                                      duration_s=0.2, duration_grace_s=30))
    assert result.stopped == "duration" and took < 15  # the answers end long before the grace
    assert result.records and all(r.ok for r in result.records)


def test_open_loop_duration_cancels_arrivals_still_running_after_the_grace() -> None:
    result, took = timed(tokens_every(0.5, 60), params(concurrency=None, rate=20,
                                                       arrival="constant", requests=None,
                                                       duration_s=0.3, duration_grace_s=0.2))
    assert result.stopped == "duration" and took < 10
    # Arrivals at 0, 50, ..., 250 ms: all sent, all cut. One the loop reaches only at 300 ms
    # or later (a busy machine) is never sent: the records are a prefix of the schedule.
    scheduled = [r.scheduled_ms for r in result.records]
    assert scheduled == [i * 50.0 for i in range(len(scheduled))] and 3 <= len(scheduled) <= 6
    assert {r.error_kind for r in result.records} == {"cancelled"}


def test_an_interrupt_during_the_duration_grace_ends_the_job_as_interrupted() -> None:
    async def main() -> tuple[LoadResult, float]:
        stop = asyncio.Event()
        async with serve(tokens_every(0.5, 60)) as url:
            asyncio.get_running_loop().call_later(0.5, stop.set)
            started = time.monotonic()
            result = await load(url, params(concurrency=2, requests=None, duration_s=0.2,
                                            duration_grace_s=30), stop=stop, grace_s=0.1)
            return result, time.monotonic() - started

    result, took = asyncio.run(main())
    assert result.stopped == "interrupted" and took < 15  # not the 30 s grace
    assert {r.error_kind for r in result.records} == {"cancelled"}


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A loopback server that accepts connections and never answers."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.mark.parametrize(("concurrency", "in_a_row"), [(1, 3), (8, 8)])
def test_a_server_that_never_answers_stops_the_job_as_unresponsive(
    concurrency: int, in_a_row: int
) -> None:
    """Issue 9: such a server held a default job (100 requests, one at a time) for 100 request
    timeouts. Now the job stops when as many requests in a row as the unreachable probe (3 to
    32; one per worker) time out."""
    async def main() -> tuple[LoadResult, float]:
        async with silent_server() as url:
            started = time.monotonic()
            result = await load(url, params(concurrency=concurrency, requests=100,
                                            request_timeout_s=0.2), grace_s=0.1)
            return result, time.monotonic() - started

    result, took = asyncio.run(main())
    assert result.stopped == "unresponsive"
    timeouts = [r for r in result.records if r.error_kind == "timeout"]
    assert len(timeouts) == in_a_row  # then it stopped sending; the rest in flight were cut
    assert {r.error_kind for r in result.records} <= {"timeout", "cancelled"}
    assert took < 10  # 100 timeouts in a row would take 20 s


def test_default_job_against_a_server_that_never_answers_is_bounded_to_minutes() -> None:
    """The worst case of a default job (100 requests, one at a time): PROBE_MIN requests time
    out one after the other (counted by the test above), each after the default
    stall_timeout_s (silence; request_timeout_s, an hour, bounds a slow drip). Before: no
    stop, 600 s each, 100 x 600 s = 16.7 h."""
    job = complete_params({}, {})
    assert (job["requests"], job["concurrency"], "job_timeout_s" in job) == (100, 1, False)
    assert PROBE_MIN * job["stall_timeout_s"] == 15 * 60


# --- a server that asks the load to wait: 429, or 503 with Retry-After ----------------------


def asks_to_wait(first: int, retry_after: str, status: int = 429,
                 then: Handler | None = None) -> tuple[Handler, list[float]]:
    """Answers the first `first` requests `status` with `Retry-After: retry_after`, then
    `then` (one token); also returns when each request arrived (monotonic seconds)."""
    arrived: list[float] = []
    answer = then or streaming(token(), FINISH, DONE)

    async def handler(request: web.Request) -> web.StreamResponse:
        arrived.append(time.monotonic())
        if len(arrived) > first:
            return await answer(request)
        await request.read()
        return web.json_response({"error": {"message": "slow down"}}, status=status,
                                 headers={"Retry-After": retry_after})

    return handler, arrived


def sent_in_first_pause(result: LoadResult) -> int:
    """Requests sent while the first pause ran: it began as the first rate-limited answer was
    read, before that record's end, and lasted pauses_s[0] (50 ms spared for a busy machine)."""
    start = min(r.sent_ms + (r.e2e_ms or 0) for r in result.records
                if r.error_kind == "rate_limited")
    end = start + result.pauses_s[0] * 1000 - 50
    return sum(start < r.sent_ms < end for r in result.records)


def test_retry_after_pauses_every_closed_loop_worker() -> None:
    """Issue 9: after a 429 with Retry-After: 1, 300 requests went out in 1.5 s. Now no worker
    sends until the second is over."""
    handler, arrived = asks_to_wait(4, "1")
    result = run(handler, params(concurrency=4, requests=20))
    assert result.stopped == "done"
    assert sent_in_first_pause(result) == 0
    assert len(arrived) == len(result.records) == 20
    kinds = [r.error_kind for r in result.records]
    assert kinds.count("rate_limited") == 4 and kinds.count(None) == 16
    assert {r.http_status for r in result.records if not r.ok} == {429}
    # Four answers at once: one pause, lengthened by the later ones (or, on a machine so busy
    # that they come more than a second apart, a pause each).
    assert 1 <= len(result.pauses_s) <= 4 and min(result.pauses_s) >= 1.0


def test_retry_after_during_warmups_holds_them_and_the_window_opens_after_it() -> None:
    handler, arrived = asks_to_wait(1, "0.5")
    result = run(handler, params(concurrency=1, requests=2, warmup_requests=2))
    assert [r.error_kind for r in result.records] == ["rate_limited", None, None, None]
    assert arrived[1] - arrived[0] >= 0.45  # the second warm-up waited out the pause
    assert all(r.sent_ms + (r.e2e_ms or 0) <= 0 for r in result.records[:2])


def test_retry_after_as_a_date_on_a_503_pauses_too() -> None:
    date = email.utils.formatdate(time.time() + 3, usegmt=True)  # 2 to 3 s ahead (whole s)
    handler, arrived = asks_to_wait(1, date, status=503)
    result = run(handler, params(concurrency=2, requests=6))
    [limited] = [r for r in result.records if not r.ok]
    assert (limited.error_kind, limited.http_status) == ("rate_limited", 503)
    assert len(result.pauses_s) == 1 and 0.5 <= result.pauses_s[0] < 5
    assert sent_in_first_pause(result) == 0
    assert len(arrived) == 6 and sum(r.ok for r in result.records) == 5


def test_a_503_without_retry_after_is_an_http_error_and_no_pause() -> None:
    async def unavailable(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "down"}}, status=503)

    result = run(unavailable, params(concurrency=2, requests=6))
    assert {r.error_kind for r in result.records} == {"http"}
    assert result.pauses_s == [] and result.stopped == "done"


def test_retry_after_moves_open_loop_arrivals_and_keeps_their_spacing() -> None:
    """The arrivals due during the pause are neither sent in it, nor dropped, nor sent in a
    burst after it: the schedule moves by the pause and keeps its 50 ms spacing."""
    handler, arrived = asks_to_wait(1, "1")
    result = run(handler, params(concurrency=None, rate=20, arrival="constant", requests=12))
    assert len(result.records) == len(arrived) == 12
    assert sent_in_first_pause(result) == 0
    gaps = [b - a for a, b in itertools.pairwise(r.scheduled_ms or 0 for r in result.records)]
    (pause,) = result.pauses_s
    assert sorted(gaps)[-1] == pytest.approx(50 + pause * 1000, abs=1)
    assert sorted(gaps)[:-1] == pytest.approx([50.0] * 10)
    assert sum(r.ok for r in result.records) == 11


def test_a_server_that_always_asks_to_wait_stops_the_job_after_three_pauses() -> None:
    handler, arrived = asks_to_wait(10**9, "0.2")
    result, took = timed(handler, params(concurrency=2, requests=100))
    assert result.stopped == "rate_limited"
    assert len(result.pauses_s) == 3
    assert len(arrived) <= 8 and took < 10  # four rounds of two, three pauses between
    assert {r.error_kind for r in result.records} == {"rate_limited"}


def test_a_pause_never_outlasts_the_duration() -> None:
    handler, _ = asks_to_wait(1, "3600")  # capped at 60 s, and the job lasts 0.5 s
    result, took = timed(handler, params(concurrency=1, requests=None, duration_s=0.5,
                                         duration_grace_s=0.5))
    assert result.stopped == "duration" and took < 10
    assert len(result.records) == 1 and result.pauses_s[0] < 10
