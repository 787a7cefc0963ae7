"""The summary math: the span that covers the measured window, gauges, counters with resets,
and the server/client disagreement fact."""

from __future__ import annotations

import pytest

from runner.servermetrics.summary import (
    DISAGREEMENT,
    Point,
    counter_delta,
    covering,
    disagreement,
    summarize,
)


@pytest.mark.parametrize(("values", "delta"), [
    ([], 0), ([5], 0), ([5, 5], 0), ([0, 3, 10], 10),
    ([100, 120, 5, 15], 20 + 5 + 10),  # a restart at the third reading: 5 new tokens, then 10
    ([100, 0, 0, 7], 7),
])
def test_counter_delta_counts_resets_as_growth_from_zero(values: list[float], delta: float) -> None:
    assert counter_delta(values) == delta


POINTS = [Point(t, {"generation_tokens": 10.0 * t, "requests_waiting": t % 3})
          for t in (-0.1, 1.0, 2.0, 3.0, 4.0, 5.0)]


@pytest.mark.parametrize(("window", "times"), [
    ((0.0, 5.0), [-0.1, 1.0, 2.0, 3.0, 4.0, 5.0]),
    ((1.5, 3.2), [1.0, 2.0, 3.0, 4.0]),
    ((2.0, 3.0), [2.0, 3.0]),  # a scrape on the edge is the edge
    ((4.5, 9.0), [4.0, 5.0]),  # no scrape after the end: up to the last one
    ((-5.0, 0.5), [-0.1, 1.0]),
])
def test_covering_is_the_shortest_scraped_span_holding_the_window(
    window: tuple[float, float], times: list[float],
) -> None:
    assert [p.t_s for p in covering(POINTS, *window)] == times


def test_gauges_by_mean_and_max_counters_by_delta_and_rate() -> None:
    summary = summarize(POINTS, (1.5, 3.2), interval_s=1.0, client_tokens_per_s=10.0)
    assert summary["window_s"] == 3.0
    assert summary["scrapes_in_window"] == 4
    assert summary["series"] == {
        "requests_waiting": {"kind": "gauge", "unit": "requests", "mean": 1.0, "max": 2.0},
        "generation_tokens": {"kind": "counter", "unit": "tokens", "delta": 30.0,
                              "rate_per_s": 10.0}}
    assert summary["generation_tokens_per_s"] == 10.0
    assert summary["disagreement"] is None


def test_one_scrape_gives_gauges_but_no_counter_delta() -> None:
    summary = summarize([Point(0.0, {"generation_tokens": 7.0, "kv_cache_usage": 0.25})],
                        (0.0, 1.0), 1.0, None)
    assert summary["series"]["generation_tokens"] == {"kind": "counter", "unit": "tokens",
                                                      "delta": None, "rate_per_s": None}
    assert summary["series"]["kv_cache_usage"]["max"] == 0.25


@pytest.mark.parametrize(("server", "client", "window_s", "interval_s", "flagged"), [
    (100.0, 100.0, 60, 1, False),
    (100.0 * (1 + DISAGREEMENT), 100.0, 60, 1, False),  # at the threshold: not beyond it
    (130.0, 100.0, 60, 1, True),
    (70.0, 100.0, 60, 1, True),
    (130.0, 100.0, 9.9, 1, False),  # too short to tell: the scrapes' edges could explain it
    (130.0, 100.0, 30, 10, False),  # fewer than 5 intervals
    (130.0, 100.0, 50, 10, True),
    (None, 100.0, 60, 1, False),
    (130.0, None, 60, 1, False),
    (130.0, 0.0, 60, 1, False),
])
def test_disagreement_is_a_fact_only_beyond_the_threshold_over_a_long_window(
    server: float | None, client: float | None, window_s: float, interval_s: float,
    flagged: bool,
) -> None:
    fact = disagreement(server, client, window_s, interval_s)
    assert (fact is not None) == flagged
    if fact is not None:
        assert fact["threshold"] == DISAGREEMENT
        assert fact["difference"] == pytest.approx(abs(server - client) / client)  # type: ignore[operator]
