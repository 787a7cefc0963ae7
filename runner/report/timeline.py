"""A job's client-side time series, from its request log: what happened in each second.

Percentiles hide a degradation inside a job (a cache filling, throttling, a queue building up);
per-second series show it. Each series has one value per bin of `bin_s` seconds from the job's
start (offset 0: the first request's scheduled or actual send). A long job gets wider bins, so a
series never has more than MAX_BINS values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from runner.load.records import RequestRecord
from runner.report.svgchart import Series, line_chart
from runner.run.metrics import CANCELLED, distribution

BIN_S = 1.0
MAX_BINS = 3600  # an hour at 1 s; a longer job gets bins of whole seconds that keep it under


def bin_width_s(span_s: float) -> float:
    """BIN_S, or the smallest whole number of seconds that fits `span_s` into MAX_BINS bins."""
    return max(BIN_S, float(math.ceil(span_s / MAX_BINS)))


def client_series(records: Iterable[RequestRecord]) -> dict[str, Any]:
    """Per-bin series of the measured requests (warm-up excluded):

    - `t_s`: each bin's start, seconds from the job's start; `bin_s`: the bin width.
    - `started` / `finished`: requests sent / ended (ok or failed) in the bin; `errors`: failed
      requests by their end (cancelled ones are neither: the client cut them).
    - `output_tokens_per_s`: ok requests' output tokens, each spread evenly over its stream
      (first token to last), per second of the bin; None in each bin of an embeddings job.
    - `inputs_per_s`: an embeddings job only: ok requests' inputs by the bin they ended in,
      per second of the bin.
    - `in_flight`: the mean number of requests open during the bin (time-weighted).
    - `ttft_ms_p50` / `e2e_ms_p50`: the median TTFT / E2E of ok requests by the bin they were
      sent in (None for a bin that sent none).
    All times are the client's own (milliseconds in the log, seconds here). A repeated job's
    repetitions (load.repeat) follow each other: each one's offsets count from the end of the
    one before (its pause left out)."""
    measured = in_sequence([r for r in records if not r.warmup])
    if not measured:
        return {"bin_s": BIN_S, "t_s": [], "started": [], "finished": [], "errors": [],
                "output_tokens_per_s": [], "in_flight": [], "ttft_ms_p50": [], "e2e_ms_p50": []}
    end_s = max(_end_s(r) for r in measured)
    width = bin_width_s(end_s)
    bins = max(1, math.ceil(end_s / width - 1e-9))
    series = _Series(width, bins, end_s)
    for record in measured:
        series.add(record)
    return series.to_json()


def in_sequence(records: Sequence[RequestRecord]) -> list[RequestRecord]:
    """`records` as they are, or for a repeated job's log (records with a `repetition`), copies
    whose sent_ms (and scheduled_ms) are moved past the end of the repetitions before theirs."""
    if all(r.repetition is None for r in records):
        return list(records)
    ends: dict[int, float] = {}
    for r in records:
        ends[r.repetition or 0] = max(ends.get(r.repetition or 0, 0.0), _end_s(r) * 1000)
    shift, before = {}, 0.0
    for number in sorted(ends):
        shift[number], before = before, before + ends[number]
    return [replace(r, sent_ms=r.sent_ms + shift[r.repetition or 0],
                    scheduled_ms=None if r.scheduled_ms is None
                    else r.scheduled_ms + shift[r.repetition or 0]) for r in records]


def _end_s(record: RequestRecord) -> float:
    return (record.sent_ms + (record.e2e_ms or 0.0)) / 1000


class _Series:
    def __init__(self, width: float, bins: int, end_s: float) -> None:
        self.width, self.bins = width, bins
        # The last bin ends with the last request, so its rates are per second of its own length.
        self.lengths = [width] * (bins - 1) + [max(end_s - (bins - 1) * width, 1e-3)]
        self.started, self.finished, self.errors = [0] * bins, [0] * bins, [0] * bins
        self.tokens, self.busy, self.inputs = [0.0] * bins, [0.0] * bins, [0.0] * bins
        self.embeds = False  # an embeddings job's records carry their inputs
        self.ttft: list[list[float]] = [[] for _ in range(bins)]
        self.e2e: list[list[float]] = [[] for _ in range(bins)]

    def _bin(self, at_s: float) -> int:
        return min(self.bins - 1, max(0, int(at_s / self.width)))

    def add(self, record: RequestRecord) -> None:
        sent_s, end_s = record.sent_ms / 1000, _end_s(record)
        first = self._bin(sent_s)
        self.started[first] += 1
        # Request-seconds spread over the bins: their sum per second is the mean in flight.
        _spread(self.busy, self.lengths, sent_s, end_s, end_s - sent_s, self.width)
        if record.error_kind == CANCELLED and not record.ok:
            return
        self.finished[self._bin(end_s)] += 1
        if not record.ok:
            self.errors[self._bin(end_s)] += 1
            return
        if record.ttft_ms is not None:
            self.ttft[first].append(record.ttft_ms)
        if record.e2e_ms is not None:
            self.e2e[first].append(record.e2e_ms)
        if record.inputs is not None:
            self.embeds = True
            self.inputs[self._bin(end_s)] += record.inputs
        if record.output_tokens:
            stream_start = sent_s + (record.ttft_ms or 0.0) / 1000
            _spread(self.tokens, self.lengths, stream_start, end_s, record.output_tokens,
                    self.width)

    def to_json(self) -> dict[str, Any]:
        tokens: list[float | None] = [round(x, 3) for x in self.tokens]
        found = {
            "bin_s": self.width,
            "t_s": [round(i * self.width, 3) for i in range(self.bins)],
            "started": self.started, "finished": self.finished, "errors": self.errors,
            "output_tokens_per_s": [None] * self.bins if self.embeds else tokens,
            "in_flight": [round(x, 3) for x in self.busy],
            "ttft_ms_p50": [_median(v) for v in self.ttft],
            "e2e_ms_p50": [_median(v) for v in self.e2e],
        }
        if self.embeds:  # an embeddings job: inputs in place of output tokens
            found["inputs_per_s"] = [round(x / n, 3) for x, n in zip(self.inputs, self.lengths,
                                                                     strict=True)]
        return found


def _spread(into: list[float], lengths: Sequence[float], start_s: float, end_s: float,
            total: float, width: float) -> None:
    """Spread `total` evenly over [start_s, end_s) and add each bin's share per second of that
    bin (`lengths`: each bin's length; the last may be short); an instant counts in its bin."""
    last = len(into) - 1
    first = min(last, max(0, int(start_s / width)))
    if end_s <= start_s:
        into[first] += total / lengths[first]
        return
    for i in range(first, min(last, int(end_s / width)) + 1):
        overlap = min(end_s, (i + 1) * width) - max(start_s, i * width)
        if overlap > 0:
            into[i] += total * overlap / (end_s - start_s) / lengths[i]


def _median(values: Sequence[float]) -> float | None:
    median = distribution(values)["p50"]
    return None if median is None else round(median, 3)


# (title, y label, series key) of the client timeline charts in the HTML report.
CLIENT_CHARTS = (
    ("Output tokens/s over time", "tok/s", "output_tokens_per_s"),
    ("TTFT p50 by send time", "ms", "ttft_ms_p50"),
    ("Requests in flight", "requests", "in_flight"),
)
# An embeddings job's: it has no output tokens and no TTFT.
EMBEDDINGS_CHARTS = (
    ("Inputs/s over time", "inputs/s", "inputs_per_s"),
    ("E2E p50 by send time", "ms", "e2e_ms_p50"),
    ("Requests in flight", "requests", "in_flight"),
)


# (title, y label, series key, scale) of the server timeline charts: runner.servermetrics.timeline
SERVER_CHARTS = (
    ("Server: requests waiting", "requests", "requests_waiting", 1.0),
    ("Server: KV-cache usage", "%", "kv_cache_usage", 100.0),
    ("Server: preemptions per scrape interval", "preemptions", "preemptions", 1.0),
)


def timeline_charts(client: Mapping[str, Any], server: Mapping[str, Any] | None = None,
                    embeddings: bool = False) -> tuple[str, ...]:
    """SVG line charts of a job's client series against seconds from the job's start; the
    server's generation tok/s (`server`: timeline.server) joins the client's throughput.
    `embeddings` (or inputs/s in the client series): an embeddings job's charts
    (EMBEDDINGS_CHARTS)."""
    times = client.get("t_s") or []
    charts = []
    shown = EMBEDDINGS_CHARTS if "inputs_per_s" in client else (
        EMBEDDINGS_CHARTS[1:] if embeddings else CLIENT_CHARTS)  # no inputs recorded: no chart
    for title, unit, key in shown:
        points = tuple(zip(times, client.get(key) or [], strict=False))
        series = [Series("client", points)]
        if key == "output_tokens_per_s" and server is not None:
            series += _server_lines(server, "generation_tokens_per_s", 1.0)
        charts.append(line_chart(series, title=title, x_label="s", y_label=unit))
    return tuple(charts)


def server_charts(server: Mapping[str, Any]) -> tuple[str, ...]:
    """SVG line charts of the server's waiting queue, KV-cache usage (in %) and preemptions
    against the same seconds as the client's; only those the server reported."""
    return tuple(line_chart(lines, title=title, x_label="s", y_label=unit)
                 for title, unit, key, scale in SERVER_CHARTS
                 if (lines := _server_lines(server, key, scale)))


def _server_lines(server: Mapping[str, Any], key: str, scale: float) -> list[Series]:
    points = tuple((t, None if v is None else v * scale)
                   for t, v in zip(server.get("t_s") or [], server.get(key) or [], strict=False))
    if all(v is None for _, v in points):
        return []
    return [Series("server", points, color=1)]
