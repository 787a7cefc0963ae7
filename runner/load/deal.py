"""A job's load dealt out to worker processes (issue 15 §1): which request indices each worker
sends, its open-loop arrivals and closed-loop stream openings, all taken from the one schedule
computed from the job's params, so that the workers together send exactly the plan's requests.

Indices are dealt in turn: warm-up `i` goes to lane `i % lanes`, measured request `warmup + j`
to lane `j % lanes`. Each lane keeps the job's own indices, so every request body, prompt and
record index is the one a single process would have used."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.load.arrivals import arrival_offsets, slot_openings


@dataclass(frozen=True)
class Deal:
    """One lane's part of a job's load: `lane` of `lanes` (from 0), the job's warm-up count
    (priming included), its closed-loop stream openings (seconds from the window's start) or
    its open-loop arrivals ((index, offset_s) pairs, in order)."""

    lane: int
    lanes: int
    warmup: int
    openings: tuple[float, ...] = ()
    arrivals: tuple[tuple[int, float], ...] | None = None

    def mine(self, index: int) -> bool:
        """Whether request `index` of the job is this lane's."""
        position = index if index < self.warmup else index - self.warmup
        return position % self.lanes == self.lane

    def indices(self, total: int | None) -> Iterator[int]:
        """This lane's request indices, warm-ups first, up to `total` (None: without end)."""
        if self.arrivals is not None:
            warm = range(self.lane, self.warmup, self.lanes)
            yield from itertools.chain(warm, (index for index, _ in self.arrivals))
            return
        ends = itertools.count() if total is None else range(total)
        yield from (index for index in ends if self.mine(index))


def deal_load(params: Mapping[str, Any], lanes: int, warmup: int,
              replay: Sequence[float] | None = None) -> list[Deal]:
    """The job's load dealt over `lanes` lanes.

    Closed loop: stream k (from slot_openings, ramp-up included) goes to lane k % lanes.
    Open loop: the arrival offsets (`replay`'s trace offsets, else arrival_offsets of the
    params) up to `requests` or, without it, those before duration_s; arrival j goes to lane
    j % lanes. Raises ValueError for an open loop with neither requests nor duration_s (its
    schedule has no end to deal out)."""
    if replay is None and params.get("rate") is None:
        openings = slot_openings(params)
        return [Deal(lane, lanes, warmup, tuple(openings[lane::lanes]))
                for lane in range(lanes)]
    planned = _planned_arrivals(params, replay)
    return [Deal(lane, lanes, warmup, (),
                 tuple((warmup + j, planned[j]) for j in range(lane, len(planned), lanes)))
            for lane in range(lanes)]


def _planned_arrivals(params: Mapping[str, Any], replay: Sequence[float] | None) -> list[float]:
    """Every measured arrival's offset of an open loop, in order."""
    offsets: Iterable[float] = replay if replay is not None else arrival_offsets(params)
    requests, duration = params.get("requests"), params.get("duration_s")
    if requests is not None:
        offsets = itertools.islice(offsets, int(requests))
    elif duration is not None:
        offsets = itertools.takewhile(lambda t: t < float(duration), offsets)
    elif replay is None:
        raise ValueError("an open loop without requests or duration_s cannot be dealt out")
    if duration is not None:
        offsets = itertools.takewhile(lambda t: t < float(duration), offsets)
    return list(offsets)
