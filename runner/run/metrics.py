"""Summarize a job's request records: distributions, throughput, errors, goodput, SLO, health."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from operator import attrgetter, mul
from typing import Any

from runner.load.records import ClientHealth, RequestRecord
from runner.run.endpointmetrics import input_throughput
from runner.run.queueing import send_rate
from runner.run.reasoning import reasoning_metrics, ttfo_check, ttfo_for_slo
from runner.run.replaymetrics import replay_summary
from runner.run.tokens import Expectation, token_metrics
from runner.run.turnmetrics import by_turn

__all__ = ["Expectation", "distribution", "evaluate_slo", "meets_latency_slo", "summarize"]

PERCENTILES = (50, 90, 95, 99)
LATENCY_METRICS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "ttfo_ms")
# Asyncio timer jitter is ~0.1-1 ms and OS scheduling quanta are 1-4 ms, so a p99 beyond 10 ms
# means the load generator itself (CPU-bound stream parsing, GC pauses, too many tasks) held
# sends or reads back. 10 ms is still small next to typical TTFTs of hundreds of ms, so below it
# the client's share of a measured latency is negligible.
CLIENT_BOUND_THRESHOLD_MS = 10.0
PASS, FAIL, NO_DATA = "pass", "fail", "no_data"  # an SLO check's status
CANCELLED = "cancelled"  # the error kind of a request the client cut: no outcome, not a failure
NO_MODEL_LIMITS = {"max_input_tokens": None, "max_output_tokens": None, "exceeded": False,
                   "detail": None}
_DIST_STATS = ("mean", "std", "min", *(f"p{p}" for p in PERCENTILES), "max")

Distribution = dict[str, float | int | None]


def distribution(values: Sequence[float]) -> Distribution:
    """count, mean, population std, min, p50/p90/p95/p99, max; None values for an empty input.

    Percentiles interpolate linearly between closest ranks (numpy's default 'linear' method).
    """
    count = len(values)
    if not count:
        return {"count": 0, **dict.fromkeys(_DIST_STATS, None)}
    # Sums run in the input's order, which is the floats' order in memory: 2x faster at 100k.
    mean = math.fsum(values) / count
    deviations = [x - mean for x in values]
    std = math.sqrt(math.fsum(map(mul, deviations, deviations)) / count)
    ordered = sorted(values)
    result: Distribution = {"count": count, "mean": mean, "std": std, "min": ordered[0]}
    for p in PERCENTILES:
        result[f"p{p}"] = _percentile(ordered, p)
    result["max"] = ordered[-1]
    return result


def _percentile(ordered: Sequence[float], p: float) -> float:
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(
    records: Sequence[RequestRecord],
    *,
    slo: Mapping[str, Any] | None = None,
    health: ClientHealth | None = None,
    pauses_s: Sequence[float] = (),
    client_bound_threshold_ms: float = CLIENT_BOUND_THRESHOLD_MS,
    expect: Expectation | None = None,
    model_limits: Mapping[str, Any] | None = None,
    prompt_calibration: Mapping[str, Any] | None = None,
    replay: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The job's metrics (see schemas/result.schema.json `$defs.metrics`); warm-up excluded.

    `model_limits`: the job's lengths against its model's limits (runner.plan.limits), kept as
    the `model_limits` key; None: the limits are unknown (nothing exceeded).
    `prompt_calibration`: how its synthetic prompts were sized (runner.load.sizing), None for
    dataset and template prompts.

    A cancelled request (cut by the client: the end of duration_s, an interrupt, the job
    timeout) has no outcome: it is neither ok nor failed, and stays out of error_rate and
    goodput's share. `pauses_s`: the pauses in sending a server asked for (Retry-After).
    `expect`: what the plan asked for (None: unknown): the lengths, for the `lengths` key, and
    the rate, which the `rate` key compares the achieved rate with. `replay`: a replayed
    trace's figures (runner.run.replaymetrics.replay_figures), for the `replay` key."""
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.ok]
    cancelled = sum(r.error_kind == CANCELLED and not r.ok for r in measured)
    total, warmup = len(measured), len(records) - len(measured)
    failed = total - len(ok) - cancelled
    duration_s = _window_s(measured)
    summary: dict[str, Any] = {
        "requests": {"total": total, "ok": len(ok), "failed": failed, "cancelled": cancelled,
                     "warmup": warmup},
        "error_rate": failed / (total - cancelled) if total - cancelled else None,
        "errors": _error_counts(measured),
        "duration_s": duration_s,
        "throughput": {**_throughput(ok, duration_s),
                       **input_throughput(measured, ok, duration_s)},
        **_latencies(ok, open_loop=any(r.scheduled_ms is not None for r in measured)),
        "client_queue_ms": distribution(_values(measured, "queue_ms")),
        "rate": send_rate(measured, (expect or Expectation()).rate),
        "output_tokens": distribution(_values(ok, "output_tokens")),
        "prompt_tokens": distribution(_values(ok, "prompt_tokens")),
        "streamed": {"streamed": sum(r.streamed is not False for r in ok),
                     "not_streamed": sum(r.streamed is False for r in ok)},
        **token_metrics(ok, expect, distribution),
        **reasoning_metrics(ok, distribution),
        "goodput": (_goodput(ok, total - cancelled, duration_s, slo)
                    if slo and _bounds(slo) else None),
        "slo": None,
        "client": _client(health, client_bound_threshold_ms),
        "retry_after": {"pauses": len(pauses_s), "paused_s": math.fsum(pauses_s)},
        "model_limits": dict(model_limits or NO_MODEL_LIMITS),
        "by_turn": by_turn(measured, distribution),
        "prompt_calibration": dict(prompt_calibration) if prompt_calibration else None,
        "replay": replay_summary(measured, replay),
        "prefix_cache": None,  # a shared-prefix job's, once the server's counters are known
    }
    if slo is not None:
        summary["slo"] = evaluate_slo(summary, slo, ttfo_for_slo(ok))
    return summary


def _values(records: Sequence[RequestRecord], attr: str) -> list[float]:
    return [v for v in map(attrgetter(attr), records) if v is not None]


def _window_s(measured: Sequence[RequestRecord]) -> float | None:
    # As vLLM's bench serve (benchmarks/serve.py, `benchmark`: benchmark_duration): from the
    # window's opening (the first measured request due, or sent) to the last one's end, the
    # last partial wave included. A request whose end is unknown still ends after its send.
    if not measured:
        return None
    start = min(min(r.sent_ms, r.scheduled_ms if r.scheduled_ms is not None else r.sent_ms)
                for r in measured)
    end = max(r.sent_ms + (r.e2e_ms or 0.0) for r in measured)
    return (end - start) / 1000


def _rate(amount: float, duration_s: float | None) -> float | None:
    return amount / duration_s if duration_s else None


def _error_kind(record: RequestRecord) -> str:
    kind = record.error_kind or "unknown"
    if kind == "http" and record.http_status is not None:
        return f"http_{record.http_status}"
    return kind


def _error_counts(measured: Sequence[RequestRecord]) -> dict[str, int]:
    counts = Counter(_error_kind(r) for r in measured if not r.ok and r.error_kind != CANCELLED)
    return dict(sorted(counts.items()))


def _throughput(ok: Sequence[RequestRecord], duration_s: float | None) -> dict[str, float | None]:
    output = sum(r.output_tokens or 0 for r in ok)
    prompt = sum(r.prompt_tokens or 0 for r in ok)  # unknown prompt sizes count 0
    return {
        "requests_per_s": _rate(len(ok), duration_s),
        "output_tokens_per_s": _rate(output, duration_s),
        "total_tokens_per_s": _rate(prompt + output, duration_s),
    }


def _latencies(ok: Sequence[RequestRecord], *, open_loop: bool) -> dict[str, Distribution | None]:
    scheduled = distribution(_values(ok, "e2e_from_scheduled_ms")) if open_loop else None
    first = distribution(_values(ok, "ttft_from_scheduled_ms")) if open_loop else None
    return {
        "ttft_ms": distribution(_values(ok, "ttft_ms")),
        "itl_ms": distribution(list(chain.from_iterable(map(attrgetter("itl_ms"), ok)))),
        "tpot_ms": distribution(_values(ok, "tpot_ms")),
        "e2e_ms": distribution(_values(ok, "e2e_ms")),
        "e2e_from_scheduled_ms": scheduled,
        "ttft_from_scheduled_ms": first,
    }


def _bounds(slo: Mapping[str, Any]) -> dict[str, Mapping[str, float]]:
    return {metric: slo[metric] for metric in LATENCY_METRICS if slo.get(metric)}


def _goodput(
    ok: Sequence[RequestRecord], total: int, duration_s: float | None, slo: Mapping[str, Any]
) -> dict[str, Any]:
    good = len(_good(ok, _bounds(slo)))
    return {
        "requests": good,
        "requests_per_s": _rate(good, duration_s),
        "share": good / total if total else None,
    }


def meets_latency_slo(record: RequestRecord, slo: Mapping[str, Any]) -> bool:
    """Goodput test: ok, and within every latency bound of `slo` by its own values.

    A one-valued metric (TTFT, TTFO, TPOT, E2E) must be <= the strictest bound given for it,
    whatever statistic the bound names; for ITL each named statistic of the request's own gaps
    must be within its bound. A missing TTFT/TTFO/E2E fails (no answer text: no TTFO); a
    missing TPOT/ITL of a streamed answer (fewer than 2 tokens) passes; an answer that was not
    streamed fails a TTFT, TTFO, TPOT or ITL bound (no chunk timings: no data, not a pass).
    """
    return bool(_good([record], _bounds(slo)))


def _good(
    records: Sequence[RequestRecord], bounds: Mapping[str, Mapping[str, float]]
) -> list[RequestRecord]:
    # One pass per metric over the survivors, not one call per record: 100k records stay fast.
    good = [r for r in records if r.ok]
    for metric, limits in bounds.items():
        ceiling = min(limits.values())
        if metric in ("itl_ms", "tpot_ms"):
            # A non-streamed answer has no chunk arrivals: its pace is unknown, so it cannot be
            # shown to meet the bound (no data is not a pass).
            good = [r for r in good if r.streamed is not False]
        if metric == "itl_ms":
            good = [r for r in good if _gaps_within(r.itl_ms, limits, ceiling)]
        else:
            # One streamed output token gives no TPOT: no inter-token time that could be slow.
            good = _within(good, attrgetter(metric), ceiling, may_lack=metric == "tpot_ms")
    return good


def _within(
    records: list[RequestRecord],
    get: Callable[[RequestRecord], float | None],
    ceiling: float,
    *,
    may_lack: bool,
) -> list[RequestRecord]:
    return [
        r
        for r in records
        if ((v := get(r)) is None and may_lack) or (v is not None and v <= ceiling)
    ]


def _gaps_within(gaps: Sequence[float], limits: Mapping[str, float], ceiling: float) -> bool:
    # No gap, no inter-token time that could be too slow. No statistic of the gaps exceeds the
    # largest one, so most requests need no sort.
    if not gaps or max(gaps) <= ceiling:
        return True
    ordered = sorted(gaps)
    return all(_own_stat(ordered, stat) <= limit for stat, limit in limits.items())


def _own_stat(ordered: Sequence[float], stat: str) -> float:
    if stat == "mean":
        return math.fsum(ordered) / len(ordered)
    if stat == "max":
        return ordered[-1]
    return _percentile(ordered, float(stat.removeprefix("p")))


def evaluate_slo(summary: Mapping[str, Any], slo: Mapping[str, Any],
                 ttfo: Sequence[float] | None = None) -> dict[str, Any]:
    """Each SLO bound against the summary: `{"passed", "status", "checks"}`.

    A check's `status` is `pass`, `fail`, or `no_data` when the summary has no value to judge
    (e.g. TPOT of answers that were not streamed, TTFT when no request succeeded). No data is
    never a pass: the SLO's status is `fail` when a check failed, else `no_data` when one had
    no data, else `pass`; `passed` is true only for `pass`. `ttfo`: see reasoning.ttfo_check."""
    checks = [
        (metric == "ttfo_ms" and ttfo_check(stat, limit, summary, ttfo))
        or _check(metric, stat, limit, (summary.get(metric) or {}).get(stat), upper=True)
        for metric, limits in _bounds(slo).items()
        for stat, limit in limits.items()
    ]
    if "error_rate" in slo:
        checks.append(_check("error_rate", None, slo["error_rate"], summary.get("error_rate")))
    if "min_output_tokens_per_s" in slo:
        value = (summary.get("throughput") or {}).get("output_tokens_per_s")
        limit = slo["min_output_tokens_per_s"]
        checks.append(_check("min_output_tokens_per_s", None, limit, value, upper=False))
    statuses = {c["status"] for c in checks}
    status = next((st for st in (FAIL, NO_DATA) if st in statuses), PASS)
    return {"passed": status == PASS, "status": status, "checks": checks}


def _check(
    metric: str, stat: str | None, limit: float, value: float | None, *, upper: bool = True
) -> dict[str, Any]:
    within = value is not None and (value <= limit if upper else value >= limit)
    status = NO_DATA if value is None else PASS if within else FAIL
    return {"metric": metric, "stat": stat, "limit": limit, "value": value, "passed": within,
            "status": status}


def _client(health: ClientHealth | None, threshold_ms: float) -> dict[str, Any]:
    """client_bound from the load generator's own lateness only: send lag (from when a request
    could go, so never a max_concurrency queue, see client_queue_ms) and event-loop delay."""
    lag = distribution(health.scheduling_lag_ms if health else [])
    loop = distribution(health.loop_delay_ms if health else [])
    reasons = [
        f"{label} p99 {p99:.1f} ms > {threshold_ms:g} ms"
        for label, dist in (("send lag", lag), ("event-loop delay", loop))
        if (p99 := dist["p99"]) is not None and p99 > threshold_ms
    ]
    return {
        "scheduling_lag_ms": lag,
        "loop_delay_ms": loop,
        "threshold_ms": threshold_ms,
        "client_bound": bool(reasons),
        "reason": "; ".join(reasons) or None,
    }
