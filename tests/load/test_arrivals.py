"""Arrival shapes (issue 13 §4): gamma gaps with vLLM's burstiness, ramp-up of the rate and of
closed-loop slots. Offsets are computed without a server; the checks compare the drawn
distribution with the requested one, with tolerances from the sample size (5 standard errors:
a seeded draw fails them only if the shape is wrong)."""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from typing import Any

import pytest

from runner.load.arrivals import arrival_offsets, ramp_rate, slot_openings

N = 20_000


def offsets(n: int, **params: Any) -> list[float]:
    return list(itertools.islice(arrival_offsets({"seed": 7, **params}), n))


def gaps(n: int, **params: Any) -> list[float]:
    times = offsets(n + 1, **params)
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_gaps_have_mean_one_over_rate_and_cv_one_over_sqrt_burstiness(
        burstiness: float) -> None:
    """vLLM (benchmarks/serve.py get_request): gamma(shape=burstiness, scale=1/(rate*b))."""
    rate = 8.0
    drawn = gaps(N, rate=rate, arrival="gamma", burstiness=burstiness)
    cv = 1 / math.sqrt(burstiness)
    mean = statistics.fmean(drawn)
    # The sample mean's relative standard error is cv / sqrt(n).
    assert abs(mean * rate - 1) < 5 * cv / math.sqrt(N)
    # The sample SD's relative standard error is sqrt((kurtosis - 1) / (4 n)); gamma's
    # kurtosis is 3 + 6 / shape. The CV's error adds the mean's.
    kurtosis = 3 + 6 / burstiness
    tolerance = 5 * (math.sqrt((kurtosis - 1) / (4 * N)) + cv / math.sqrt(N))
    assert abs(statistics.stdev(drawn) / mean / cv - 1) < tolerance


def test_burstiness_changes_the_shape_not_the_rate() -> None:
    bursty = gaps(N, rate=5, arrival="gamma", burstiness=0.25)
    even = gaps(N, rate=5, arrival="gamma", burstiness=16)
    assert statistics.stdev(bursty) > 6 * statistics.stdev(even)
    assert statistics.fmean(bursty) == pytest.approx(statistics.fmean(even), rel=0.05)


def test_schedules_are_seeded_and_poisson_keeps_its_historical_draw() -> None:
    gamma = {"rate": 3, "arrival": "gamma", "burstiness": 0.5}
    assert offsets(50, **gamma) == offsets(50, **gamma)
    assert offsets(50, **gamma) != offsets(50, **gamma, seed=8)
    # Without gamma or a ramp, the Poisson schedule is the one runner always drew.
    import random
    rng = random.Random(7)
    expected = list(itertools.accumulate((rng.expovariate(3) for _ in range(49)), initial=0.0))
    assert offsets(50, rate=3) == expected


def _band_counts(times: list[float], bands: int) -> list[int]:
    return [bisect.bisect_left(times, b + 1) - bisect.bisect_left(times, b)
            for b in range(bands)]


@pytest.mark.parametrize("shape", ["linear", "exponential"])
def test_a_ramp_follows_its_curve_second_by_second(shape: str) -> None:
    """Arrivals per 1-s band against the integral of the requested rate over the band (a
    Poisson count: its SD is the square root of its mean)."""
    ramp = {"shape": shape, "duration_s": 10, "start": 20}
    times = offsets(4000, rate=200, ramp_up=ramp)
    counts = _band_counts(times, 14)
    for band, count in enumerate(counts):
        steps = 100  # the integral of ramp_rate over the band, by the midpoint rule
        expected = sum(ramp_rate(ramp, 200, band + (i + 0.5) / steps) for i in range(steps))
        expected /= steps
        assert abs(count - expected) < 5 * math.sqrt(expected) + 2, (band, count, expected)
    assert counts[0] < 60 and counts[12] > 150  # it does ramp: 20-ish/s first, 200/s after


def test_ramp_curves_match_vllm_at_their_ends_and_middle() -> None:
    linear = {"shape": "linear", "duration_s": 10, "start": 10}
    exponential = {"shape": "exponential", "duration_s": 10, "start": 10}
    assert ramp_rate(linear, 100, 0) == 10 and ramp_rate(linear, 100, 5) == 55
    assert ramp_rate(exponential, 1000, 5) == pytest.approx(100)  # 10 * 100 ** 0.5
    assert ramp_rate(linear, 100, 10) == 100 == ramp_rate(exponential, 100, 99)
    assert ramp_rate({"duration_s": 4}, 50, 0) == 5  # no start: a tenth of the target


def test_closed_loop_slots_open_as_the_curve_passes_each_count() -> None:
    linear = {"concurrency": 8, "ramp_up": {"duration_s": 7, "start": 1}}
    assert slot_openings(linear) == pytest.approx([0, 1, 2, 3, 4, 5, 6, 7])
    exponential = {"concurrency": 8, "ramp_up": {"shape": "exponential", "duration_s": 3,
                                                 "start": 1}}
    assert slot_openings(exponential) == pytest.approx([math.log2(k) for k in range(1, 9)])
    assert slot_openings({"concurrency": 3}) == [0.0, 0.0, 0.0]
    # start defaults to a tenth of the target, at least one slot
    assert slot_openings({"concurrency": 2, "ramp_up": {"duration_s": 1}}) == [0.0, 1.0]
