"""A job's reasoning split (issue 14 §3): time to the first answer token beside TTFT, and the
reasoning and answer token counts the server's usage gave."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runner.load.records import RequestRecord

Distribution = dict[str, float | int | None]


def reasoning_metrics(ok: Sequence[RequestRecord],
                      distribution: Callable[[Sequence[float]], Distribution]) -> dict[str, Any]:
    """The summary's `ttfo_ms` and `reasoning` keys over the successful requests `ok` (see
    schemas/result.schema.json `$defs.metrics`).

    `ttfo_ms`: AIPerf's "time to first output token" (send -> first answer chunk, reasoning
    not counted), streamed answers only. `reasoning`: how many requests reasoned (usage
    reasoning_tokens > 0, or reasoning chunks streamed), the distribution of usage
    `completion_tokens_details.reasoning_tokens`, and of answer tokens (output_tokens from
    usage minus reasoning tokens; a claim of more reasoning than output tokens is impossible,
    counted `inconsistent` and left out). Token counts come from usage only, never guessed."""
    reported = [(r, r.reasoning_tokens) for r in ok if r.reasoning_tokens is not None]
    inconsistent = sum(r.output_tokens is not None and n > r.output_tokens for r, n in reported)
    answers = [r.output_tokens - n for r, n in reported
               if r.output_tokens_source == "usage" and r.output_tokens is not None
               and r.output_tokens >= n]
    reasoned = [r for r in ok if (r.reasoning_tokens or 0) > 0 or (r.reasoning_chunks or 0) > 0]
    streamed = [r for r in ok if r.reasoning_chunks is not None]
    chunks = sum(r.reasoning_chunks or 0 for r in streamed)
    return {
        "ttfo_ms": distribution([r.ttfo_ms for r in ok if r.ttfo_ms is not None]),
        "reasoning": {
            "requests_with_reasoning": len(reasoned),
            "reasoning_tokens": distribution([n for _, n in reported]),
            "answer_tokens": distribution(answers),
            "reasoning_chunks": chunks,
            "answer_chunks": sum(r.content_chunks for r in streamed) - chunks,
            "inconsistent": inconsistent,
            "source": _source(len(reported), len(ok)),
            "reason": _reason(len(reported), len(ok), len(reasoned), inconsistent),
            "unanswered": sum(r.ttfo_ms is None for r in streamed),
        },
    }


def ttfo_for_slo(ok: Sequence[RequestRecord]) -> list[float]:
    """The TTFOs a `ttfo_ms` SLO check judges, in order (ms): every ok streamed request's, one
    that brought no answer text (reasoning cut by max_tokens) as infinitely late: it misses any
    bound (README, Reasoning models). Records of a runner before TTFO existed (no
    reasoning_chunks) are left out: their TTFO is unknown, not missing."""
    return sorted(math.inf if r.ttfo_ms is None else r.ttfo_ms
                  for r in ok if r.reasoning_chunks is not None)


def ttfo_check(stat: str, limit: float, summary: Mapping[str, Any],
               ordered: Sequence[float] | None) -> dict[str, Any] | None:
    """The SLO check of `stat` of ttfo_ms when some answers never came (`unanswered` > 0 in
    the summary's `reasoning`): the statistic over `ordered` (ttfo_for_slo), or, without it (a
    merge of repetitions' medians), the summary's distribution's unless the statistic lands
    on an unanswered request. Its value is null and it fails when it lands there (the mean
    and max always do). None when every answer came: the ordinary check applies."""
    missing = int((summary.get("reasoning") or {}).get("unanswered") or 0)
    if not missing:
        return None
    value: float | None = _statistic(ordered, stat) if ordered is not None else None
    if ordered is None:
        answered = int((summary.get("ttfo_ms") or {}).get("count") or 0)
        reached = _statistic([0.0] * answered + [math.inf] * missing, stat)
        value = reached if math.isinf(reached) else (summary.get("ttfo_ms") or {}).get(stat)
    if value is not None and math.isinf(value):
        value = None
    within = value is not None and value <= limit
    return {"metric": "ttfo_ms", "stat": stat, "limit": limit, "value": value, "passed": within,
            "status": "pass" if within else "fail", "unanswered": missing}


def _statistic(ordered: Sequence[float], stat: str) -> float:
    """mean, max or pN (linear between closest ranks, as runner.run.metrics.distribution) of
    the sorted `ordered`, infinity when it depends on an infinite value."""
    if stat == "mean":
        return math.fsum(ordered) / len(ordered)
    if stat == "max":
        return ordered[-1]
    rank = (len(ordered) - 1) * float(stat.removeprefix("p")) / 100
    low = math.floor(rank)
    high, part = min(low + 1, len(ordered) - 1), rank - low
    if math.isinf(ordered[low]) or (part and math.isinf(ordered[high])):
        return math.inf
    return ordered[low] + (ordered[high] - ordered[low]) * part


def _source(reported: int, ok: int) -> str | None:
    """`usage` when every successful answer's usage gave reasoning_tokens, `usage_partial`
    when some did, None when none did."""
    if not reported:
        return None
    return "usage" if reported == ok else "usage_partial"


def _reason(reported: int, ok: int, reasoned: int, inconsistent: int) -> str | None:
    """Why the reasoning token counts cannot be taken as the job's (None: they can)."""
    if inconsistent:
        return (f"{inconsistent} answers claimed more reasoning tokens than completion tokens: "
                "left out of answer_tokens")
    if reasoned and not reported:
        return (f"{reasoned} answers streamed reasoning, but the server's usage gave no "
                "completion_tokens_details.reasoning_tokens: reasoning and answer token counts "
                "are unknown")
    if 0 < reported < ok:
        return f"only {reported} of {ok} answers' usage gave reasoning_tokens"
    return None
