"""An open loop's `max_concurrency` slots: first come, first served, and each waiter learns
when its slot was freed, so a request's wait for a slot (the queue the plan caused) is told
apart from the load generator's own lateness in sending it (see schedule.Schedule._arrival)."""

from __future__ import annotations

import asyncio
import collections
from time import perf_counter_ns


class Slots:
    """`size` slots. `take()` returns when the caller got one: the `perf_counter_ns` time it
    was freed for the caller, or None when one was free at the call (no wait). `give()` hands
    the slot to the longest waiter, stamped with the time of the hand-over, or makes it free.

    Unlike asyncio.Semaphore, the hand-over time is kept: a waiter resumes only when the event
    loop gets to it, and that delay is the client's (send lag), not the queue's."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"slots must be at least 1, not {size}")
        self.free = size
        self.waiters: collections.deque[asyncio.Future[int]] = collections.deque()

    async def take(self) -> int | None:
        """Wait for a slot; return when it was freed for this caller (perf_counter_ns), None
        when one was free at once. A caller cancelled while waiting takes nothing; one
        cancelled as the slot reached it hands the slot on."""
        if self.free and not self.waiters:
            self.free -= 1
            return None
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # the slot had been handed to this caller: pass it on
            elif waiter in self.waiters:  # give() may have dropped it already
                self.waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Free a slot: the longest waiter gets it at once, stamped with the current time."""
        now = perf_counter_ns()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(now)
                return
        self.free += 1
