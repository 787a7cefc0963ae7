"""The simulator's token clock on a fake event loop: the schedule it computes, to the tick."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from runner.mock.clock import Clock, Stats, Stream

TTFT_S, ITL_S = 0.5, 0.25  # exact in binary: times below compare with ==


class FakeTimer:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self._when, self.callback, self.cancelled = when, callback, False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """What the clock uses of an event loop: the time, set by `run`, and timers it fires."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(when, callback)
        self.timers.append(timer)
        return timer

    def run(self, late_s: Callable[[float], float]) -> None:
        """Fire the timers in order, each `late_s(when)` after its time (a busy loop is late)."""
        while live := [t for t in self.timers if not t.cancelled]:
            timer = min(live, key=FakeTimer.when)
            self.timers.remove(timer)
            self.now = max(self.now, timer.when() + late_s(timer.when()))
            timer.callback()


class FakeTransport:
    """A socket that takes everything and notes when each write came."""

    def __init__(self, loop: FakeLoop) -> None:
        self.loop = loop
        self.writes: list[tuple[float, bytes]] = []

    def write(self, data: bytes) -> None:
        self.writes.append((self.loop.now, data))

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


def stream_on_fake_loop(tokens: int, itl_s: float,
                        late_s: Callable[[float], float]) -> tuple[FakeTransport, Stats, bool]:
    """One stream of `tokens` started at time 0 with TTFT_S; its writes, stats and outcome."""

    async def scenario() -> tuple[FakeTransport, Stats, bool]:
        loop, stats = FakeLoop(), Stats()
        clock = Clock(stats)
        clock.loop = loop  # type: ignore[assignment]
        transport = FakeTransport(loop)
        request: Any = SimpleNamespace(transport=transport, version=(1, 0))  # unframed writes
        stream = Stream(request, b"t", b"END", tokens, TTFT_S, itl_s)
        clock.add(stream)
        loop.run(late_s)
        return transport, stats, await stream.done

    return asyncio.run(scenario())


def test_tokens_are_written_at_ttft_then_every_itl() -> None:
    sent, stats, completed = stream_on_fake_loop(5, ITL_S, lambda when: 0.0)
    assert sent.writes == [(0.5, b"t"), (0.75, b"t"), (1.0, b"t"), (1.25, b"t"),
                             (1.5, b"tEND")]
    assert completed
    assert stats.tokens == 5
    assert stats.lag.to_json() == {"count": 5, "p50": 0.0, "p99": 0.0, "max": 0.0}


def test_a_late_tick_writes_what_is_due_and_the_schedule_does_not_shift() -> None:
    # The timer of the token due at 1.0 fires at 1.6: tokens due at 1.0, 1.25 and 1.5 go
    # together; the next ones keep their times (1.75, 2.0), they are not pushed back by 0.6.
    sent, stats, _ = stream_on_fake_loop(7, ITL_S, lambda when: 0.6 if when == 1.0 else 0.0)
    assert sent.writes == [(0.5, b"t"), (0.75, b"t"), (1.6, b"ttt"), (1.75, b"t"),
                             (2.0, b"tEND")]
    lag = stats.lag.to_json()
    assert (lag["count"], lag["max"]) == (7, pytest.approx(600))


def test_no_itl_writes_the_whole_answer_at_ttft() -> None:
    sent, stats, _ = stream_on_fake_loop(4, 0.0, lambda when: 0.0)
    assert sent.writes == [(0.5, b"ttttEND")]
    assert stats.lag.count == 4
