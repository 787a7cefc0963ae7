"""A session job's by-turn view (workload.session, issue 14 §2): TTFT and prompt tokens by
turn index, as a chart and a table, from the job's stored `metrics.by_turn`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from runner.report.svgchart import Series, line_chart

COLUMNS = (("Turn", "turn"), ("Requests", "requests"), ("OK", "ok"), ("Failed", "failed"),
           ("Prompt tokens p50", "prompt_tokens.p50"), ("TTFT p50 ms", "ttft_ms.p50"),
           ("TTFT p95 ms", "ttft_ms.p95"), ("TPOT p50 ms", "tpot_ms.p50"),
           ("E2E p50 ms", "e2e_ms.p50"))


def turn_rows(job: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """The job's per-turn entries (metrics.by_turn.turns); none for a job without sessions."""
    found = (job.get("metrics") or {}).get("by_turn")
    return found.get("turns") or () if isinstance(found, Mapping) else ()


def turn_charts(job: Mapping[str, Any], fmt: Callable[[Any], str]) -> tuple[Markup, ...]:
    """TTFT p50/p95 by turn (a chart) and the by-turn table; () for a job without sessions.
    `fmt` writes a number as the report's tables do."""
    rows = turn_rows(job)
    if not rows:
        return ()
    series = [Series(f"TTFT {stat}", tuple((float(r["turn"]), _at(r, f"ttft_ms.{stat}"))
                                           for r in rows), color=0, dashed=stat == "p95")
              for stat in ("p50", "p95")]
    chart = Markup(line_chart(series, title="TTFT by turn", x_label="turn", y_label="ms",
                              styles=("p50", "p95")))
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in COLUMNS)
    body = "".join("<tr>" + "".join(f'<td class="num">{escape(_cell(r, path, fmt))}</td>'
                                    for _, path in COLUMNS) + "</tr>" for r in rows)
    table = Markup(f'<table class="by-turn"><caption>By turn (each turn sends the conversation '
                   f"so far)</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                   "</table>")
    return chart, table


def markdown_turns(jobs: Sequence[Mapping[str, Any]], fmt: Callable[[Any], str],
                   md: Callable[[Any], str]) -> list[str]:
    """One line per session job for the Markdown summary: TTFT p50 and prompt tokens p50 by
    turn (`md` makes text safe for Markdown)."""
    lines = []
    for job in jobs:
        rows = turn_rows(job)
        if rows:
            ttft = " → ".join(fmt(_at(r, "ttft_ms.p50")) for r in rows)
            prompt = " → ".join(fmt(_at(r, "prompt_tokens.p50")) for r in rows)
            lines.append(f"- `{md(job.get('id'))}` by turn: TTFT p50 {md(ttft)} ms; "
                         f"prompt tokens p50 {md(prompt)}")
    return ["", "**By turn** (sessions)", *lines] if lines else []


def _cell(row: Mapping[str, Any], path: str, fmt: Callable[[Any], str]) -> str:
    value = _at(row, path)
    return f"{value:,.0f}" if value is not None and "." not in path else fmt(value)


def _at(row: Mapping[str, Any], path: str) -> float | None:
    value: Any = row
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None
