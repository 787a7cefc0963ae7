"""An open-loop job's sending, apart from the server: the rate it achieved against the plan's,
and whether the queue the plan caused (max_concurrency) is large enough to show (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.load.records import RequestRecord

# The client queue is material, and reports show queue-inclusive latency (TTFT/E2E from the
# scheduled time) beside TTFT/E2E, when its p90 exceeds QUEUE_MATERIAL_MS or QUEUE_MATERIAL_SHARE
# of the E2E p50. p90, not p50: a queue one request in ten waits in already moves the p95/p99 a
# reader looks at. 50 ms is past any timer or scheduling noise (client_bound's 10 ms) and a
# tenth of a typical answer's time is past run-to-run noise (compare's 5 %).
QUEUE_MATERIAL_MS = 50.0
QUEUE_MATERIAL_SHARE = 0.10


def send_rate(measured: Sequence[RequestRecord], target_per_s: float | None) -> dict[str, Any]:
    """The `rate` key of a job's metrics (schemas/result.schema.json): target_per_s (the plan's
    rate), achieved_per_s = (sent - 1) / (last send - first send) in requests/s, scheduled_per_s
    = the same over the scheduled times of these requests (the rate the seeded schedule drew
    for them, moved by Retry-After pauses), and ratio = achieved_per_s / scheduled_per_s.

    Every value is None for a closed loop (no scheduled times); the measured ones for fewer
    than two sends. The ratio leaves out what is not the client's doing: a Poisson schedule's
    own draw (its sampling noise is about 1/sqrt(sent)) and the pauses a server asked for."""
    sent = [r for r in measured if r.scheduled_ms is not None]
    achieved = _per_s([r.sent_ms for r in sent])
    scheduled = _per_s([r.scheduled_ms for r in sent if r.scheduled_ms is not None])
    ratio = achieved / scheduled if achieved is not None and scheduled else None
    return {"target_per_s": target_per_s, "achieved_per_s": achieved,
            "scheduled_per_s": scheduled, "ratio": ratio}


def _per_s(offsets_ms: Sequence[float]) -> float | None:
    """Events per second between the first and the last of `offsets_ms` (milliseconds)."""
    if len(offsets_ms) < 2:
        return None
    span_ms = max(offsets_ms) - min(offsets_ms)
    return (len(offsets_ms) - 1) * 1000 / span_ms if span_ms > 0 else None


def queue_material(metrics: Mapping[str, Any]) -> bool:
    """The job's client queue (client_queue_ms) is large enough that queue-inclusive latency
    must be shown beside TTFT/E2E: its p90 is over QUEUE_MATERIAL_MS, or over
    QUEUE_MATERIAL_SHARE of the E2E p50. False when there is no queue figure (closed loop,
    no max_concurrency, a summary from before queue_ms existed)."""
    p90 = (metrics.get("client_queue_ms") or {}).get("p90")
    if p90 is None:
        return False
    e2e = (metrics.get("e2e_ms") or {}).get("p50")
    return p90 > QUEUE_MATERIAL_MS or (e2e is not None and p90 > QUEUE_MATERIAL_SHARE * e2e)


def queued_latency(metrics: Mapping[str, Any]) -> str | None:
    """A short note of queue-inclusive latency when the queue is material, e.g.
    `queued: TTFT p50 1180 ms, E2E p50 1222 ms from scheduled (queue p50 880 ms)`; else None."""
    if not queue_material(metrics):
        return None
    parts = [f"{label} p50 {_ms(metrics, key)} ms" for label, key in
             (("TTFT", "ttft_from_scheduled_ms"), ("E2E", "e2e_from_scheduled_ms"))]
    return (f"queued: {', '.join(parts)} from scheduled "
            f"(queue p50 {_ms(metrics, 'client_queue_ms')} ms)")


def _ms(metrics: Mapping[str, Any], key: str) -> str:
    value = (metrics.get(key) or {}).get("p50")
    return "-" if value is None else f"{value:.0f}"
