"""The load generator: sends a job's requests (closed or open loop) and measures every answer."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

import aiohttp

from runner import defaults
from runner.defaults import LIMITS, PARAMS
from runner.load.arrivals import arrival_offsets
from runner.load.pacing import Pauses, retry_after_s
from runner.load.records import ClientHealth, RequestRecord
from runner.load.sse import StreamState, error_message, short
from runner.load.workload import PromptSource, RequestBodies
from runner.redaction import redact

ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
OPEN_LOOP_SLOTS = 1024  # open loop without max_concurrency: in flight at most (file handles)
PREBUILD_UNBOUNDED = 4096  # bodies built ahead when the job's request count is not known
LOOP_TICK_S = 0.01  # the event-loop monitor's sleep; its overshoot is the loop delay
DRAIN_S = 1.0  # after [DONE], how long the rest of the body (chunk terminator) may take
PROBE_MIN, PROBE_MAX = 3, 32  # the first requests that, all refused, mean "unreachable"
SENDS_PER_TICK = 4  # requests started per event-loop iteration, at most (see _Job._turn)
PAUSE_POLL_S = 0.1  # a sender waiting out a pause (Retry-After) checks this often for a stop


@dataclass(frozen=True)
class Target:
    """Where requests go. `headers` carry the Authorization: never log them. `limits`: what
    the server's answers may hold (servers.yaml `limits`; missing keys take LIMITS')."""

    base_url: str
    headers: Mapping[str, str]
    model: str
    limits: Mapping[str, int] = field(default_factory=dict)


@dataclass
class LoadResult:
    """A finished job's records (sorted by index) and how the load generator fared.

    `started_at` is the wall time of the job's start (offset 0 of every record) and `duration_s`
    runs from there until the last request ended, warm-up included. `pauses_s`: each pause in
    sending that a server asked for (429 or 503 with Retry-After), in seconds."""

    records: list[RequestRecord]
    health: ClientHealth
    started_at: float
    duration_s: float
    # "done" | "duration" | "interrupted" | "job_timeout" | "unreachable" | "unresponsive"
    # | "rate_limited"
    stopped: str
    pauses_s: list[float] = field(default_factory=list)


async def run_load(
    target: Target,
    params: Mapping[str, Any],
    prompts: PromptSource,
    *,
    on_record: Callable[[RequestRecord], None] | None = None,
    stop: asyncio.Event | None = None,
    hurry: asyncio.Event | None = None,
    grace_s: float = 2.0,
) -> LoadResult:
    """Run one job's load; `stop` (an interrupt) ends it early, in-flight requests get `grace_s`
    unless `hurry` (a second interrupt) is or gets set: then they are cancelled at once.

    At `duration_s` sending stops and in-flight requests get `duration_grace_s`, then they are
    cancelled. The job stops early, in-flight requests getting `grace_s`, when the server cannot
    be benchmarked: its first requests all refused (`unreachable`), a run of requests all timed
    out (`unresponsive`), or it still asked to wait after PAUSES_IN_A_ROW pauses (`rate_limited`).
    A 429, or a 503 with Retry-After, pauses sending for the whole job (see `pacing`).

    Warm-up requests come first (indices 0..warmup_requests-1) and are marked `warmup`; every
    finished request, failed or cancelled ones included, goes to `on_record` as it ends."""
    job = _Job(target, params, prompts, on_record or _ignore)
    return await job.run(stop, hurry, grace_s)


def _ignore(record: RequestRecord) -> None:
    pass


class _Job:
    """One job's state while it runs."""

    def __init__(self, target: Target, params: Mapping[str, Any], prompts: PromptSource,
                 on_record: Callable[[RequestRecord], None]) -> None:
        self.target, self.params, self.on_record = target, params, on_record
        self.url = target.base_url.rstrip("/") + ENDPOINTS[params.get("endpoint", "chat")]
        self.stream = bool(params.get("stream", True))
        self.warmup = int(params.get("warmup_requests", 0))
        requests = params.get("requests")
        self.total = None if requests is None else self.warmup + int(requests)
        duration = params.get("duration_s")
        self.duration_ns = None if duration is None else int(duration * 1e9)
        grace = params.get("duration_grace_s")
        self.duration_grace_s = float(grace) if grace is not None else \
            defaults.duration_grace_s(duration or 0)
        self.open_loop = params.get("rate") is not None
        self.slots = int(params.get("max_concurrency") or OPEN_LOOP_SLOTS) if self.open_loop \
            else int(params.get("concurrency", 1))
        # A second's worth of arrivals (open loop) or one request per worker (closed loop).
        worth = int(float(params["rate"])) if self.open_loop else self.slots
        self.probe = min(max(worth, PROBE_MIN), PROBE_MAX)
        self.session: aiohttp.ClientSession
        self.bodies = RequestBodies(params, target.model, prompts)
        self.records: list[RequestRecord] = []
        self.health = ClientHealth()
        self.tasks: set[asyncio.Task[None]] = set()
        self.sending, self.cancelling, self.duration_hit = True, False, False
        self.next_index, self.refused, self.sends_this_tick = 0, 0, 0
        self.turns: collections.deque[asyncio.Future[None]] = collections.deque()
        self.unreachable = asyncio.Event()
        self.pauses = Pauses()
        self.timeouts_in_a_row = 0
        self.gave_up: str | None = None  # "unresponsive" | "rate_limited"
        self.giving_up = asyncio.Event()
        self.crashed = asyncio.Event()
        self.crash: BaseException | None = None
        self.t0 = 0
        limits = {**LIMITS, **target.limits}
        self.max_line, self.max_chunks = limits["line_bytes"], limits["chunks"]
        self.max_error = limits["error_bytes"]
        self.timeout_s = float(params.get("request_timeout_s", PARAMS["request_timeout_s"]))
        # Not a finite number (validation refuses it): no deadline; aiohttp then refuses every
        # request, and each is recorded as a client_error.
        self.timeout_ns = int(self.timeout_s * 1e9) if 0 < self.timeout_s < 1e7 else 1 << 62
        self.inflight: dict[int, RequestRecord] = {}  # sent, not yet recorded

    async def run(self, stop: asyncio.Event | None, hurry: asyncio.Event | None,
                  grace_s: float) -> LoadResult:
        self.bodies.prebuild(self._expected())
        with _frozen_gc():
            async with self._session() as session:
                self.session = session
                self.t0, started_at = perf_counter_ns(), time.time()
                monitor = asyncio.create_task(self._monitor())
                driver = asyncio.create_task(self._open() if self.open_loop else self._closed())
                try:
                    stopped = await self._supervise(driver, stop, hurry, grace_s)
                finally:
                    await self._cancel_all(driver, monitor)
                end = perf_counter_ns()
        self.records.sort(key=lambda r: r.index)
        return LoadResult(self.records, self.health, started_at, (end - self.t0) / 1e9, stopped,
                          self.pauses.lengths_s(end))

    def _expected(self) -> int:
        """How many requests the job will send, as far as is known."""
        if self.total is not None:
            return self.total
        if self.open_loop and self.duration_ns is not None:
            return int(float(self.params["rate"]) * self.duration_ns / 1e9) + 1
        return PREBUILD_UNBOUNDED

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.slots, limit_per_host=0, ttl_dns_cache=None)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        # Identity only, never decompressed: a 261 KB gzip bomb is a 256 MiB line, inflated in
        # one go before any limit could look at it (an answer compressed anyway is refused).
        headers = {**self.target.headers, "Content-Type": "application/json",
                   "Accept-Encoding": "identity"}
        # No cookie jar: a load balancer's sticky-session cookie must not pin every request.
        return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers,
                                     trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                                     auto_decompress=False)

    async def _supervise(self, driver: asyncio.Task[str], stop: asyncio.Event | None,
                         hurry: asyncio.Event | None, grace_s: float) -> str:
        """Wait for the driver, the duration, an interrupt, the job timeout, a server the job
        gives up on or a crash; then end what is in flight (see run_load)."""
        events = {"unreachable": self.unreachable, "gave_up": self.giving_up,
                  "crashed": self.crashed}
        if stop is not None:
            events["interrupted"] = stop
        waits: dict[str, Awaitable[Any]] = {name: e.wait() for name, e in events.items()}
        if self.duration_ns is not None:
            waits["duration"] = asyncio.sleep(self._left_s(self.duration_ns))
        reason = await self._first(driver, waits, self._job_left_s())
        if reason == "driver":
            if self.crash is not None:  # a request crashed as the job ended: never swallowed
                raise self.crash
            # The driver also ends when the job stopped sending: the cause is the server.
            return "unreachable" if self.unreachable.is_set() else self.gave_up or driver.result()
        if reason == "duration":
            reason = await self._after_duration(driver, stop)
            if reason == "duration":
                return reason
        await self._wind_down(0.0 if reason == "crashed" else grace_s, hurry)
        if self.crash is not None:
            raise self.crash
        return (self.gave_up or "rate_limited") if reason == "gave_up" else reason

    async def _after_duration(self, driver: asyncio.Task[str], stop: asyncio.Event | None) -> str:
        """duration_s is over: nothing more is sent, and requests in flight get duration_grace_s
        (within the job timeout), then they are cancelled (recorded as `cancelled`). An interrupt
        or a crash meanwhile ends the job as that."""
        self.duration_hit, self.sending = True, False
        waits: dict[str, Awaitable[Any]] = {"crashed": self.crashed.wait()}
        if stop is not None:
            waits["interrupted"] = stop.wait()
        job_left = self._job_left_s()
        grace = self.duration_grace_s if job_left is None else min(self.duration_grace_s, job_left)
        reason = await self._first(driver, waits, grace)
        if reason in waits:
            return reason
        self.cancelling = True
        await self._cancel(list(self.tasks))
        return "duration"

    @staticmethod
    async def _first(driver: asyncio.Task[str], waits: Mapping[str, Awaitable[Any]],
                     timeout_s: float | None) -> str:
        """What comes first: the driver's end ("driver"), one of `waits` (its name), or
        `timeout_s` ("job_timeout")."""
        named = {asyncio.ensure_future(wait): name for name, wait in waits.items()}
        try:
            done, _ = await asyncio.wait({driver, *named}, timeout=timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in named:
                task.cancel()
        if driver in done:
            return "driver"
        return next((named[task] for task in done if task in named), "job_timeout")

    def _left_s(self, after_ns: int) -> float:
        """Seconds from now until `after_ns` past the job's start (0 when that has passed)."""
        return max(0, self.t0 + after_ns - perf_counter_ns()) / 1e9

    def _job_left_s(self) -> float | None:
        timeout = self.params.get("job_timeout_s")
        return None if timeout is None else self._left_s(int(float(timeout) * 1e9))

    async def _wind_down(self, grace_s: float, hurry: asyncio.Event | None) -> None:
        """Send nothing more; give in-flight requests `grace_s` (cut short by `hurry`), then
        cancel them. Never cancelled from outside: the records must be kept."""
        self.sending = False
        if self.tasks and grace_s > 0:
            waiters: set[asyncio.Task[Any]] = {asyncio.create_task(asyncio.wait(set(self.tasks)))}
            if hurry is not None:
                waiters.add(asyncio.create_task(hurry.wait()))
            try:
                await asyncio.wait(waiters, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        self.cancelling = True
        await self._cancel(list(self.tasks))

    async def _cancel_all(self, driver: asyncio.Task[str], monitor: asyncio.Task[None]) -> None:
        self.sending, self.cancelling = False, True
        await self._cancel([*self.tasks, driver, monitor])
        self._account()

    def _account(self) -> None:
        """Every request sent ends as a record: one that a bug left without an outcome is
        recorded here as `client_error`, so a job never ends with requests sent but unrecorded."""
        for record in list(self.inflight.values()):
            self._failed(record, "client_error", "the load generator lost this request's outcome"
                         " (a bug in runner: please report it)")
            self._finish(record)

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self.crash is None:
            self.crash = task.exception()  # e.g. a template that fails for one request index
            self.crashed.set()

    def _stopped(self) -> str:
        return "duration" if self.duration_hit else "done"

    def _give_up(self, reason: str) -> None:
        """Stop sending: the server cannot be benchmarked (see run_load)."""
        if self.gave_up is None:
            self.gave_up, self.sending = reason, False
            self.giving_up.set()

    def _watch(self, record: RequestRecord) -> None:
        """After each request: a success ends a run of pauses; `probe` timeouts in a row (the
        same count as the unreachable probe) mean the server accepts but does not answer."""
        if record.ok:
            self.pauses.in_a_row = 0
        timed_out = record.error_kind == "timeout"
        self.timeouts_in_a_row = self.timeouts_in_a_row + 1 if timed_out else 0
        if self.timeouts_in_a_row >= self.probe:
            self._give_up("unresponsive")

    def _asked_to_wait(self, resp: aiohttp.ClientResponse) -> str:
        """The error kind of an HTTP error: `rate_limited` for a 429, or a 503 with Retry-After,
        else `http`. A Retry-After pauses sending for the whole job (see pacing.Pauses.ask);
        asked once too often in a row, the job gives up."""
        wait_s = retry_after_s(resp.headers, time.time())
        if resp.status != 429 and (resp.status != 503 or wait_s is None):
            return "http"
        if wait_s is not None and not self.pauses.ask(wait_s, perf_counter_ns()):
            self._give_up("rate_limited")
        return "rate_limited"

    async def _pace(self) -> bool:
        """Wait while sending is paused (Retry-After); True when it waited. A stop ends the wait
        within PAUSE_POLL_S."""
        waited = False
        while self.sending and (left := self.pauses.until_ns - perf_counter_ns()) > 0:
            await asyncio.sleep(min(left / 1e9, PAUSE_POLL_S))
            waited = True
        return waited

    def _paused(self) -> bool:
        return self.pauses.until_ns > perf_counter_ns()  # before awaiting _pace: the hot path

    def _more(self) -> bool:
        return self.total is None or self.next_index < self.total

    async def _closed(self) -> str:
        """Closed loop: `concurrency` workers, each sending when its previous request ends."""
        workers = [self._spawn(self._worker()) for _ in range(self.slots)]
        await asyncio.wait(workers)
        return self._stopped()

    async def _worker(self) -> None:
        ready: int | None = None  # a worker's first request has no previous one to follow
        while True:
            # A pause is the server's wait, not the client's lag: `ready` moves past it.
            if self._paused() and self._more() and await self._pace() and ready is not None:
                ready = perf_counter_ns()
            if (index := self._take()) is None:
                return
            await self._request(index, self.bodies.get(index), ready, None)
            ready = perf_counter_ns()

    def _take(self) -> int | None:
        """The next request's index, or None when the job must send nothing more."""
        if not self.sending or (self.total is not None and self.next_index >= self.total):
            return None
        if self.duration_ns is not None and perf_counter_ns() - self.t0 >= self.duration_ns:
            self.duration_hit = True
            return None
        self.next_index += 1
        return self.next_index - 1

    async def _open(self) -> str:
        """Open loop: arrivals on absolute offsets from the start, so lateness never drifts.
        A pause (Retry-After) moves every later arrival by its length: the schedule keeps its
        rate and shape after it, and no burst of arrivals that fell due in it follows."""
        slots = asyncio.Semaphore(self.slots)
        for index, offset_s in enumerate(arrival_offsets(self.params)):
            if self.total is not None and index >= self.total:
                break
            body = self.bodies.get(index)
            scheduled = await self._arrive(int(offset_s * 1e9))
            if scheduled is None:
                break
            self._spawn(self._arrival(index, body, scheduled, slots))
        if self.tasks:
            await asyncio.wait(set(self.tasks))
        return self._stopped()

    async def _arrive(self, offset_ns: int) -> int | None:
        """Sleep until an arrival is due (its offset, moved by the pauses so far) and return
        when that is; None when it falls at or after the duration, or sending stopped."""
        while self.sending:
            scheduled = self.t0 + offset_ns + self.pauses.shift_ns
            if self.duration_ns is not None and scheduled - self.t0 >= self.duration_ns:
                self.duration_hit = True
                return None
            delay = scheduled - perf_counter_ns()
            if delay <= 0:
                return scheduled
            await asyncio.sleep(delay / 1e9)  # then again: a pause may have begun meanwhile
        return None

    async def _arrival(self, index: int, body: bytes, scheduled: int,
                       slots: asyncio.Semaphore) -> None:
        async with slots:
            if self._paused() and await self._pace():  # queued into a pause: its time moves
                scheduled += self.pauses.paused_ns(scheduled, perf_counter_ns())
            late = self.duration_ns is not None and perf_counter_ns() - self.t0 >= self.duration_ns
            if self.sending and not late:  # an arrival still queued at the end is never sent
                await self._request(index, body, scheduled, scheduled)

    async def _request(self, index: int, body: bytes, ready: int | None,
                       scheduled: int | None) -> None:
        """Send one request and record it; errors are data, never exceptions.

        `ready`: when it could have been sent at the earliest (its scheduled time, or when the
        worker's previous request ended); the delay from there is the client's scheduling lag.
        One function, not several: this is the hot path, and every call and await counts.
        Whatever the server or the client library does, the request ends as one record: an
        exception is its failure (`client_error` before an answer came, `invalid_response`
        after), never the job's."""
        record = RequestRecord(index=index, warmup=index < self.warmup)
        if scheduled is not None:
            record.scheduled_ms = (scheduled - self.t0) / 1e6
        state = StreamState(self.max_line, self.max_chunks)
        if self.sends_this_tick >= SENDS_PER_TICK or self.turns:
            await self._turn()
            if not self.sending:  # stopped meanwhile: this request is never sent
                return
        else:
            self._count_send()
        start = perf_counter_ns()
        record.sent_ms = (start - self.t0) / 1e6
        if ready is not None:
            self.health.scheduling_lag_ms.append((start - ready) / 1e6)
        self.inflight[index] = record
        resp = None
        try:
            async with self.session.post(self.url, data=body, allow_redirects=False) as resp:
                if resp.status >= 300:
                    end = await self._http_error(resp, record)
                else:
                    end = await self._read(resp, state, start + self.timeout_ns)
        except asyncio.CancelledError:
            end = self._failed(record, "cancelled", "stopped before the answer ended")
            if not self.cancelling:  # cancelled from outside: kept, and cancelled all the same
                self._measure(record, state, start, end)
                self._finish(record)
                raise
        except TimeoutError:
            end = self._failed(record, "timeout", "no complete answer within request_timeout_s")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
            end = self._failed(record, "connection", f"{type(exc).__name__}: {exc}")
        except aiohttp.ClientError as exc:
            end = self._failed(record, "invalid_response", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # e.g. RecursionError, ValueError, UnicodeError
            kind = "client_error" if resp is None else "invalid_response"
            end = self._failed(record, kind, f"{type(exc).__name__}: {exc}")
        self._measure(record, state, start, end)
        self._finish(record)

    async def _turn(self) -> None:
        """Wait until a later event-loop iteration lets this request start.

        On Python 3.11 aiohttp writes a request's body in a task that runs on the loop's next
        iteration, so 256 requests started in one iteration (a closed loop's round ending at
        once) reach the wire only after all 256 are built, up to ~100 ms after their clocks
        started: TTFT error. Starting at most SENDS_PER_TICK per iteration, in arrival order,
        puts each on the wire within a few ms of its start; the wait is the client's, and shows
        as scheduling lag. Measured at 256 streams (simulator TTFT 50 ms, ITL 40 ms; median of
        five runs): TTFT p50 error 9.7 ms -> 2.7 ms."""
        turn = asyncio.get_running_loop().create_future()
        self.turns.append(turn)
        await turn

    def _count_send(self) -> None:
        if not self.sends_this_tick:
            asyncio.get_running_loop().call_soon(self._next_tick)
        self.sends_this_tick += 1

    def _next_tick(self) -> None:
        self.sends_this_tick = 0
        while self.turns and self.sends_this_tick < SENDS_PER_TICK:
            turn = self.turns.popleft()
            if not turn.done():  # a cancelled waiter gives its turn away
                turn.set_result(None)
                self._count_send()

    async def _read(self, resp: aiohttp.ClientResponse, state: StreamState,
                    deadline_ns: int) -> int:
        """Read the answer into `state`; return when it ended.

        Whole reads, split into lines by StreamState. Measured on 256-event answers:
        `async for line in resp.content` (an await per line, two lines per event) costs 5x what
        whole reads cost, more than this loop with all its parsing. The deadline is checked
        after every read: aiohttp checks its timeout only when a read has to wait for data,
        and a server that keeps the client's buffer full never lets it wait (a gzip bomb held
        a request 4.8 s against a 2 s request_timeout_s)."""
        encoding = _encoding(resp)
        if encoding is not None:
            state.invalid = (f"the answer is {encoding}-compressed, though runner asks for "
                             "identity (Accept-Encoding)")
            return perf_counter_ns()
        content = resp.content
        if not self.stream or resp.content_type == "application/json":
            data, whole = await _read_up_to(content, self.max_line)
            end = perf_counter_ns()
            if whole:
                state.body(data, end)
            else:
                state.cut(f"more than {self.max_line} bytes")
            return end
        feed = state.feed
        while data := await content.readany():
            now = perf_counter_ns()
            if feed(data, now):
                break
            if now > deadline_ns:
                raise TimeoutError
        end = perf_counter_ns()
        state.close(end)
        if state.done and not content.at_eof():
            await _drain(content)
        return end

    async def _http_error(self, resp: aiohttp.ClientResponse, record: RequestRecord) -> int:
        """Record the status and the message of an error answer; at most `error_bytes` of it
        are read (a 1 GiB error body cost 2 GB read whole), the rest is left unread."""
        record.http_status = resp.status
        kind, head = self._asked_to_wait(resp), f"HTTP {resp.status}"
        encoding = _encoding(resp)
        if encoding is not None:
            return self._failed(record, kind, f"{head} (a {encoding}-compressed body, unread)")
        data, whole = await _read_up_to(resp.content, self.max_error)
        # Redacted whole, before error_message and short cut it: a cut key would slip through.
        text = redact(data.decode(errors="replace"), self.target.headers)
        try:
            message = error_message(json.loads(text))
        except (ValueError, RecursionError):
            message = short(text) or resp.reason or ""
        if not whole:
            head += f" (body longer than {self.max_error} bytes, cut)"
        return self._failed(record, kind, f"{head}: {message}")

    def _failed(self, record: RequestRecord, kind: str, message: str) -> int:
        record.error_kind = record.error_kind or kind
        # Redact before shortening: a key cut in two by `short` would no longer be found.
        record.error = record.error or short(redact(message, self.target.headers))
        return perf_counter_ns()

    def _measure(self, record: RequestRecord, state: StreamState, start: int, end: int) -> None:
        """Fill timings and tokens from the stream, and decide whether the request succeeded."""
        times = state.chunk_ns
        record.e2e_ms = (end - start) / 1e6
        record.content_chunks = len(times)
        if times:
            record.ttft_ms = (times[0] - start) / 1e6
            record.itl_ms = [(b - a) / 1e6 for a, b in itertools.pairwise(times)]
        record.prompt_tokens = state.prompt_tokens
        if state.completion_tokens is not None:
            record.output_tokens, record.output_tokens_source = state.completion_tokens, "usage"
        elif self.stream:
            record.output_tokens, record.output_tokens_source = len(times), "chunks"
        record.finish_reason = state.finish_reason
        if record.error_kind is None:
            kind, message = state.outcome()
            if kind is not None:
                self._failed(record, kind, message or kind)
        record.ok = record.error_kind is None

    def _finish(self, record: RequestRecord) -> None:
        self.inflight.pop(record.index, None)
        self.records.append(record)
        if len(self.records) <= self.probe:
            self.refused += record.error_kind == "connection"
            if self.refused == self.probe:  # the first requests all failed to connect
                self.sending = False
                self.unreachable.set()
        self._watch(record)
        self.on_record(record)

    async def _monitor(self) -> None:
        """Event-loop delay: how late a 10 ms sleep wakes up."""
        loop, delays = asyncio.get_running_loop(), self.health.loop_delay_ms
        while True:
            before = loop.time()
            await asyncio.sleep(LOOP_TICK_S)
            delays.append(max(0.0, (loop.time() - before - LOOP_TICK_S) * 1e3))


@contextlib.contextmanager
def _frozen_gc() -> Iterator[None]:
    """Objects that exist before the job are never scanned during it: a full collection of a
    big heap otherwise stalls the event loop for 20-40 ms, in the middle of measurements."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _encoding(resp: aiohttp.ClientResponse) -> str | None:
    """The answer's Content-Encoding when it is not identity (runner asks for identity)."""
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    return None if encoding in ("", "identity") else short(encoding, 24)


async def _read_up_to(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of a body, and whether that is all of it (the rest is not read)."""
    parts: list[bytes] = []
    size = 0
    while size <= limit and (data := await content.readany()):
        parts.append(data)
        size += len(data)
    return b"".join(parts)[:limit], size <= limit


async def _drain(content: aiohttp.StreamReader) -> None:
    """Read what follows [DONE] (the chunk terminator) so the connection can be reused; a
    server that keeps the stream open gets its connection closed instead."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(DRAIN_S):  # no extra task, unlike wait_for
            while await content.readany():
                pass
