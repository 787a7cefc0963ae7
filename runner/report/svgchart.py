"""Inline SVG line charts for reports, in pure Python: axes, ticks, legend, log-ish ranges."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#79706e")
WIDTH = 440
PLOT_H = 200
LEFT, RIGHT, TOP, BOTTOM = 54, 16, 30, 42
LEGEND_ROW = 16
LEGEND_COLS = 2
LEGEND_X = 12
LOG_RATIO = 50.0  # a positive range wider than this gets a logarithmic axis


@dataclass(frozen=True)
class Series:
    """One line: legend name, colour index, dashed or solid, (x, y) points; y None is a gap."""

    name: str
    points: tuple[tuple[float, float | None], ...]
    color: int = 0
    dashed: bool = False


@dataclass(frozen=True)
class Scale:
    """Maps data values onto pixels, linearly or logarithmically."""

    lo: float
    hi: float
    px_lo: float
    px_hi: float
    log: bool = False

    def __call__(self, value: float) -> float:
        lo, hi, v = self.lo, self.hi, value
        if self.log:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(v, self.lo))
        return self.px_lo + (v - lo) / (hi - lo) * (self.px_hi - self.px_lo)


def fmt_num(value: float) -> str:
    """A short tick label: 0.25, 2.5, 512, 1200, 12.5k, 3M."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e4:
        return f"{value / 1e3:.3g}k"
    if size >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_step(span: float, count: int) -> float:
    """A 1-2-2.5-5 step that cuts `span` into about `count` parts."""
    raw = span / max(count, 1) or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step: float = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude * 1.0001)
    return step


def linear_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9)
    return [round(i * step, 10) for i in range(first, math.floor(hi / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    low, high = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1.0,) if high - low > 3 else (1.0, 2.0, 5.0)
    candidates = (m * 10.0**k for k in range(low, high + 1) for m in steps)
    return [t for t in candidates if lo * 0.9999 <= t <= hi * 1.0001]


def value_scale(values: Sequence[float], px_lo: float, px_hi: float) -> tuple[Scale, list[float]]:
    """A y scale from 0 (or log when the range is wide) with its ticks."""
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo > LOG_RATIO:
        lo, hi = _round_125(lo, down=True), _round_125(hi, down=False)
        return Scale(lo, hi, px_lo, px_hi, log=True), log_ticks(lo, hi)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    step = nice_step((hi - lo) or abs(hi) or 1.0, 4)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step or step
    return Scale(lo, hi, px_lo, px_hi), linear_ticks(lo, hi, 4)


def _round_125(value: float, *, down: bool) -> float:
    """The nearest 1, 2 or 5 times a power of ten below (or above) `value`."""
    magnitude = 10.0 ** math.floor(math.log10(value))
    steps = [m * magnitude for m in (1, 2, 5, 10)]
    if down:
        return max(s for s in steps if s <= value * 1.0001)
    return min(s for s in steps if s >= value * 0.9999)


def position_scale(
    values: Sequence[float], px_lo: float, px_hi: float
) -> tuple[Scale, list[float]]:
    """An x scale around the data (log when wide); the data values are the ticks when few."""
    distinct = sorted(set(values))
    lo, hi = distinct[0], distinct[-1]
    log = lo > 0 and hi / lo >= 8
    if log:
        scale = Scale(lo / 1.25, hi * 1.25, px_lo, px_hi, log=True)
    else:
        pad = (hi - lo) * 0.06 or max(abs(lo) * 0.5, 1.0)
        scale = Scale(lo - pad, hi + pad, px_lo, px_hi)
    if len(distinct) <= 10:
        return scale, distinct
    return scale, log_ticks(lo, hi) if log else linear_ticks(lo, hi, 5)


def svg_open(height: float, title: str, label: str | None = None) -> list[str]:
    return [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} '
            f'{height:.0f}" width="{WIDTH}" height="{height:.0f}" role="img" '
            f'aria-label="{escape(label or title)}">',
            f'<text class="title" x="{LEFT}" y="17">{escape(title)}</text>']


def empty_chart(title: str, message: str = "no data") -> str:
    """A placeholder with the chart's size, so layouts and counts stay the same."""
    height = TOP + PLOT_H + BOTTOM
    parts = svg_open(height, title)
    parts.append(f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
                 f'height="{PLOT_H}"/>')
    parts.append(f'<text class="empty" x="{(LEFT + WIDTH - RIGHT) / 2}" '
                 f'y="{TOP + PLOT_H / 2}" text-anchor="middle">{escape(message)}</text></svg>')
    return "".join(parts)


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels for ticks, with as many digits as it takes to tell neighbours apart."""
    labels = [fmt_num(t) for t in ticks]
    for digits in range(4, 8):
        if len(set(labels)) == len(set(ticks)):
            break
        labels = [fmt_num(t) if abs(t) >= 1e4 else f"{t:.{digits}g}" for t in ticks]
    return labels


def y_axis(scale: Scale, ticks: Sequence[float], label: str, x: float = LEFT) -> list[str]:
    parts = []
    for t, text in zip(ticks, tick_labels(ticks), strict=True):
        y = scale(t)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{x - 5}" y="{y + 3.5:.1f}" '
                     f'text-anchor="end">{text}</text>')
    middle = (scale.px_lo + scale.px_hi) / 2
    parts.append(f'<text class="label" transform="translate(13 {middle:.0f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(label)}{" (log)" if scale.log else ""}</text>')
    return parts


def x_axis(scale: Scale, ticks: Sequence[float], label: str,
           names: Sequence[str] | None = None) -> list[str]:
    base = TOP + PLOT_H
    parts, last = [], -math.inf
    labels = tick_labels(ticks)
    for i, t in enumerate(ticks):
        x = scale(t)
        parts.append(f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}"/>')
        if x - last >= 30:  # leave out labels that would overlap
            text = clip_middle(names[i], 14) if names else labels[i]
            parts.append(f'<text class="tick" x="{x:.1f}" y="{base + 16}" '
                         f'text-anchor="middle">{escape(text)}</text>')
            last = x
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>'
                 f'<text class="label" x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{base + 34}" '
                 f'text-anchor="middle">{escape(label)}{" (log)" if scale.log else ""}</text>')
    return parts


def clip_middle(text: str, width: int) -> str:
    """Long ids keep both ends, which tell them apart: `Qwen/Qwen3-Co…Instruct-v02`."""
    if len(text) <= width:
        return text
    tail = (width - 1) // 2 + 1
    return text[: width - 1 - tail] + "…" + text[-tail:]


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in sorted(points, key=lambda p: p[0]):
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def series_marks(s: Series, xs: Scale, ys: Scale, x_name: str,
                 categories: Sequence[str] | None = None) -> list[str]:
    """The series' lines (broken at missing values) and a marker with a tooltip per point
    (its x named by `categories` when the axis has them: x is then their index)."""
    stroke = color(s.color)
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    parts = []
    for run in _segments(s.points):
        path = " ".join(f"{xs(x):.1f},{ys(y):.1f}" for x, y in run)
        parts.append(f'<polyline class="line" points="{path}" stroke="{stroke}"{dash}/>')
        for x, y in run:
            shown = categories[int(x)] if categories is not None else fmt_num(x)
            tip = escape(f"{s.name}: {fmt_num(y)} at {x_name} {shown}")
            fill = "#fff" if s.dashed else stroke
            parts.append(f'<circle cx="{xs(x):.1f}" cy="{ys(y):.1f}" r="2.8" fill="{fill}" '
                         f'stroke="{stroke}"><title>{tip}</title></circle>')
    return parts


def legend(names: Sequence[tuple[str, int]], top: float) -> list[str]:
    col_w = (WIDTH - 2 * LEGEND_X) / LEGEND_COLS
    parts = []
    for i, (name, index) in enumerate(names):
        x = LEGEND_X + (i % LEGEND_COLS) * col_w
        y = top + (i // LEGEND_COLS) * LEGEND_ROW
        parts.append(f'<g class="key"><title>{escape(name)}</title><rect x="{x:.0f}" '
                     f'y="{y - 8:.0f}" width="10" height="10" rx="2" fill="{color(index)}"/>'
                     f'<text x="{x + 14:.0f}" y="{y + 1:.0f}">'
                     f"{escape(clip_middle(name, 28))}</text></g>")
    return parts


def style_key(solid: str, dashed: str) -> list[str]:
    x = WIDTH - RIGHT
    return [f'<line class="line" x1="{x - 118}" x2="{x - 100}" y1="13" y2="13" stroke="#555"/>',
            f'<text class="tick" x="{x - 96}" y="17">{escape(solid)}</text>',
            f'<line class="line" x1="{x - 58}" x2="{x - 40}" y1="13" y2="13" stroke="#555" '
            'stroke-dasharray="5 3"/>',
            f'<text class="tick" x="{x - 36}" y="17">{escape(dashed)}</text>']


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    categories: Sequence[str] | None = None,
    styles: tuple[str, str] | None = None,
) -> str:
    """Lines of y against x, one colour per legend name; `categories` names x = 0, 1, ...

    `styles` names the solid and the dashed lines (e.g. p50, p95) in a key beside the title.
    """
    ys_data = [y for s in series for _, y in s.points if y is not None]
    if not ys_data:
        return empty_chart(title)
    names = list(dict.fromkeys((s.name, s.color) for s in series))
    height = TOP + PLOT_H + BOTTOM + math.ceil(len(names) / LEGEND_COLS) * LEGEND_ROW + 6
    ys, y_ticks = value_scale(ys_data, TOP + PLOT_H, TOP)
    xs, x_ticks = _x_scale(series, categories)
    parts = svg_open(height, title, f"{title} by {x_label}")
    parts += style_key(*styles) if styles else []
    parts += y_axis(ys, y_ticks, y_label)
    parts += x_axis(xs, x_ticks, x_label, categories)
    for s in series:
        parts += series_marks(s, xs, ys, x_label, categories)
    parts += legend(names, TOP + PLOT_H + BOTTOM + 10)
    return "".join([*parts, "</svg>"])


def _x_scale(
    series: Sequence[Series], categories: Sequence[str] | None
) -> tuple[Scale, list[float]]:
    if categories is not None:
        scale = Scale(-0.5, len(categories) - 0.5, LEFT, WIDTH - RIGHT)
        return scale, [float(i) for i in range(len(categories))]
    return position_scale([x for s in series for x, _ in s.points], LEFT, WIDTH - RIGHT)
