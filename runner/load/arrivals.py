"""When requests start: open-loop arrival offsets (seeded Poisson, gamma or constant, with an
optional ramp-up of the rate) and the closed loop's ramp-up of its slots. Computed up front
from the job's params alone, so a rerun with the same seed sends on the same schedule."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping
from typing import Any

from runner import defaults


def arrival_offsets(params: Mapping[str, Any]) -> Iterator[float]:
    """Open loop: every arrival's offset (seconds) from the job start, the first at 0.

    `arrival`: `constant` (1/rate apart), `poisson` (exponential gaps of mean 1/rate) or
    `gamma`: gaps drawn from a gamma distribution of shape `burstiness` and mean 1/rate, as
    vLLM's `bench serve --burstiness` defines it (vllm/benchmarks/serve.py, `get_request`:
    `np.random.gamma(shape=burstiness, scale=1 / (rate * burstiness))`); burstiness 1 is
    Poisson, below 1 burstier, above 1 more even (coefficient of variation 1/sqrt(burstiness)).
    With `ramp_up` ({shape, duration_s, start}) each gap is drawn at the instantaneous rate
    `ramp_rate` at the previous arrival, as vLLM draws each gap at its ramped rate (vLLM ramps
    over the request index; runner over time, so a duration job ramps the same way)."""
    rate = float(params["rate"])
    ramp = params.get("ramp_up")
    arrival = params.get("arrival", "poisson")
    if arrival == "constant" and not ramp:
        return (i / rate for i in itertools.count())
    if arrival == "poisson" and not ramp:  # the historical draw: seeded schedules keep theirs
        rng = random.Random(params.get("seed", 0))
        return itertools.accumulate((rng.expovariate(rate) for _ in itertools.count()),
                                    initial=0.0)
    return _drawn(params, rate, ramp, arrival)


def _drawn(params: Mapping[str, Any], rate: float, ramp: Mapping[str, Any] | None,
           arrival: str) -> Iterator[float]:
    rng = random.Random(params.get("seed", 0))
    shape = float(params.get("burstiness", defaults.BURSTINESS)) if arrival == "gamma" else 1.0
    t = 0.0
    while True:
        yield t
        now = ramp_rate(ramp, rate, t) if ramp else rate
        if arrival == "constant":
            t += 1.0 / now
        else:  # gammavariate(alpha, beta): shape alpha, scale beta, mean alpha * beta
            t += rng.gammavariate(shape, 1.0 / (now * shape))


def ramp_start(ramp: Mapping[str, Any], target: float) -> float:
    """The ramp's starting value (rate in req/s, or concurrency): `start`, or a tenth of the
    target (an exponential ramp cannot start at 0)."""
    start = ramp.get("start")
    return float(start) if start is not None else target * defaults.RAMP_START_FRACTION


def ramp_rate(ramp: Mapping[str, Any], target: float, t: float) -> float:
    """The ramp's value at `t` seconds from the window's start, `target` from duration_s on.

    linear: start + (target - start) * t / duration_s; exponential: start * (target / start) **
    (t / duration_s), the curves of vLLM's `--ramp-up-strategy` (serve.py,
    `_get_current_request_rate`), over time instead of the request index."""
    duration = float(ramp["duration_s"])
    if t >= duration:
        return target
    start = min(ramp_start(ramp, target), target)
    progress = t / duration
    if ramp.get("shape", "linear") == "exponential":
        return float(start * (target / start) ** progress)
    return start + (target - start) * progress


def slot_openings(params: Mapping[str, Any]) -> list[float]:
    """Closed loop: when each of the `concurrency` slots opens, in seconds from the window's
    start. Without ramp_up all open at 0; with it, slot k (from 0) opens when the ramp's
    concurrency curve (`ramp_rate` from `start`, default a tenth, at least 1) reaches k + 1, so
    the number of open slots follows the curve rounded down and reaches `concurrency` at
    duration_s."""
    slots = int(params.get("concurrency", 1))
    ramp = params.get("ramp_up")
    if not ramp:
        return [0.0] * slots
    duration = float(ramp["duration_s"])
    start = min(max(1.0, ramp_start(ramp, slots)), float(slots))
    exponential = ramp.get("shape", "linear") == "exponential"
    openings = []
    for k in range(slots):
        need = k + 1
        if need <= start or slots == start:
            openings.append(0.0)
        elif exponential:
            openings.append(duration * math.log(need / start) / math.log(slots / start))
        else:
            openings.append(duration * (need - start) / (slots - start))
    return openings
