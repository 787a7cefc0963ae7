"""An open loop's max_concurrency slots: first come first served, hand-over times kept."""

from __future__ import annotations

import asyncio
from time import perf_counter_ns

import pytest

from runner.load.slots import Slots


def test_a_free_slot_is_taken_without_a_wait_then_waiters_get_slots_in_order() -> None:
    async def main() -> tuple[list[int | None], list[str], int, int]:
        slots, order = Slots(1), []
        first = await slots.take()

        async def waiter(name: str) -> int | None:
            freed = await slots.take()
            order.append(name)
            return freed

        tasks = [asyncio.create_task(waiter(n)) for n in "ab"]
        await asyncio.sleep(0.05)  # both wait: the slot is held
        before = perf_counter_ns()
        slots.give()
        after = perf_counter_ns()
        got = await tasks[0]
        slots.give()
        await tasks[1]
        return [first, got], order, before, after

    (first, got), order, before, after = asyncio.run(main())
    assert first is None  # free at once: no wait
    assert order == ["a", "b"]
    assert got is not None and before <= got <= after  # stamped at the hand-over


def test_a_waiter_cancelled_before_its_turn_takes_nothing() -> None:
    async def main() -> int:
        slots = Slots(1)
        await slots.take()
        gone = asyncio.create_task(slots.take())
        stays = asyncio.create_task(slots.take())
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        slots.give()
        await asyncio.wait_for(stays, 5)
        return slots.free

    assert asyncio.run(main()) == 0


def test_a_waiter_cancelled_as_the_slot_reached_it_hands_it_on() -> None:
    async def main() -> int:
        slots = Slots(1)
        await slots.take()
        first = asyncio.create_task(slots.take())
        second = asyncio.create_task(slots.take())
        await asyncio.sleep(0)
        slots.give()  # handed to `first`, which is cancelled before it resumes
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.wait_for(second, 5)  # it got the slot `first` never used
        slots.give()
        return slots.free

    assert asyncio.run(main()) == 1


def test_slots_need_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)
