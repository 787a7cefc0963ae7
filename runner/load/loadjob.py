"""A running job of the load generator (runner.load.loadgen.run_load starts it): what it keeps
while its requests are sent and measured, and what it hands back."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

import aiohttp

from runner.load.earlystop import EarlyStop
from runner.load.exchange import Target
from runner.load.records import ClientHealth, RequestRecord
from runner.load.schedule import Schedule
from runner.load.workload import PromptSource

PREBUILD_UNBOUNDED = 4096  # bodies built ahead when the job's request count is not known
LOOP_TICK_S = 0.01  # the event-loop monitor's sleep; its overshoot is the loop delay
PROBE_MIN, PROBE_MAX = 3, 32  # the first requests that, all refused, mean "unreachable"


@dataclass
class LoadResult:
    """A finished job's records (sorted by index) and how the load generator fared.

    `started_at` is the wall time of the job's start and `duration_s` runs from there until the
    last request ended, warm-up included. The measured window opened `warmup_s` after the start,
    once every warm-up had ended: it is offset 0 of every record (warm-ups have negative
    offsets). `pauses_s`: each pause in sending that a server asked for (429 or 503 with
    Retry-After), in seconds."""

    records: list[RequestRecord]
    health: ClientHealth
    started_at: float
    duration_s: float
    # "done" | "duration" | "interrupted" | "job_timeout" | "unreachable" | "unresponsive"
    # | "rate_limited" | "error_rate" | "saturated" (the last two: early stop, see earlystop)
    stopped: str
    pauses_s: list[float] = field(default_factory=list)
    warmup_s: float = 0.0
    early_stop: dict[str, Any] | None = None  # the early stop's rule and figures


def ignore(record: RequestRecord) -> None:
    """The default `on_record`: keep nothing."""


class LoadJob(Schedule):
    """One job's state while it runs: when its requests are sent and how it stops (Schedule),
    each request on the wire (Exchange), and here what the job keeps and hands back."""

    def __init__(self, target: Target, params: Mapping[str, Any], prompts: PromptSource,
                 on_record: Callable[[RequestRecord], None], max_error_rate: float) -> None:
        super().__init__(target, params, prompts)
        self.on_record = on_record
        # A second's worth of arrivals (open loop) or one request per worker (closed loop).
        worth = int(float(params.get("rate") or 0)) if self.open_loop else self.slots  # replay: 0
        self.probe = min(max(worth, PROBE_MIN), PROBE_MAX)
        self.records: list[RequestRecord] = []
        self.refused = 0
        self.timeouts_in_a_row = 0
        self.held: list[RequestRecord] = []  # warm-ups, handed on when the window opens
        self.early = EarlyStop(params, max_error_rate, schedule_s=self.replay)
        self.early_stop: dict[str, Any] | None = None

    async def run(self, stop: asyncio.Event | None, hurry: asyncio.Event | None,
                  grace_s: float) -> LoadResult:
        expected = self._expected()
        self.bodies.prebuild(self.deal.indices(expected) if self.deal else range(expected))
        with _frozen_gc():
            async with self._session() as session:
                self.session = session
                self.t0, started_at = perf_counter_ns(), time.time()
                self.job_t0 = self.t0
                monitor = asyncio.create_task(self._monitor())
                driver = asyncio.create_task(self._drive())
                try:
                    stopped = await self._supervise(driver, stop, hurry, grace_s)
                finally:
                    await self._cancel_all(driver, monitor)
                    self._hand_on(0.0)
                end = perf_counter_ns()
        self.records.sort(key=lambda r: r.index)
        return LoadResult(self.records, self.health, started_at, (end - self.job_t0) / 1e9,
                          stopped, self.pauses.lengths_s(end), (self.t0 - self.job_t0) / 1e9,
                          self.early_stop if stopped == (self.early_stop or {}).get("reason")
                          else None)

    def _open_window(self) -> None:
        """The window opens: the warm-ups' offsets move to its start, and they are handed on."""
        before = self.t0
        super()._open_window()
        self._hand_on((self.t0 - before) / 1e6)

    def _hand_on(self, shift_ms: float) -> None:
        for record in self.held:
            record.sent_ms -= shift_ms
            self.on_record(record)
        self.held.clear()

    def _expected(self) -> int:
        """How many requests the job will send, as far as is known."""
        if self.total is not None:
            return self.total
        if self.open_loop and self.duration_ns is not None:
            return int(float(self.params["rate"]) * self.duration_ns / 1e9) + 1
        return PREBUILD_UNBOUNDED

    def _session(self) -> aiohttp.ClientSession:
        return self.client_session(limit=self.slots)

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

    def _watch(self, record: RequestRecord) -> None:
        """After each request: a success ends a run of pauses; `probe` timeouts or stalls in a
        row (the same count as the unreachable probe) mean the server accepts but does not
        answer (a stall is the common case: silence)."""
        if record.ok:
            self.pauses.in_a_row = 0
        timed_out = record.error_kind in ("timeout", "stalled")  # either: no answer
        self.timeouts_in_a_row = self.timeouts_in_a_row + 1 if timed_out else 0
        if self.timeouts_in_a_row >= self.probe:
            self._give_up("unresponsive")
        if self.gave_up is None and self.sending and (stop := self.early.observe(record)):
            self.early_stop = stop
            self._give_up(stop["reason"])

    def _finish(self, record: RequestRecord) -> None:
        self.inflight.pop(record.index, None)
        self.records.append(record)
        if len(self.records) <= self.probe:
            self.refused += record.error_kind == "connection"
            if self.refused == self.probe:  # the first requests all failed to connect
                self.sending = False
                self.unreachable.set()
        self._watch(record)
        if record.warmup and not self.window_open.is_set():
            self.held.append(record)
        else:
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
