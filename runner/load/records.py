"""What the load generator records per request, shared by loadgen, metrics and store."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Error kinds (a failed request always has one; a successful request has none).
ERROR_KINDS = (
    "http",  # non-2xx status (the status is in `http_status`)
    "rate_limited",  # 429, or 503 with Retry-After: the server asked to wait (see load.pacing)
    "timeout",  # request_timeout_s passed
    "connection",  # could not connect, or the connection broke
    "stream_error",  # an error event inside a 200 stream
    "aborted",  # the server ended the answer early: a finish reason outside FINISHED (see sse)
    "content_filter",  # the provider's filter withheld or cut the answer (finish_reason)
    "truncated",  # the answer ended without a finish reason (cut off, or [DONE] without one)
    "invalid_response",  # an answer that is not the OpenAI shape
    "cancelled",  # cut by the client: an interrupt, the job timeout, the end of duration_s
    "response_too_large",  # an answer past a servers.yaml `limits` (line_bytes, chunks)
    "client_error",  # runner could not send it (e.g. a header the HTTP client refuses)
)


@dataclass
class RequestRecord:
    """One request as measured by the client. Times are milliseconds; offsets are from the
    measured window's start (when the first measured request was due; warm-ups, which end
    before it, have negative offsets), durations from the actual send."""

    index: int
    warmup: bool = False
    scheduled_ms: float | None = None  # open loop: when the request should have been sent
    sent_ms: float = 0.0  # when it was actually sent
    # open loop with max_concurrency: the wait for a free slot, from scheduled_ms (the queue
    # the plan caused); None without a slot limit. The rest of sent - scheduled is send lag.
    queue_ms: float | None = None
    ttft_ms: float | None = None  # send -> first chunk carrying content or reasoning text
    itl_ms: list[float] = field(default_factory=list)  # gaps between content chunks
    e2e_ms: float | None = None  # send -> stream finished
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    output_tokens_source: str | None = None  # "usage" (server) or "chunks" (content chunks)
    content_chunks: int = 0
    finish_reason: str | None = None  # the first outside FINISHED, else the last
    ok: bool = False
    error_kind: str | None = None  # one of ERROR_KINDS when not ok
    http_status: int | None = None
    error: str | None = None  # short message, never containing secrets

    @property
    def e2e_from_scheduled_ms(self) -> float | None:
        """Open loop: latency including client-side queueing before the send."""
        if self.scheduled_ms is None or self.e2e_ms is None:
            return None
        return self.sent_ms - self.scheduled_ms + self.e2e_ms

    @property
    def ttft_from_scheduled_ms(self) -> float | None:
        """Open loop: time to first token including client-side queueing before the send."""
        if self.scheduled_ms is None or self.ttft_ms is None:
            return None
        return self.sent_ms - self.scheduled_ms + self.ttft_ms

    @property
    def tpot_ms(self) -> float | None:
        """(E2E - TTFT) / (output_tokens - 1); undefined for fewer than 2 output tokens, and
        for an answer that came in one piece (not streamed): its tokens have no timing."""
        if self.e2e_ms is None or self.ttft_ms is None or not self.output_tokens:
            return None
        if self.output_tokens < 2 or self.content_chunks == 1:
            return None
        return (self.e2e_ms - self.ttft_ms) / (self.output_tokens - 1)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["itl_ms"] = [round(x, 3) for x in self.itl_ms]
        for key in ("scheduled_ms", "sent_ms", "queue_ms", "ttft_ms", "e2e_ms"):
            if data[key] is not None:
                data[key] = round(data[key], 3)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class ClientHealth:
    """The load generator's view of itself: was it, not the server, the limit?"""

    # Send lag: actual send - when the request could go (open loop: its scheduled time or, when
    # later, the moment a max_concurrency slot was freed for it; closed loop: the end of the
    # worker's previous request). Measured requests only; the client's lateness, never the queue.
    scheduling_lag_ms: list[float] = field(default_factory=list)
    loop_delay_ms: list[float] = field(default_factory=list)  # event-loop timer overshoot
