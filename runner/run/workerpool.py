"""The driver of a job's worker processes: starts one process per share (multiprocessing's
spawn start method: a fresh interpreter, never a fork of a process running an event loop),
hands each record they stream back to `on_record` as it comes, opens their measured windows
together, relays interrupts, and turns a worker that dies into `worker_lost` records."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from runner.load.loadjob import LoadResult
from runner.load.records import RequestRecord
from runner.run.workerchild import serve
from runner.run.workermerge import NORMAL_ENDS, Lane, lost_records, merge
from runner.run.workers import Share

OPEN_LEAD_S = 0.05  # the window opens this long after the driver says so: every worker hears it
HURRIED_WAIT_S = 15.0  # after a second interrupt, workers still running then are killed
EXIT_WAIT_S = 5.0  # a worker that sent its outcome exits within this, else it is killed


class Pool:
    """One job's workers while they run (see `run_pool`)."""

    def __init__(self, shares: Sequence[Share], on_record: Callable[[RequestRecord], None],
                 before_window: Callable[[], Awaitable[object]] | None) -> None:
        self.shares, self.on_record, self.before_window = shares, on_record, before_window
        self.lanes = [Lane(s.deal, _streams(s)) for s in shares]
        self.records: list[RequestRecord] = []
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        self.ended = [False] * len(shares)
        self.ready: set[int] = set()
        self.all_ended = asyncio.Event()
        self.opening: asyncio.Task[None] | None = None
        self.window_at: float | None = None
        self.first_reason: str | None = None
        # A worker's user error, or on_record's (a full disk): raised once every worker ended.
        self.raised: Exception | None = None
        self.loop = asyncio.get_running_loop()

    def start(self) -> None:
        """Start every worker; SIGINT and SIGTERM are held meanwhile, so that none reaches a
        worker before it ignores them (a child starts with its parent's signal mask)."""
        context = multiprocessing.get_context("spawn")
        parent = os.getpid() if threading.current_thread() is threading.main_thread() else 0
        held = signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGINT, signal.SIGTERM))
        try:
            for number, share in enumerate(self.shares):
                ours, theirs = context.Pipe(duplex=True)
                proc = context.Process(target=serve, args=(theirs, share, parent), daemon=True,
                                       name=f"runner-worker-{number}")
                proc.start()
                theirs.close()
                self.procs.append(proc)
                self.conns.append(ours)
                self.loop.add_reader(ours.fileno(), self._readable, number)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def send(self, message: tuple[Any, ...], number: int | None = None) -> None:
        """`message` to one worker, or to every running one."""
        for n in range(len(self.conns)) if number is None else (number,):
            if not self.ended[n]:
                with contextlib.suppress(OSError):
                    self.conns[n].send(message)

    def _readable(self, number: int) -> None:
        conn = self.conns[number]
        try:
            while not self.ended[number] and conn.poll():
                self._take(number, *conn.recv())
        except (EOFError, OSError):
            self._lose(number, self._death(number))
        except Exception as exc:  # on_record's: the job stops as in one process, then raises
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        """Stop every worker at once (in-flight requests cancelled, as one process does when
        a request crashes the job); `exc` is raised once they all ended."""
        self.raised = self.raised or exc
        self.send(("hurry",))

    def _take(self, number: int, kind: str, payload: Any) -> None:
        lane = self.lanes[number]
        if kind == "records":
            for record in payload:
                lane.received.add(record.index)
                self.records.append(record)
                if self.raised is None:
                    self.on_record(record)
        elif kind == "ready":
            self.ready.add(number)
            self._maybe_open()
        elif kind == "done":
            lane.result = payload
            self._end(number)
            if payload.stopped not in (*NORMAL_ENDS, "interrupted") and not self.first_reason:
                self.first_reason = payload.stopped
                self.send(("give_up", payload.stopped))
        elif kind == "crashed":
            text, error = payload
            if error is not None:
                self._fail(error)
            self._lose(number, f"worker process {number} crashed: {text}")

    def _death(self, number: int) -> str:
        proc = self.procs[number]
        proc.join(EXIT_WAIT_S)
        code = proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        return f"worker process {number} (pid {proc.pid}) was lost ({how}) before this " \
               "request ended"

    def _lose(self, number: int, why: str) -> None:
        if self.ended[number]:
            return
        lane = self.lanes[number]
        lane.lost, lane.lost_at = why, time.time()
        self._end(number)
        self._maybe_open()

    def _end(self, number: int) -> None:
        self.ended[number] = True
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(self.conns[number].fileno())
        if all(self.ended):
            self.all_ended.set()

    def _maybe_open(self) -> None:
        """Once every running worker's warm-ups ended: the driver's `before_window` (a scrape
        of the server's counters, only after warm-ups), then open every window together."""
        waiting = [n for n in range(len(self.lanes)) if not self.ended[n]]
        if self.opening is None and waiting and all(n in self.ready for n in waiting):
            self.opening = asyncio.create_task(self._open())

    async def _open(self) -> None:
        if self.before_window is not None and self.shares[0].deal.warmup:
            try:
                await self.before_window()
            except Exception as exc:  # raised once the workers stopped, as run_load raises it
                self._fail(exc)
                return
        self.window_at = time.time() + OPEN_LEAD_S
        self.send(("open", self.window_at))

    async def until_ended(self, hurry: asyncio.Event | None) -> None:
        """Until every worker ended; after a second interrupt (`hurry`), those still running
        HURRIED_WAIT_S later are killed (and lost): an interrupted run never hangs."""
        ended = asyncio.ensure_future(self.all_ended.wait())
        hurried = asyncio.ensure_future(hurry.wait() if hurry else asyncio.Event().wait())
        try:
            await asyncio.wait({ended, hurried}, return_when=asyncio.FIRST_COMPLETED)
            if not ended.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(ended), HURRIED_WAIT_S)
        finally:
            ended.cancel()
            hurried.cancel()
        for number in range(len(self.shares)):
            if not self.ended[number]:
                self._kill(number)
                self._lose(number, f"worker {number} killed: still running "
                                   f"{HURRIED_WAIT_S:g} s after the second interrupt")

    def _kill(self, number: int) -> None:
        self.procs[number].kill()

    def close(self) -> None:
        """Every worker process gone (killed if it lingers, or at once if the driver itself
        stopped before it ended: an exception here), every pipe closed."""
        for number, proc in enumerate(self.procs):
            if not self.ended[number]:
                proc.kill()
                self._end(number)
            proc.join(EXIT_WAIT_S)
            if proc.is_alive():
                proc.kill()
                proc.join(EXIT_WAIT_S)
            self.conns[number].close()
        if self.opening is not None:
            self.opening.cancel()


async def run_pool(shares: Sequence[Share], total: int | None,
                   on_record: Callable[[RequestRecord], None], stop: asyncio.Event | None,
                   hurry: asyncio.Event | None,
                   before_window: Callable[[], Awaitable[object]] | None = None) -> LoadResult:
    """Run `shares` in one worker process each; every record goes to `on_record` as it comes
    (a lost worker's, see workermerge.lost_records, at the end); returns the job's merged result
    (workermerge.merge). `stop` and `hurry` (first and second interrupt) are relayed to every
    worker; `before_window` is awaited once all warm-ups ended, before the windows open.
    A worker stopped by the user's error (a template failing for one request), or `on_record`
    raising (a full disk), stops the others at once, and the error is raised here once they all
    ended, as run_load raises it.
    `total`: the job's request count with warm-ups (None: it has none, e.g. duration_s)."""
    return await drive(Pool(shares, on_record, before_window), total, stop, hurry)


async def drive(pool: Pool, total: int | None, stop: asyncio.Event | None,
                hurry: asyncio.Event | None) -> LoadResult:
    """Start `pool`'s workers, relay `stop` and `hurry` to them, wait until every one ended,
    record a lost worker's requests, and merge their outcomes (see `run_pool`); any kind of
    worker (a process, a Ray actor) whose pool subclasses `Pool`."""
    relays = [asyncio.create_task(_relay(event, pool, (name,)))
              for name, event in (("stop", stop), ("hurry", hurry)) if event is not None]
    try:
        pool.start()
        await pool.until_ended(hurry)
    finally:
        for relay in relays:
            relay.cancel()
        pool.close()
    if pool.raised is not None:
        raise pool.raised
    interrupted = stop is not None and stop.is_set()
    _record_lost(pool, total, not interrupted and pool.first_reason is None)
    return merge(pool.lanes, pool.records, interrupted, pool.first_reason)


def _record_lost(pool: Pool, total: int | None, whole: bool) -> None:
    """Each lost worker's unfinished requests as records (workermerge.lost_records)."""
    for lane in pool.lanes:
        if lane.lost is not None:
            for record in lost_records(lane, total, whole, pool.window_at):
                pool.records.append(record)
                pool.on_record(record)


async def _relay(event: asyncio.Event, pool: Pool, message: tuple[Any, ...]) -> None:
    await event.wait()
    pool.send(message)


def _streams(share: Share) -> int:
    params = share.params
    key = "max_concurrency" if share.deal.arrivals is not None else "concurrency"
    return int(params.get(key) or 1)
