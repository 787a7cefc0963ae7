"""What the load generator records per request, shared by loadgen, metrics and store."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

# Error kinds (a failed request always has one; a successful request has none).
ERROR_KINDS = (
    "http",  # non-2xx status (the status is in `http_status`)
    "rate_limited",  # 429, or 503 with Retry-After: the server asked to wait (see load.pacing)
    "timeout",  # request_timeout_s passed (the whole answer's deadline)
    "stalled",  # no byte from the server for stall_timeout_s
    "connection",  # could not connect, or the connection broke
    "stream_error",  # an error event inside a 200 stream
    "aborted",  # the server ended the answer early: a finish reason outside FINISHED (see sse)
    "content_filter",  # the provider's filter withheld or cut the answer (finish_reason)
    "truncated",  # the answer ended without a finish reason (cut off, or [DONE] without one)
    "invalid_response",  # an answer that is not the OpenAI shape
    "cancelled",  # cut by the client: an interrupt, the job timeout, the end of duration_s
    "response_too_large",  # an answer past a servers.yaml `limits` (line_bytes, chunks)
    "client_error",  # runner could not send it (e.g. a header the HTTP client refuses)
    "worker_lost",  # the worker process sending it died (--workers): it never ended
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
    # Chunk timings: none for an answer that was not streamed (one body has no arrivals).
    ttft_ms: float | None = None  # send -> first chunk carrying content or reasoning text
    itl_ms: list[float] = field(default_factory=list)  # gaps between content chunks
    e2e_ms: float | None = None  # send -> stream finished
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    output_tokens_source: str | None = None  # "usage" (server) or "chunks" (content chunks)
    content_chunks: int = 0
    usage_output_tokens: int | None = None  # the server's usage completion_tokens, as claimed
    usage_inconsistent: bool = False  # that claim is below content_chunks: impossible
    # vLLM's `bench serve` definitions (a chunk is any event with non-empty choices, text or
    # not): send -> the first such chunk, and the gaps between them. Streamed answers only.
    ttft_first_chunk_ms: float | None = None
    itl_chunks_ms: list[float] = field(default_factory=list)
    finish_reason: str | None = None  # the first outside FINISHED, else the last
    # Whether the answer came as an event stream (False: one JSON body, asked for with
    # `stream: false` or sent so by the server); None when no answer was read.
    streamed: bool | None = None
    ok: bool = False
    error_kind: str | None = None  # one of ERROR_KINDS when not ok
    http_status: int | None = None
    error: str | None = None  # short message, never containing secrets
    # What a LiteLLM proxy said about this answer (runner.load.gatewayheaders.read_gateway):
    # deployment, model group, api base host, call id, version, cost, duration, overhead,
    # attempted retries and fallbacks; None when the answer carried no LiteLLM headers.
    gateway: dict[str, Any] | None = None
    # A repeated job's (load.repeat > 1) repetition that sent it, from 1; None (and left out of
    # the stored record) for a job run once. Offsets count from that repetition's window.
    repetition: int | None = None
    # A session job's (workload.session) session, from 0 (its measured index: the prompt or
    # dataset line it started from), and turn, from 1; None (and left out of the stored record)
    # for a request outside a session (every request of other jobs, and warm-ups).
    session: int | None = None
    turn: int | None = None
    # Reasoning models (README "Metrics"; each None, and left out of the stored record, when
    # unknown). AIPerf's "time to first output token": send -> the first chunk carrying answer
    # text (content, refusal, tool-call arguments, completions text), reasoning not counted;
    # streamed answers only, as TTFT. Equal to ttft_ms for an answer that did not reason.
    ttfo_ms: float | None = None
    # usage completion_tokens_details.reasoning_tokens (part of completion_tokens), as claimed.
    reasoning_tokens: int | None = None
    # Streamed answers: content chunks carrying reasoning text and no answer text (the rest of
    # content_chunks carried answer text).
    reasoning_chunks: int | None = None
    # An embeddings request's inputs (workload.embeddings.batch_size); None (and left out of
    # the stored record) for the other endpoints.
    inputs: int | None = None

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
        """(E2E - TTFT) / (output_tokens - 1); undefined for fewer than 2 output tokens, for
        an answer that was not streamed (no TTFT), and for a streamed answer of one content
        chunk: its tokens came together, with no timing between them."""
        if self.e2e_ms is None or self.ttft_ms is None or not self.output_tokens:
            return None
        if self.output_tokens < 2 or self.content_chunks == 1:
            return None
        return (self.e2e_ms - self.ttft_ms) / (self.output_tokens - 1)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in OPTIONAL_FIELDS:
            if data[key] is None:
                del data[key]
        data["itl_ms"] = [round(x, 3) for x in self.itl_ms]
        data["itl_chunks_ms"] = [round(x, 3) for x in self.itl_chunks_ms]
        for key in ("scheduled_ms", "sent_ms", "queue_ms", "ttft_ms", "e2e_ms",
                    "ttft_first_chunk_ms", "ttfo_ms"):
            if data.get(key) is not None:
                data[key] = round(data[key], 3)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# Fields left out of the stored record when None (older request logs lack them).
OPTIONAL_FIELDS = ("repetition", "session", "turn", "ttfo_ms", "reasoning_tokens",
                   "reasoning_chunks", "inputs")


def count_tokens(record: RequestRecord, claimed: int | None, streamed: bool) -> None:
    """Set `record`'s output_tokens and their source from the server's usage claim (`claimed`,
    completion_tokens; None: none came) and its content_chunks.

    Each content chunk carries at least one token, so a claim below content_chunks is
    impossible: the request is marked usage_inconsistent, the claim kept in
    usage_output_tokens, and output_tokens is the chunk count (source "chunks"), so TPOT and
    tokens/s never rest on it. No claim: the chunk count when streamed, else unknown."""
    record.usage_output_tokens = claimed
    chunks = record.content_chunks
    if claimed is not None and claimed >= chunks:
        record.output_tokens, record.output_tokens_source = claimed, "usage"
    elif claimed is not None or streamed:
        record.output_tokens, record.output_tokens_source = chunks, "chunks"
        record.usage_inconsistent = claimed is not None


def time_chunks(record: RequestRecord, content: list[int], textless: list[int],
                start: int) -> None:
    """vLLM's TTFT and ITL (`ttft_first_chunk_ms`, `itl_chunks_ms`: every chunk with choices,
    text or not) from the content chunks' and the other chunks' arrival times (ns, ascending).

    Other chunks usually come only before the first content chunk (a role chunk) or after the
    last (the finish): then the gaps are theirs around `record.itl_ms`, no second pass over
    the content chunks (this runs once per request in the load generator)."""
    both = bool(content and textless)
    if both and all(t <= content[0] or t >= content[-1] for t in textless):
        before = [t for t in textless if t <= content[0]]
        after = [t for t in textless if t > content[0]]
        record.ttft_first_chunk_ms = ((before or content)[0] - start) / 1e6
        record.itl_chunks_ms = (_gaps([*before, content[0]]) + record.itl_ms
                                + _gaps([content[-1], *after]))
        return
    times = sorted(content + textless) if both else content or textless
    if times:
        record.ttft_first_chunk_ms = (times[0] - start) / 1e6
        record.itl_chunks_ms = _gaps(times) if textless else list(record.itl_ms)


def time_answer(record: RequestRecord, answer_ns: int | None, reasoning_chunks: int,
                start: int) -> None:
    """A streamed answer's TTFO (`ttfo_ms`: send at `start` -> `answer_ns`, the first chunk
    with answer text, ns; None when none came) and its reasoning chunk count."""
    record.reasoning_chunks = reasoning_chunks
    record.ttfo_ms = (answer_ns - start) / 1e6 if answer_ns is not None else None


def _gaps(times: list[int]) -> list[float]:
    return [(b - a) / 1e6 for a, b in itertools.pairwise(times)]


@dataclass
class ClientHealth:
    """The load generator's view of itself: was it, not the server, the limit?"""

    # Send lag: actual send - when the request could go (open loop: its scheduled time or, when
    # later, the moment a max_concurrency slot was freed for it; closed loop: the end of the
    # worker's previous request). Measured requests only; the client's lateness, never the queue.
    scheduling_lag_ms: list[float] = field(default_factory=list)
    loop_delay_ms: list[float] = field(default_factory=list)  # event-loop timer overshoot
