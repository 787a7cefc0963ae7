"""The report's capacity curve per search: the binding SLO metric of each trial against the
searched parameter, the SLO limit as a dashed line, and the knee (the capacity) marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from runner.report.svgchart import Series, line_chart
from runner.run.capacity import LOAD_BOUNDS


def capacity_charts(records: Any, benchmark: str) -> tuple[Markup, ...]:
    """One chart per capacity record of `benchmark` in a manifest's `capacity` list."""
    found = [r for r in (records if isinstance(records, list) else [])
             if isinstance(r, Mapping) and r.get("benchmark") == benchmark]
    return tuple(Markup(capacity_chart(r)) for r in found)


def capacity_chart(record: Mapping[str, Any]) -> str:
    """The SVG of one search (see the module docstring); y is the metric that bound it, or the
    first SLO check when none did."""
    trials = sorted((t for t in record.get("trials") or [] if isinstance(t, Mapping)),
                    key=lambda t: t["value"])
    points = tuple((float(t["value"]), _number(t.get("metric"))) for t in trials)
    bound = record.get("bound_by") or {}
    if bound.get("metric") in LOAD_BOUNDS:  # no SLO line: the trials show the first check
        bound = {}
    metric = " ".join(str(bound[k]) for k in ("metric", "stat") if bound.get(k)) or "SLO metric"
    series = [Series(f"trials: {metric}", points, color=0)]
    limit = _number(bound.get("limit"))
    if limit is not None and points:
        span = (points[0][0], points[-1][0])
        series.append(Series(f"SLO limit {limit:g}", tuple((x, limit) for x in span),
                             color=2, dashed=True))
    capacity = _number(record.get("capacity"))
    knee = next((y for x, y in points if x == capacity), None)
    if capacity is not None:
        series.append(Series(f"knee: {capacity:g} {record.get('unit', '')}",
                             ((capacity, knee),), color=4))
    shown = "none" if capacity is None else f"{capacity:g} {record.get('unit', '')}"
    return line_chart(series, title=f"Capacity {record.get('model')}: {shown}",
                      x_label=f"{record.get('over')} ({record.get('unit')})", y_label=metric)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


__all__: Sequence[str] = ("capacity_chart", "capacity_charts")
