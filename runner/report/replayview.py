"""A replayed trace in the reports (issue 14 §5): one line per replay job, from its metrics'
`replay` key and its send lag."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runner.report.data import Job, stat


def replay_line(job: Job) -> str | None:
    """`replay of a mooncake trace at speed 2: 120 of 200 requests sent, over 30 s (60 s
    recorded); send lag p99 0.8 ms; cut short: ...`; None for a job that is not a replay."""
    replay = stat(job, "replay")
    if not isinstance(replay, Mapping):
        return None
    line = (f"replay of a {replay.get('format')} trace at speed {replay.get('speed'):g}: "
            f"{replay.get('sent')} of {replay.get('trace_requests')} requests sent, over "
            f"{_s(replay.get('replay_duration_s'))} ({_s(replay.get('trace_duration_s'))} "
            "recorded)")
    lag = stat(job, "client.scheduling_lag_ms.p99")
    line += f"; send lag p99 {lag:.1f} ms" if isinstance(lag, int | float) else ""
    short = replay.get("cut_short")
    return line + (f"; cut short: {short}" if short else "")


def markdown_replay(jobs: Sequence[Job], md: Callable[[Any], str]) -> list[str]:
    """The Markdown report's **Replay** lines: one per replay job (`md` escapes text)."""
    lines = [f"- `{md(job.get('id'))}` {md(text)}" for job in jobs
             if (text := replay_line(job)) is not None]
    return ["", "**Replay**", *lines] if lines else []


def _s(value: Any) -> str:
    return f"{value:.3g} s" if isinstance(value, int | float) else "–"
