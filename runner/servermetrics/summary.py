"""A job's server metrics summarised over its measured window: gauges by mean and max, counters
by delta and rate, and whether the server's generation rate agrees with the client's."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.servermetrics.series import KNOWN

# Server and client output tok/s that differ by more than this share (of the client's) are a
# fact worth a validity reason: runner.run.validity's server_disagreement threshold is this
# value. The generation counter and the client's usage count the same tokens: over a window of
# 10 s and 5 scrapes the scrapes' edges move the server's rate by a few percent. Beyond 20% one
# of the two is not counting what the other counts (a gateway's own tokens, another client on
# the server, a counter of another model).
DISAGREEMENT = 0.20
# ... but only over a window long enough that the scrapes' edges (up to an interval at each
# end) cannot explain it: at least this many seconds and this many scrape intervals.
MIN_WINDOW_S = 10.0
MIN_WINDOW_INTERVALS = 5


@dataclass(frozen=True)
class Point:
    """One successful scrape: `t_s` seconds from the job's start (the request log's zero),
    `values` the known series it held (runner's names, see series.KNOWN)."""

    t_s: float
    values: Mapping[str, float]


def covering(points: Sequence[Point], start_s: float, end_s: float) -> list[Point]:
    """The scrapes from the last one at or before `start_s` to the first one at or after
    `end_s`: the shortest scraped span that holds the whole window (points sorted by time)."""
    if not points:
        return []
    first = max((i for i, p in enumerate(points) if p.t_s <= start_s), default=0)
    last = min((i for i, p in enumerate(points) if p.t_s >= end_s), default=len(points) - 1)
    return list(points[first:last + 1])


def counter_delta(values: Sequence[float]) -> float:
    """How much a counter grew over consecutive readings; a reading below the one before is a
    reset (the server restarted): the counter began again from 0, so that reading is all growth,
    as Prometheus' increase() counts it."""
    total = 0.0
    for before, now in itertools.pairwise(values):
        total += now - before if now >= before else now
    return total


def summarize_series(points: Sequence[Point]) -> dict[str, dict[str, Any]]:
    """Each known series seen in `points`: a gauge's mean and max over them, a counter's delta
    and rate (per second over the points' span; None with fewer than two points)."""
    span = points[-1].t_s - points[0].t_s if points else 0.0
    found: dict[str, dict[str, Any]] = {}
    for name, known in KNOWN.items():
        values = [p.values[name] for p in points if name in p.values]
        if not values:
            continue
        if known.kind == "gauge":
            found[name] = {"kind": "gauge", "unit": known.unit,
                           "mean": _round(sum(values) / len(values)), "max": _round(max(values))}
        else:
            delta = counter_delta(values) if len(values) > 1 else None
            rate = delta / span if delta is not None and span > 0 else None
            found[name] = {"kind": "counter", "unit": known.unit, "delta": _round(delta),
                           "rate_per_s": _round(rate)}
    return found


def summarize(
    points: Sequence[Point], window: tuple[float, float] | None, interval_s: float,
    client_tokens_per_s: float | None,
) -> dict[str, Any]:
    """The job's `server_metrics` figures over its measured `window` (start, end seconds from
    the job's start; None: no measured request, the whole job is used): see
    schemas/result.schema.json, `server_metrics`."""
    points = sorted(points, key=lambda p: p.t_s)
    start, end = window if window else (points[0].t_s, points[-1].t_s) if points else (0, 0)
    span = covering(points, start, end)
    series = summarize_series(span)
    generated = series.get("generation_tokens", {}).get("rate_per_s")
    return {"window_s": _round(span[-1].t_s - span[0].t_s) if span else None,
            "scrapes_in_window": len(span), "series": series,
            "generation_tokens_per_s": generated,
            "client_output_tokens_per_s": _round(client_tokens_per_s),
            "disagreement": disagreement(generated, client_tokens_per_s, end - start,
                                         interval_s)}


def disagreement(
    server: float | None, client: float | None, window_s: float, interval_s: float,
) -> dict[str, Any] | None:
    """The fact that the server's and the client's output tok/s differ by more than
    DISAGREEMENT (a share of the client's), over a window long enough to tell; else None."""
    if server is None or not client:
        return None
    if window_s < max(MIN_WINDOW_S, MIN_WINDOW_INTERVALS * interval_s):
        return None
    share = abs(server - client) / client
    if share <= DISAGREEMENT:
        return None
    return {"server_tokens_per_s": _round(server), "client_tokens_per_s": _round(client),
            "difference": _round(share), "threshold": DISAGREEMENT}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
