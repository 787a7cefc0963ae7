"""A job's shares sent by Ray actors across a cluster (`runner apply --executor ray`, issue 15
§2): the same worker as a process runs (workers.run_share), in an actor instead, with the same
driver (workerpool.Pool: records handed on as they come, windows opened together, interrupts
relayed, a lost actor's requests recorded as `worker_lost`).

An actor keeps what its share emits in an outbox; the driver takes it with one call at a time
(`take` waits up to TAKE_WAIT_S for something to take), so records flow back while the share
runs without the actor knowing its driver. Messages to an actor (`tell`) are the ones a worker
process reads from its pipe. Imported only when the executor is Ray (it imports `ray`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError

from runner.load.loadjob import LoadResult
from runner.load.records import RequestRecord
from runner.run.raycluster import first_line
from runner.run.workerpool import Pool, drive
from runner.run.workers import Control, Share, run_share

TAKE_WAIT_S = 0.2  # an actor answers `take` at once when it has messages, else after this
PLACE_WAIT_S = 120.0  # an actor not running its share by then is lost (no node could take it)
WORKER_CPUS = 1.0  # Ray CPUs each actor asks for: one event loop keeps one core busy


class ShareActor:
    """Runs one share in its actor's event loop (Ray runs an actor with async methods as an
    asyncio actor: `run`, `take` and `tell` interleave on one loop)."""

    def __init__(self) -> None:
        self.outbox: list[tuple[str, Any]] = []
        self.news = asyncio.Event()
        self.control = Control()

    async def run(self, share: Share) -> None:
        """Send `share`; what it emits waits in the outbox for `take`."""
        await run_share(share, self._emit, self.control)

    def _emit(self, kind: str, payload: Any) -> None:
        self.outbox.append((kind, payload))
        self.news.set()

    async def take(self, wait_s: float) -> list[tuple[str, Any]]:
        """Every message emitted since the last take, waiting up to `wait_s` for the first."""
        if not self.outbox:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.news.wait(), wait_s)
        taken, self.outbox = self.outbox, []
        self.news.clear()
        return taken

    async def tell(self, message: tuple[Any, ...]) -> None:
        """A message from the driver (workers.Control.obey)."""
        self.control.obey(message)


class RayPool(Pool):
    """One job's Ray actors while they run: one per share, spread over the cluster's nodes."""

    def __init__(self, shares: Sequence[Share], on_record: Callable[[RequestRecord], None],
                 before_window: Callable[[], Awaitable[object]] | None) -> None:
        super().__init__(shares, on_record, before_window)
        self.actors: list[Any] = []
        self.runs: list[Any] = []
        self.pumps: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for number, share in enumerate(self.shares):
            actor = _actor_class().options(scheduling_strategy="SPREAD").remote()
            self.actors.append(actor)
            self.runs.append(actor.run.remote(share))
            self.pumps.append(asyncio.create_task(self._pump(number)))

    async def _pump(self, number: int) -> None:
        """Hand on what actor `number` emits until it ended or was lost."""
        actor, first = self.actors[number], True
        try:
            while not self.ended[number]:
                wait = PLACE_WAIT_S if first else PLACE_WAIT_S / 4
                messages = await asyncio.wait_for(actor.take.remote(TAKE_WAIT_S), wait)
                first = False
                self._take_all(number, messages)
        except (TimeoutError, GetTimeoutError):
            self._lose(number, f"Ray actor {number} did not answer within "
                               f"{PLACE_WAIT_S if first else PLACE_WAIT_S / 4:g} s (no node "
                               f"had {WORKER_CPUS:g} CPU free for it, or it hung) before this "
                               "request ended")
        except RayError as exc:
            self._lose(number, f"Ray actor {number} was lost ({type(exc).__name__}: "
                               f"{first_line(exc)}) before this request ended")

    def _take_all(self, number: int, messages: list[tuple[str, Any]]) -> None:
        try:
            for kind, payload in messages:
                if not self.ended[number]:
                    self._take(number, kind, payload)
        except Exception as exc:  # on_record's (a full disk): the job stops, then raises
            self._fail(exc)

    def send(self, message: tuple[Any, ...], number: int | None = None) -> None:
        for n in range(len(self.actors)) if number is None else (number,):
            if not self.ended[n]:
                self.actors[n].tell.remote(message)

    def _kill(self, number: int) -> None:
        ray.kill(self.actors[number], no_restart=True)

    def close(self) -> None:
        """Every actor ended (killed: it holds a CPU of the cluster), every pump stopped."""
        for number in range(len(self.shares)):
            self._end(number)
        for pump in self.pumps:
            pump.cancel()
        for actor in self.actors:
            with contextlib.suppress(RayError):
                ray.kill(actor, no_restart=True)
        if self.opening is not None:
            self.opening.cancel()

    def _end(self, number: int) -> None:
        self.ended[number] = True
        if all(self.ended):
            self.all_ended.set()


async def run_ray_pool(shares: Sequence[Share], total: int | None,
                       on_record: Callable[[RequestRecord], None], stop: asyncio.Event | None,
                       hurry: asyncio.Event | None,
                       before_window: Callable[[], Awaitable[object]] | None = None
                       ) -> LoadResult:
    """workerpool.run_pool with one Ray actor per share instead of one process (same
    arguments and result). The driver must be connected (raycluster.connect)."""
    return await drive(RayPool(shares, on_record, before_window), total, stop, hurry)


@cache
def _actor_class() -> Any:
    """ShareActor as a Ray actor class (made once: Ray exports a class's definition per
    ray.remote call)."""
    return ray.remote(num_cpus=WORKER_CPUS, max_restarts=0)(ShareActor)
