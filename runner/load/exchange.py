"""One request of a job on the wire: sent on its turn, its answer read within the limits and
the deadline, measured into a RequestRecord."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

import aiohttp

from runner.defaults import LIMITS, PARAMS
from runner.load.endpoints import PATHS, answer_reader, endpoint, streams
from runner.load.gatewayheaders import read_gateway
from runner.load.pacing import Pauses, retry_after_s
from runner.load.records import ClientHealth, RequestRecord, count_tokens, time_answer, time_chunks
from runner.load.sse import StreamState, error_message, short
from runner.redaction import redact

DRAIN_S = 1.0  # after [DONE], how long the rest of the body (chunk terminator) may take
SENDS_PER_TICK = 4  # requests started per event-loop iteration, at most (see Exchange._turn)


@dataclass(frozen=True)
class Target:
    """Where requests go. `headers` carry the Authorization: never log them. `limits`: what
    the server's answers may hold (servers.yaml `limits`; missing keys take LIMITS'). `body`:
    fields added to every request's body, under the plan's `extra_body` (runner.run.gateway)."""

    base_url: str
    headers: Mapping[str, str]
    model: str
    limits: Mapping[str, int] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)


class Exchange(ABC):
    """A job's requests on the wire, the part of a running job (loadjob.LoadJob) that sends each
    request on its turn, reads its answer within the limits and the deadline, and measures it
    into a record: `_finish` keeps it, `_give_up` stops the job (schedule.Schedule).
    `state_type` reads each answer (a subclass may learn more from it: run.probewire)."""

    state_type: type[StreamState] = StreamState

    def __init__(self, target: Target, params: Mapping[str, Any]) -> None:
        self.target = target
        self.url = target.base_url.rstrip("/") + PATHS[endpoint(params)]
        self.stream = streams(params)
        self.warmup = int(params.get("warmup_requests", 0))
        self.session: aiohttp.ClientSession
        self.health = ClientHealth()
        self.sending, self.cancelling = True, False
        self.sends_this_tick = 0
        self.turns: collections.deque[asyncio.Future[None]] = collections.deque()
        self.pauses = Pauses()
        self.t0 = 0
        limits = {**LIMITS, **target.limits}
        self.max_line, self.max_chunks = limits["line_bytes"], limits["chunks"]
        self.max_error = limits["error_bytes"]
        self.new_state = answer_reader(params, self.state_type, self.max_line, self.max_chunks)
        self.timeout_s = float(params.get("request_timeout_s", PARAMS["request_timeout_s"]))
        # Not a finite number (validation refuses it): no deadline; aiohttp then refuses every
        # request, and each is recorded as a client_error.
        self.timeout_ns = int(self.timeout_s * 1e9) if 0 < self.timeout_s < 1e7 else 1 << 62
        self.stall_s = float(params.get("stall_timeout_s", PARAMS["stall_timeout_s"]))
        self.inflight: dict[int, RequestRecord] = {}  # sent, not yet recorded

    def client_timeout(self) -> aiohttp.ClientTimeout:
        """The session's timeouts: request_timeout_s on the whole request, stall_timeout_s on
        each wait for bytes (aiohttp's sock_read: the answer's head and every read of its body;
        it raises ServerTimeoutError, which `_timed_out` names `stalled`)."""
        return aiohttp.ClientTimeout(total=self.timeout_s, sock_read=self.stall_s)

    def client_session(
        self, limit: int = 100, headers: Mapping[str, str] | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> aiohttp.ClientSession:
        """A session for this target's requests: at most `limit` connections, the target's
        headers (then `headers`), client_timeout(). Identity only, never decompressed: a 261 KB
        gzip bomb is a 256 MiB line, inflated in one go before any limit could look at it (an
        answer compressed anyway is refused). No cookie jar: a load balancer's sticky-session
        cookie must not pin every request. No proxy from the environment."""
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=None)
        sent = {**self.target.headers, "Content-Type": "application/json",
                "Accept-Encoding": "identity", **(headers or {})}
        return aiohttp.ClientSession(connector=connector, timeout=self.client_timeout(),
                                     headers=sent, trust_env=False,
                                     cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                     trace_configs=list(trace_configs) or None)

    @abstractmethod
    def _finish(self, record: RequestRecord) -> None:
        """Keep the record of a request that ended (loadjob.LoadJob)."""

    @abstractmethod
    def _give_up(self, reason: str) -> None:
        """Stop sending: the server cannot be benchmarked (schedule.Schedule)."""

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

    async def _request(self, index: int, body: bytes, ready: int | None,
                       scheduled: int | None, queue_ms: float | None = None) -> None:
        """Send one request and record it; errors are data, never exceptions.

        `ready`: when it could have been sent at the earliest (its scheduled time or, later, when
        a max_concurrency slot was freed for it; or when the worker's previous request ended);
        the delay from there is the client's send lag. `queue_ms`: its wait for that slot.
        One function, not several: this is the hot path, and every call and await counts.
        Whatever the server or the client library does, the request ends as one record: an
        exception is its failure (`client_error` before an answer came, `invalid_response`
        after), never the job's."""
        record = RequestRecord(index=index, warmup=index < self.warmup)
        if scheduled is not None:
            record.scheduled_ms = (scheduled - self.t0) / 1e6
            record.queue_ms = queue_ms
        state = self.new_state()
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
                record.gateway = read_gateway(resp.headers)
                if resp.status >= 300:
                    end = await self._http_error(resp, record)
                else:
                    unwatch = _watch_connection(resp)
                    try:
                        end = await self._read(resp, state, start + self.timeout_ns)
                    finally:
                        unwatch()
        except asyncio.CancelledError:
            end = self._failed(record, "cancelled", "stopped before the answer ended")
            if not self.cancelling:  # cancelled from outside: kept, and cancelled all the same
                self._measure(record, state, start, end)
                self._finish(record)
                raise
        except TimeoutError as exc:
            end = self._timed_out(record, exc)
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

    def _timed_out(self, record: RequestRecord, exc: TimeoutError) -> int:
        """A stall (aiohttp's sock_read: no byte for stall_timeout_s) or the whole answer's
        deadline (request_timeout_s: aiohttp's total, or `_read`'s own check)."""
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return self._failed(record, "stalled", "no byte from the server for stall_timeout_s"
                                f" ({self.stall_s:g} s)")
        return self._failed(record, "timeout", "no complete answer within request_timeout_s")

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
        record.streamed = not state.whole
        if times and record.streamed:  # one body has no chunk arrivals: no TTFT, no ITL
            record.ttft_ms = (times[0] - start) / 1e6
            record.itl_ms = [(b - a) / 1e6 for a, b in itertools.pairwise(times)]
        if not state.whole:
            time_chunks(record, times, state.textless_ns, start)
            time_answer(record, state.answer_ns, state.reasoning_chunks, start)
        record.prompt_tokens, record.reasoning_tokens = state.prompt_tokens, state.reasoning_tokens
        record.inputs = getattr(state, "inputs", None)  # an embeddings request's (EmbeddingsState)
        count_tokens(record, state.completion_tokens, self.stream)
        record.finish_reason = state.finish_reason
        if record.error_kind is None:
            kind, message = state.outcome()
            if kind is not None:
                self._failed(record, kind, message or kind)
        record.ok = record.error_kind is None


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


def _watch_connection(resp: aiohttp.ClientResponse) -> Callable[[], None]:
    """Make a connection that breaks mid-answer end the answer's reads; returns the undo.

    aiohttp's C parser, fed a bad chunk size or chunk data without its CRLF, closes the
    connection but never tells the body's reader, which then waits out request_timeout_s
    (measured: a bad chunk held a read until a 5 s total deadline; the pure-Python parser
    raises at once). When the connection closes with the body neither complete nor failed,
    the body fails with ClientPayloadError (kind `connection`), naming the parser's error."""
    protocol = resp.connection.protocol if resp.connection is not None else None
    closed = protocol.closed if protocol is not None else None
    if closed is None:
        return _nothing
    content = resp.content

    def broke(_: asyncio.Future[None]) -> None:
        if not content.is_eof() and content.exception() is None:
            cause = protocol.exception() if protocol is not None else None
            said = f": {short(str(cause).replace(chr(10), ' '))}" if cause is not None else ""
            content.set_exception(aiohttp.ClientPayloadError(
                f"the connection closed in the middle of the answer{said}"))

    def unwatch() -> None:
        closed.remove_done_callback(broke)

    closed.add_done_callback(broke)
    return unwatch


def _nothing() -> None:
    pass


async def _drain(content: aiohttp.StreamReader) -> None:
    """Read what follows [DONE] (the chunk terminator) so the connection can be reused; a
    server that keeps the stream open gets its connection closed instead."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(DRAIN_S):  # no extra task, unlike wait_for
            while await content.readany():
                pass
