"""Capacity search: the largest rate or concurrency at which a benchmark's SLO holds, found with
few trial jobs (grow geometrically from `from` until the SLO breaks, then bisect).

Pure: the caller runs each trial and says how it went (PASS, FAIL or INVALID)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runner.plan.searchplan import GROWTH, Search, worst_case_trials

PASS, FAIL, INVALID = "pass", "fail", "invalid"
Trial = tuple[float, str]  # (searched value, PASS | FAIL | INVALID), in the order run
# Search and worst_case_trials live with the plan (`runner plan` counts trials); shared here.
__all__ = ["FAIL", "INVALID", "PASS", "Search", "Trial", "bracket", "next_point", "run_search",
           "stop_reason", "worst_case_trials"]


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


def run_search(search: Search, trial: Any) -> list[Trial]:
    """Drive a search synchronously with `trial(value) -> outcome`; returns the trials run.
    (The executor drives it asynchronously with next_point; this is its reference.)"""
    trials: list[Trial] = []
    while (value := next_point(search, trials)) is not None:
        trials.append((value, trial(value)))
    return trials
