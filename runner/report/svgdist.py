"""Inline SVG distribution charts for reports: a histogram with its CDF, in pure Python."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from html import escape
from itertools import pairwise

from runner.report.svgchart import (
    LEFT,
    PLOT_H,
    RIGHT,
    TOP,
    WIDTH,
    Scale,
    empty_chart,
    linear_ticks,
    log_ticks,
    svg_open,
    value_scale,
    x_axis,
    y_axis,
)

CDF_POINTS = 160  # the CDF line is drawn through at most this many points
HIST_LOG_RATIO = 20.0
BOTTOM = 44


def histogram(
    values: Sequence[float],
    *,
    title: str,
    x_label: str,
    bins: int = 30,
    marks: Sequence[tuple[str, float]] = (),
) -> str:
    """Bars of counts per bin, the CDF as a line (right axis, %), and labelled marks (p50...)."""
    if not values:
        return empty_chart(title)
    ordered = sorted(values)
    xs, x_ticks = _bin_scale(ordered[0], ordered[-1])
    edges = _edges(xs, min(bins, max(5, math.ceil(math.sqrt(len(ordered))) * 2)))
    counts = _counts(ordered, edges)
    ys, y_ticks = value_scale([0.0, float(max(counts))], TOP + PLOT_H, TOP)
    parts = svg_open(TOP + PLOT_H + BOTTOM, title, f"{title}: histogram and CDF")
    parts += y_axis(ys, y_ticks, "requests")
    parts += x_axis(xs, x_ticks, x_label)
    parts += _bars(edges, counts, xs, ys)
    parts += _cdf(ordered, xs)
    parts += _marks(marks, xs)
    return "".join([*parts, "</svg>"])


def _bin_scale(lo: float, hi: float) -> tuple[Scale, list[float]]:
    if lo > 0 and hi / lo >= HIST_LOG_RATIO:
        scale = Scale(lo, hi, LEFT, WIDTH - RIGHT - 30, log=True)
        return scale, log_ticks(lo, hi)
    if hi == lo:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    return Scale(lo, hi, LEFT, WIDTH - RIGHT - 30), linear_ticks(lo, hi, 5)


def _edges(scale: Scale, count: int) -> list[float]:
    if scale.log:
        ratio = (scale.hi / scale.lo) ** (1 / count)
        return [scale.lo * ratio**i for i in range(count)] + [scale.hi]
    step = (scale.hi - scale.lo) / count
    return [scale.lo + step * i for i in range(count)] + [scale.hi]


def _counts(ordered: Sequence[float], edges: Sequence[float]) -> list[int]:
    # The last bin is closed on the right, so the maximum value is counted.
    cuts = [bisect_right(ordered, e) for e in edges[1:-1]] + [len(ordered)]
    return [b - a for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]


def _bars(edges: Sequence[float], counts: Sequence[int], xs: Scale, ys: Scale) -> list[str]:
    parts = []
    for (left, right), count in zip(pairwise(edges), counts, strict=True):
        if count:
            x, top = xs(left), ys(count)
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{top:.1f}" '
                         f'width="{max(xs(right) - x - 1, 1):.1f}" '
                         f'height="{ys.px_lo - top:.1f}"><title>{count} in '
                         f'{left:.4g}–{right:.4g}</title></rect>')
    return parts


def _cdf(ordered: Sequence[float], xs: Scale) -> list[str]:
    n = len(ordered)
    share = Scale(0.0, 1.0, TOP + PLOT_H, TOP)
    picks = sorted({round(i * (n - 1) / (CDF_POINTS - 1)) for i in range(CDF_POINTS)})
    path = " ".join(f"{xs(ordered[i]):.1f},{share((i + 1) / n):.1f}" for i in picks)
    right = WIDTH - RIGHT - 30
    ticks = "".join(f'<text class="tick cdf" x="{right + 4}" y="{share(t) + 3.5:.1f}">'
                    f"{t * 100:.0f}%</text>" for t in (0.0, 0.5, 1.0))
    return [f'<polyline class="cdf" points="{path}"/>', ticks,
            f'<line class="axis" x1="{right}" x2="{right}" y1="{TOP}" y2="{TOP + PLOT_H}"/>']


def _marks(marks: Sequence[tuple[str, float]], xs: Scale) -> list[str]:
    parts = []
    for i, (name, value) in enumerate(marks):
        x = xs(value)
        # Near the right edge the label goes left of its line, clear of the CDF axis.
        left = x > xs.px_hi - 40
        anchor = ' text-anchor="end"' if left else ""
        parts.append(f'<line class="mark" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                     f'y2="{TOP + PLOT_H}"/><text class="tick mark" '
                     f'x="{x - 3 if left else x + 3:.1f}" y="{TOP + 10 + 11 * i}"{anchor}>'
                     f"{escape(name)}</text>")
    return parts
