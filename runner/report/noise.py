"""Is a change real? Intervals of a statistic's difference between two sets of requests, or
each run's interval across its repetitions (load.repeat)."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

from runner.load.records import RequestRecord

# A 95% interval of the difference new - base, from the jobs' request records.
NOISE_ROUNDS = 1000
NOISE_LEVEL = 0.95
NOISE_MIN_SAMPLES = 10  # per side; fewer and no noise verdict is given
Interval = tuple[float, float]


def request_values(records: Sequence[RequestRecord], field: str) -> list[float]:
    """The values of `field` over the measured ok requests (ITL: every gap, pooled)."""
    measured = [r for r in records if r.ok and not r.warmup]
    if field == "itl_ms":
        return list(chain.from_iterable(r.itl_ms for r in measured))
    return [v for v in (getattr(r, field) for r in measured) if v is not None]


def difference_interval(
    base: Sequence[float], new: Sequence[float], stat: str, seed: str
) -> tuple[float, float] | None:
    """A NOISE_LEVEL interval of stat(new) - stat(base) (`stat`: p50, p95, mean, ...);
    None with too few samples.

    Percentiles: a seeded percentile bootstrap of NOISE_ROUNDS rounds. Means: the normal
    (Welch) interval.
    """
    if min(len(base), len(new)) < NOISE_MIN_SAMPLES:
        return None
    if stat == "mean":
        return _mean_interval(base, new)
    p, rng = float(stat.removeprefix("p")), random.Random(seed)
    old, now = sorted(base), sorted(new)
    diffs = sorted(resampled_percentile(now, p, rng) - resampled_percentile(old, p, rng)
                   for _ in range(NOISE_ROUNDS))
    tail = (1 - NOISE_LEVEL) / 2
    return diffs[int(tail * NOISE_ROUNDS)], diffs[math.ceil((1 - tail) * NOISE_ROUNDS) - 1]


def resampled_percentile(ordered: Sequence[float], p: float, rng: random.Random) -> float:
    """The p-th percentile of one bootstrap resample of the sorted `ordered`, in O(1).

    Drawing n indices uniformly is floor(n * U) for n uniforms U, so the k-th smallest draw is
    floor(n * U_(k)), with U_(k) ~ Beta(k, n + 1 - k); the next order statistic is
    U_(k) + (1 - U_(k)) * Beta(1, n - k). Exact, and it needs no sample cap.
    """
    n = len(ordered)
    rank = (n - 1) * p / 100  # the same linear interpolation as runner.run.metrics
    low = math.floor(rank)
    u = rng.betavariate(low + 1, n - low)
    value = ordered[min(int(n * u), n - 1)]
    if rank == low or low + 1 >= n:
        return value
    v = u + (1 - u) * rng.betavariate(1, n - low - 1)
    return value + (ordered[min(int(n * v), n - 1)] - value) * (rank - low)


def _mean_interval(base: Sequence[float], new: Sequence[float]) -> tuple[float, float]:
    z = statistics.NormalDist().inv_cdf((1 + NOISE_LEVEL) / 2)
    se = math.sqrt(statistics.variance(base) / len(base) + statistics.variance(new) / len(new))
    delta = statistics.fmean(new) - statistics.fmean(base)
    return delta - z * se, delta + z * se


def repetition_intervals(
    base: Mapping[str, Any], new: Mapping[str, Any], root: str, name: str
) -> tuple[Interval, Interval] | None:
    """Both job summaries' intervals of metric `name` (a dotted path such as ttft_ms.p50) in
    their `root` block's repetitions (metrics.repetitions.intervals, runner.run.repeat: a 95%
    Student t interval across repetitions); None unless both jobs repeated and have one."""
    found = []
    for job in (base, new):
        block = job.get(root)
        reps = block.get("repetitions") if isinstance(block, Mapping) else None
        table = reps.get("intervals") if isinstance(reps, Mapping) else None
        pair = table.get(name) if isinstance(table, Mapping) else None
        if not (isinstance(pair, Sequence) and len(pair) == 2 and all(
                isinstance(v, int | float) and math.isfinite(v) for v in pair)):
            return None
        found.append((float(pair[0]), float(pair[1])))
    return found[0], found[1]
