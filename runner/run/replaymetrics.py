"""A replayed trace's figures in a job's metrics (issue 14 §5): the `replay` key (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.load.records import RequestRecord
from runner.load.replay import TracePrompts, replay_speed


def replay_figures(params: Mapping[str, Any], prompts: Any) -> dict[str, Any] | None:
    """What a replay job was asked to send, from its trace: speed, format, trace_requests and
    trace_duration_s (as recorded, at speed 1); None when the job is not a replay."""
    if params.get("replay") is None or not isinstance(prompts, TracePrompts):
        return None
    trace = prompts.trace
    return {"speed": replay_speed(params), "format": trace.format,
            "trace_requests": len(trace.requests), "trace_duration_s": trace.duration_s}


def replay_summary(measured: Sequence[RequestRecord],
                   figures: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The `replay` key of a job's metrics (schemas/result.schema.json): `figures` (see
    replay_figures) with replay_duration_s = trace_duration_s / speed (the schedule's span,
    seconds), sent (measured requests sent) and cut_short (why fewer than trace_requests were
    sent; None when all were). None for a job that is not a replay. How late each send was
    against its trace offset / speed is the job's client.scheduling_lag_ms; the achieved
    against the scheduled rate is its `rate`."""
    if figures is None:
        return None
    sent = len(measured)
    total = int(figures["trace_requests"])
    short = None if sent >= total else (
        f"{sent} of {total} trace requests sent: requests, duration_s, the job timeout, an "
        "interrupt or an early stop ended the replay first")
    return {**figures, "replay_duration_s": float(figures["trace_duration_s"]) /
            float(figures["speed"]), "sent": sent, "cut_short": short}
