"""The capacity search algorithm against fake trials whose knee is known."""

from __future__ import annotations

import pytest

from runner.run.search import (
    FAIL,
    INVALID,
    PASS,
    Search,
    bracket,
    run_search,
    stop_reason,
    worst_case_trials,
)


def knee_at(knee: float, seen: list[float]):
    def trial(value: float) -> str:
        seen.append(value)
        return PASS if value <= knee else FAIL
    return trial


@pytest.mark.parametrize("knee", [1.0, 3.3, 12.5, 77.0, 150.0, 255.9])
def test_rate_search_finds_the_knee_within_precision_and_never_repeats(knee):
    search = Search("rate", 1, 256, 0.05, 50)
    seen: list[float] = []
    trials = run_search(search, knee_at(knee, seen))
    last_pass, first_fail = bracket(trials)
    assert last_pass is not None and last_pass <= knee < first_fail
    assert first_fail - last_pass <= 0.05 * last_pass
    assert len(seen) == len(set(seen))
    assert len(trials) <= worst_case_trials(search)
    assert stop_reason(search, trials) == "precision"


@pytest.mark.parametrize("knee", [1, 2, 5, 13, 31, 63])
def test_concurrency_search_bisects_on_integers(knee):
    search = Search("concurrency", 1, 64, 0.01, 50)
    seen: list[float] = []
    trials = run_search(search, knee_at(knee, seen))
    assert all(isinstance(v, int) for v in seen)
    assert bracket(trials) == (knee, knee + 1)
    assert len(seen) == len(set(seen))
    assert len(trials) <= worst_case_trials(search)


def test_max_jobs_bounds_the_trials():
    search = Search("rate", 1, 1000, 0.001, 4)
    trials = run_search(search, knee_at(100, []))
    assert len(trials) == 4
    assert stop_reason(search, trials) == "max_jobs"


def test_an_invalid_trial_stops_the_search():
    search = Search("rate", 1, 100, 0.1, 20)
    trials = run_search(search, lambda v: INVALID if v >= 4 else PASS)
    assert [v for v, _ in trials] == [1.0, 2.0, 4.0]
    assert stop_reason(search, trials) == "invalid"


def test_capacity_is_none_when_from_fails():
    search = Search("concurrency", 4, 64, 0.1, 10)
    trials = run_search(search, lambda v: FAIL)
    assert trials == [(4, FAIL)]
    assert bracket(trials) == (None, 4)
    assert stop_reason(search, trials) == "from_failed"


def test_the_bound_is_hit_when_to_passes():
    search = Search("rate", 3, 20, 0.1, 10)
    trials = run_search(search, lambda v: PASS)
    assert [v for v, _ in trials] == [3.0, 6.0, 12.0, 20.0]
    assert stop_reason(search, trials) == "bound"
