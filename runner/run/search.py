"""Capacity search: the largest rate or concurrency at which a benchmark's SLO holds, found with
few trial jobs (grow geometrically from `from` until the SLO breaks, then bisect).

Pure: the caller runs each trial and says how it went (PASS, FAIL or INVALID)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PASS, FAIL, INVALID = "pass", "fail", "invalid"
UNITS = {"rate": "req/s", "concurrency": "streams"}
GROWTH = 2  # each growth trial doubles the last passing point, capped at `to`


@dataclass(frozen=True)
class Search:
    """`load.search` of a plan: over `rate` (req/s, open loop) or `concurrency` (streams,
    closed loop, integers), from `start` to `stop`; `precision` is relative: bisection ends
    when first fail - last pass <= precision x last pass (and, for concurrency, when they are
    neighbours); at most `max_jobs` trials."""

    over: str
    start: float
    stop: float
    precision: float
    max_jobs: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Search:
        """From the plan's (schema-checked) mapping {over, from, to, precision, max_jobs}."""
        return cls(data["over"], data["from"], data["to"], data["precision"], data["max_jobs"])

    @property
    def unit(self) -> str:
        return UNITS[self.over]

    def point(self, value: float) -> float | int:
        """`value` as the searched parameter takes it: an int for concurrency, else a float
        rounded to 6 significant digits (so a job id stays readable)."""
        if self.over == "concurrency":
            return int(value)
        return float(f"{value:.6g}")


Trial = tuple[float, str]  # (searched value, PASS | FAIL | INVALID), in the order run


def bracket(trials: Sequence[Trial]) -> tuple[float | None, float | None]:
    """(largest passing value, smallest failing value above it); None where there is none."""
    passed = [v for v, outcome in trials if outcome == PASS]
    last_pass = max(passed) if passed else None
    failed = [v for v, outcome in trials
              if outcome == FAIL and (last_pass is None or v > last_pass)]
    return last_pass, (min(failed) if failed else None)


def next_point(search: Search, trials: Sequence[Trial]) -> float | int | None:
    """The next value to try, or None when the search is over (see `stop_reason`)."""
    return _next(search, trials)[0]


def stop_reason(search: Search, trials: Sequence[Trial]) -> str | None:
    """Why the search ends now: `invalid` (a trial was invalid, it cannot decide),
    `from_failed` (the first point broke the SLO), `bound` (`to` passed), `precision`,
    `max_jobs`; None while it goes on."""
    return _next(search, trials)[1]


def _next(search: Search, trials: Sequence[Trial]) -> tuple[float | int | None, str | None]:
    if any(outcome == INVALID for _, outcome in trials):
        return None, "invalid"
    if not trials:
        return search.point(search.start), None
    last_pass, first_fail = bracket(trials)
    if last_pass is None:
        return None, "from_failed"
    if first_fail is None and last_pass >= search.stop:
        return None, "bound"
    if len(trials) >= search.max_jobs:
        return None, "max_jobs"
    if first_fail is None:
        value = search.point(min(last_pass * GROWTH, search.stop))
    elif first_fail - last_pass <= search.precision * last_pass:
        return None, "precision"
    else:
        value = search.point((last_pass + first_fail) / 2)
    if value <= last_pass or value in {v for v, _ in trials}:
        return None, "precision"  # integers: last pass and first fail are neighbours
    return value, None


def worst_case_trials(search: Search) -> int:
    """The most trials a search can run: growth steps to `to`, then bisection of the widest
    bracket (last pass, 2 x last pass) down to the precision; capped by max_jobs."""
    growth = 1 + max(0, math.ceil(math.log2(search.stop / search.start)))
    halvings = max(1, math.ceil(math.log2(1 / search.precision)))
    if search.over == "concurrency":
        halvings = min(halvings, max(1, math.ceil(math.log2(max(search.stop / 2, 1)))))
    return min(search.max_jobs, growth + halvings)


def run_search(search: Search, trial: Any) -> list[Trial]:
    """Drive a search synchronously with `trial(value) -> outcome`; returns the trials run.
    (The executor drives it asynchronously with next_point; this is its reference.)"""
    trials: list[Trial] = []
    while (value := next_point(search, trials)) is not None:
        trials.append((value, trial(value)))
    return trials
