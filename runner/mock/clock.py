"""The simulator's token clock: one timer writes every stream's due tokens, and the counts
and write lags it keeps for `GET /mock/stats`."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import select
import selectors
import sys
from typing import Any

from aiohttp import web

LAG_SAMPLE_SIZE = 50_000  # write lags kept for percentiles: between this and twice this
WRITE_BUFFER_LIMIT = 1 << 18  # bytes queued for a client before its tokens wait


class LagStats:
    """Write lags (seconds): exact count and max; percentiles from every stride-th lag, the
    stride doubling whenever the sample fills, so memory stays bounded and the sample uniform."""

    def __init__(self) -> None:
        self.count, self.max, self.stride = 0, 0.0, 1
        self.sample: list[float] = []

    def add_schedule(self, now: float, first: float, step: float, start: int, stop: int) -> None:
        """Tokens start..stop-1, scheduled at first + k*step, all written at `now`."""
        late = now - first
        self.max = max(self.max, late - start * step)
        skip = -self.count % self.stride  # tokens of this batch before the next one kept
        kept = range(start + skip, stop, self.stride)
        self.sample.extend([late - k * step for k in kept] if step else [late] * len(kept))
        self.count += stop - start
        if len(self.sample) >= 2 * LAG_SAMPLE_SIZE:
            del self.sample[1::2]
            self.stride *= 2

    def to_json(self) -> dict[str, Any]:
        ordered = sorted(self.sample)

        def pick(q: float) -> float | None:
            return round(ordered[int(q * (len(ordered) - 1))] * 1e3, 4) if ordered else None

        peak = round(self.max * 1e3, 4) if self.count else None
        return {"count": self.count, "p50": pick(0.5), "p99": pick(0.99), "max": peak}


class Stats:
    """Counts of generation requests and write lags, served by `GET /mock/stats`."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.total = self.streaming = self.disconnected = self.tokens = 0
        self.peak_in_flight = self.in_flight
        self.by_status: dict[int, int] = {}
        self.lag = LagStats()

    def answered(self, status: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def to_json(self) -> dict[str, Any]:
        requests = {"total": self.total, "streaming": self.streaming,
                    "in_flight": self.in_flight, "peak_in_flight": self.peak_in_flight,
                    "disconnected": self.disconnected,
                    "by_status": {str(k): v for k, v in sorted(self.by_status.items())}}
        return {"requests": requests, "tokens": self.tokens, "write_lag_ms": self.lag.to_json()}


class Stream:
    """One streaming answer's token schedule, written straight to its socket by the clock."""

    def __init__(self, request: web.Request, token: bytes, trailer: bytes, total: int,
                 first: float, step: float) -> None:
        self.transport = request.transport
        self.chunked = request.version >= (1, 1)  # as aiohttp frames the response
        self.token, self.trailer, self.first, self.step = token, trailer, first, step
        self.total, self.sent, self.hold_until = total, 0, 0.0
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def next_at(self) -> float:
        return max(self.first + self.sent * self.step, self.hold_until)

    def due(self, now: float) -> int:
        """How many tokens are due at `now` (at least one more: the clock says it is time)."""
        if self.step <= 0:
            return self.total
        return min(self.total, max(self.sent + 1, int((now - self.first) / self.step) + 1))

    def tokens(self, due: int) -> bytes:
        """The events of the tokens from `sent` up to `due`."""
        return self.token * (due - self.sent)

    def write(self, data: bytes) -> None:
        # The framing aiohttp's writer adds; its write() is a coroutine, the clock's tick is not.
        assert self.transport is not None
        self.transport.write(b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data)

    def finish(self, completed: bool) -> None:
        if not self.done.done():
            self.done.set_result(completed)


class Clock:
    """Writes every stream's due tokens from one timer: per token a heap step and a socket write,
    not a timer, a future and a task switch each (the difference is the mock's lag)."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.loop = asyncio.get_running_loop()
        self.heap: list[tuple[float, int, Stream]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.order = itertools.count()

    def add(self, stream: Stream) -> None:
        """Schedule a new stream; tokens already due are written at once."""
        now = self.loop.time()
        if stream.next_at() <= now and not self._advance(stream, now):
            return
        heapq.heappush(self.heap, (stream.next_at(), next(self.order), stream))
        if self.timer is None or self.timer.when() > self.heap[0][0]:
            self._arm()

    def close(self) -> None:
        """End every stream now (the server is stopping)."""
        for _, _, stream in self.heap:
            stream.finish(False)
        self.heap.clear()
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(self.heap[0][0], self._tick) if self.heap else None

    def _tick(self) -> None:
        self.timer = None
        heap = self.heap
        while heap and heap[0][0] <= (now := self.loop.time()):
            stream = heapq.heappop(heap)[2]
            if self._advance(stream, now):
                heapq.heappush(heap, (stream.next_at(), next(self.order), stream))
        self._arm()

    def _advance(self, stream: Stream, now: float) -> bool:
        """Write what is due; False when the stream is over."""
        transport = stream.transport
        if stream.done.done() or transport is None or transport.is_closing():
            stream.finish(False)
            return False
        if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:  # a client not reading
            stream.hold_until = now + 0.001
            return True
        due = stream.due(now)
        body = stream.tokens(due)
        stream.write(body + stream.trailer if due == stream.total else body)
        self.stats.lag.add_schedule(now, stream.first, stream.step, stream.sent, due)
        self.stats.tokens += due - stream.sent
        stream.sent = due
        if due == stream.total:
            stream.finish(True)
        return due < stream.total


if sys.platform == "linux":

    class _PreciseSelector(selectors.EpollSelector):
        """epoll_wait rounds its timeout up to whole milliseconds, a lag every token would carry;
        select() on the epoll descriptor waits to the microsecond, then epoll says what is ready."""

        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            if timeout is not None and timeout > 0 and self.fileno() < 1024:  # FD_SETSIZE
                select.select([self.fileno()], [], [], timeout)
                timeout = 0
            return super().select(timeout)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose timers fire within microseconds of their time, not milliseconds."""
    selector = _PreciseSelector() if sys.platform == "linux" else selectors.DefaultSelector()
    return asyncio.SelectorEventLoop(selector)
