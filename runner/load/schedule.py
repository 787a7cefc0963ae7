"""When a job's requests are sent and how the job stops: closed and open loops, the pauses a
server asks for, the duration and its grace, interrupts, the job timeout, the wind-down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from time import perf_counter_ns
from typing import Any

from runner import defaults
from runner.load.arrivals import arrival_offsets, slot_openings
from runner.load.deal import Deal
from runner.load.exchange import Exchange, Target
from runner.load.replay import replay_offsets
from runner.load.slots import Slots
from runner.load.workload import PromptSource, RequestBodies

OPEN_LOOP_SLOTS = 1024  # open loop without max_concurrency: in flight at most (file handles)
PAUSE_POLL_S = 0.1  # a sender waiting out a pause (Retry-After) checks this often for a stop


class Schedule(Exchange):
    """When a running job (loadjob.LoadJob) sends its requests and how it stops sending: its
    closed or open loop, pauses, the duration, interrupts and the job timeout."""

    def __init__(self, target: Target, params: Mapping[str, Any], prompts: PromptSource) -> None:
        super().__init__(target, params)
        self.params = params
        requests = params.get("requests")
        self.total = None if requests is None else self.warmup + int(requests)
        duration = params.get("duration_s")
        self.duration_ns = None if duration is None else int(duration * 1e9)
        grace = params.get("duration_grace_s")
        self.duration_grace_s = float(grace) if grace is not None else \
            defaults.duration_grace_s(duration or 0)
        # A replay (issue 14 §5) is an open loop on its trace's offsets, ending with the trace.
        self.replay = replay_offsets(params, prompts)
        if self.replay is not None:
            self.total = self.warmup + min(len(self.replay), int(requests or len(self.replay)))
        self.open_loop = params.get("rate") is not None or self.replay is not None
        # The plan limits open-loop requests in flight: a wait for a slot is the plan's queue.
        self.limited = self.open_loop and params.get("max_concurrency") is not None
        self.slots = int(params.get("max_concurrency") or OPEN_LOOP_SLOTS) if self.open_loop \
            else int(params.get("concurrency", 1))
        self.bodies = RequestBodies(params, target.model, prompts, target.body)
        self.tasks: set[asyncio.Task[None]] = set()
        self.duration_hit, self.next_index = False, 0
        self.unreachable = asyncio.Event()
        self.gave_up: str | None = None  # "unresponsive" | "rate_limited" | an early stop
        self.giving_up = asyncio.Event()
        self.crashed = asyncio.Event()
        self.crash: BaseException | None = None
        self.job_t0 = 0  # the job's start (perf_counter_ns); self.t0 is the window's
        self.window_open = asyncio.Event()  # warm-ups are over: the measured window is open
        # Awaited between the last warm-up's end and the window's opening (e.g. a scrape of
        # the server's counters, so that they hold none of the warm-up's work).
        self.before_window: Callable[[], Awaitable[object]] | None = None
        # A worker's part of the job (runner.run.workers): its indices, arrivals, streams; and
        # awaited last before the window opens, to open it with the other workers'.
        self.deal: Deal | None = None
        self.before_open: Callable[[], Awaitable[object]] | None = None

    def take_part(self, deal: Deal) -> None:
        """Send only this worker's part of the job (see runner.load.deal)."""
        self.deal, self.next_index = deal, deal.lane

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
            waits["duration"] = self._duration_over(self.duration_ns)
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

    async def _duration_over(self, duration_ns: int) -> None:
        """Return when duration_s has passed in the measured window (warm-ups are not in it)."""
        await self.window_open.wait()
        await asyncio.sleep(self._left_s(duration_ns))

    def _left_s(self, after_ns: int, since: int | None = None) -> float:
        """Seconds from now until `after_ns` past `since` (default: the measured window's
        start); 0 when that has passed."""
        return max(0, (self.t0 if since is None else since) + after_ns - perf_counter_ns()) / 1e9

    def _job_left_s(self) -> float | None:
        """Seconds left of job_timeout_s, which counts from the job's start, warm-ups included."""
        timeout = self.params.get("job_timeout_s")
        return None if timeout is None else self._left_s(int(float(timeout) * 1e9), self.job_t0)

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

    async def _drive(self) -> str:
        """The job's sending: warm-ups first; once they all ended the measured window opens
        and the closed or open loop runs in it."""
        await self._warm_up()
        if self.warmup and self.before_window is not None and self.sending:
            await self.before_window()
        if self.before_open is not None and self.sending:
            await self.before_open()
        if not self.sending:
            return self._stopped()
        self._open_window()
        self.next_index = self.warmup + (self.deal.lane if self.deal else 0)
        return await (self._open() if self.open_loop else self._closed())

    async def _warm_up(self) -> None:
        """Warm-up requests (indices 0..warmup_requests-1), `slots` at a time (concurrency, or
        max_concurrency), as vLLM's `bench serve` runs its warm-ups (benchmarks/serve.py,
        `benchmark`: gathered under the max_concurrency semaphore before benchmark_start_time).
        They all end before the measured window opens, so none of their work falls in it; a
        pause a server asked for meanwhile ends first too."""
        if not self.warmup:
            return
        workers = [self._spawn(self._warm_worker()) for _ in range(min(self.slots, self.warmup))]
        await asyncio.wait(workers)
        await self._pace()

    async def _warm_worker(self) -> None:
        while self.sending and self.next_index < self.warmup:
            if self._paused():  # a server's Retry-After holds warm-ups too
                await self._pace()
                continue
            index, self.next_index = self.next_index, self.next_index + self._step()
            await self._request(index, self.bodies.get(index), None, None)

    def _open_window(self) -> None:
        """The measured window opens now: record offsets, duration_s and the open loop's
        arrivals count from here, pauses during warm-up no longer move the schedule, and the
        client's health is measured from here on."""
        self.t0 = perf_counter_ns()
        self.pauses.shift_ns = 0
        self.health.loop_delay_ms.clear()
        self.window_open.set()

    async def _closed(self) -> str:
        """Closed loop: `concurrency` workers (from when each slot opens, see slot_openings),
        each sending when its previous request ends."""
        openings = self.deal.openings if self.deal else slot_openings(self.params)
        workers = [self._spawn(self._worker(at)) for at in openings]
        await asyncio.wait(workers)
        return self._stopped()

    async def _worker(self, opens_s: float = 0.0) -> None:
        await asyncio.sleep(self._left_s(int(opens_s * 1e9)))  # until its slot opens
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
        self.next_index += self._step()
        return self.next_index - self._step()

    def _step(self) -> int:
        """From one of this job's (or worker's) request indices to its next."""
        return self.deal.lanes if self.deal else 1

    async def _open(self) -> str:
        """Open loop: arrivals on absolute offsets from the start, so lateness never drifts.
        A pause (Retry-After) moves every later arrival by its length: the schedule keeps its
        rate and shape after it, and no burst of arrivals that fell due in it follows."""
        slots = Slots(self.slots)
        for index, offset_s in self._arrivals():
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

    def _arrivals(self) -> Iterable[tuple[int, float]]:
        """The open loop's (index, offset_s) arrivals: a worker's dealt ones, else all."""
        if self.deal is not None and self.deal.arrivals is not None:
            return self.deal.arrivals
        offsets = self.replay if self.replay is not None else arrival_offsets(self.params)
        return enumerate(offsets, start=self.warmup)

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

    async def _arrival(self, index: int, body: bytes, scheduled: int, slots: Slots) -> None:
        """One arrival: wait for a slot, then send. With max_concurrency, the wait for a slot
        freed after the scheduled time is the request's queue_ms (the plan's doing); the send
        lag counts from when it could go, max(scheduled, slot freed). Without it, a wait for
        one of OPEN_LOOP_SLOTS is the client's own limit, and counts as send lag."""
        freed = await slots.take()
        try:
            queue_ns, ready = 0, scheduled
            if freed is not None and self.limited:
                queue_ns, ready = max(0, freed - scheduled), max(scheduled, freed)
            if self._paused() and await self._pace():  # queued into a pause: its time moves
                scheduled += self.pauses.paused_ns(scheduled, perf_counter_ns())
                ready = perf_counter_ns()
            late = self.duration_ns is not None and perf_counter_ns() - self.t0 >= self.duration_ns
            if self.sending and not late:  # an arrival still queued at the end is never sent
                await self._request(index, body, ready, scheduled,
                                    queue_ns / 1e6 if self.limited else None)
        finally:
            slots.give()
