"""A repeated job's numbers (issue 13 §2, pure): the median over repetitions of every numeric
statistic, and a Student t confidence interval across repetitions for the headline ones."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from runner.run.metrics import evaluate_slo
from runner.run.prefixhits import merged_prefix_cache
from runner.run.validity import DEGRADED, INVALID, RULES, VALID, judge_validity

REPEAT_METHOD = "student_t"
REPEAT_LEVEL = 0.95
# The statistics that get an interval (the compare metrics of a job's `metrics`), as dotted
# paths: runner.report.compare.Metric.index_name.
INTERVAL_PATHS: tuple[str, ...] = (
    *(f"{m}_ms.{s}" for m in ("ttft", "tpot", "itl", "e2e")
      for s in ("p50", "p90", "p95", "p99", "mean")),
    "throughput.output_tokens_per_s", "throughput.requests_per_s",
    "throughput.total_tokens_per_s", "throughput.inputs_per_s", "throughput.prompt_tokens_per_s",
    "goodput.requests_per_s", "error_rate",
)
_RANK = {VALID: 0, DEGRADED: 1, INVALID: 2}


def t_quantile(level: float, df: int) -> float:
    """The two-sided Student t critical value t with P(|T| <= t) = `level` for `df` degrees of
    freedom (t_{(1+level)/2, df}: 12.706 for df 1, 4.303 for df 2, 2.776 for df 4 at 95%).

    Exact up to the bisection's 1e-12: P(|T| <= t) is Abramowitz & Stegun 26.7.3-26.7.4's
    finite series for integer df. ValueError for df < 1 or a level outside (0, 1)."""
    if df < 1 or not 0 < level < 1:
        raise ValueError(f"t quantile needs df >= 1 and 0 < level < 1, got {df}, {level}")
    return _t_quantile(level, df)


@lru_cache(maxsize=256)
def _t_quantile(level: float, df: int) -> float:
    low, high = 0.0, 1.0
    for _ in range(64):  # grow: a 0.999999 level at df 1 needs ~3e5
        if _t_central(high, df) >= level:
            break
        low, high = high, high * 2
    for _ in range(200):
        mid = (low + high) / 2
        if high - low < 1e-12 * max(1.0, mid):
            break
        low, high = (mid, high) if _t_central(mid, df) < level else (low, mid)
    return (low + high) / 2


def _t_central(t: float, df: int) -> float:
    """P(|T| <= t) for integer df (Abramowitz & Stegun 26.7.3 for odd df, 26.7.4 for even)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2 == 0:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    if df == 1:
        return 2 / math.pi * theta
    term = total = math.cos(theta)
    for k in range(1, (df - 1) // 2):
        term *= c2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + s * total)


def t_interval(values: Sequence[float], level: float = REPEAT_LEVEL) -> tuple[float, float] | None:
    """The Student t interval of the mean of `values` (the repetitions' values of one
    statistic): mean ± t_{(1+level)/2, n-1} · s / √n, with s the sample standard deviation
    (Student 1908; NIST/SEMATECH e-Handbook of Statistical Methods §7.2.2.1). None for fewer
    than 2 values."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t_quantile(level, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def merge_metrics(runs: Sequence[Mapping[str, Any]],
                  slo: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One metrics block for the repetitions' `runs` (each a runner.run.metrics.summarize block
    with its validity): every numeric leaf is the median over the repetitions that have a
    number there (the lower median when they are all integers, so counts stay whole; a count
    a repetition lacks is 0 there, and left out when its median is 0); other
    leaves are the first repetition's that has the key. `validity` is the
    worst repetition's (invalid > degraded > valid; the first such repetition's reasons),
    but prefix_cache_gap (ON_MEDIANS) is judged on the medians: a shared-prefix job's
    `prefix_cache` gets its gap from its median rates (prefixhits.merged_prefix_cache).
    `slo` (the benchmark's): the SLO verdict is evaluated again on the medians, so it agrees
    with the numbers it quotes. Adds `repetitions`: {count, method, level, per_repetition,
    intervals}."""

    merged: dict[str, Any] = dict(median_tree(
        [{k: v for k, v in run.items() if k != "validity"} for run in runs]) or {})
    if slo:
        merged["slo"] = evaluate_slo(merged, slo)
    if "prefix_cache" in merged:
        merged["prefix_cache"] = merged_prefix_cache(merged["prefix_cache"])
    verdicts = [run["validity"] for run in runs if isinstance(run.get("validity"), Mapping)]
    if verdicts:
        merged["validity"] = _verdict(merged, verdicts)
    merged["repetitions"] = {"count": len(runs), "method": REPEAT_METHOD, "level": REPEAT_LEVEL,
                             "per_repetition": [dict(run) for run in runs],
                             "intervals": intervals(runs)}
    return merged


# Reasons judged on the repetitions' medians, as the figure they quote (the others are the
# worst repetition's): a shared prefix's hit rate (one cold repetition is not the job's rate).
ON_MEDIANS = frozenset({"prefix_cache_gap"})


def _verdict(merged: Mapping[str, Any],
             verdicts: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The worst repetition's verdict (the first such one's) leaving out the ON_MEDIANS
    reasons, with those reasons judged on `merged` (the medians); reasons invalid first, then
    in RULES order."""
    worst = max((_without_medians(v) for v in verdicts),
                key=lambda v: _RANK.get(str(v.get("verdict")), 0))
    added = [r for r in judge_validity(merged)["reasons"] if r["code"] in ON_MEDIANS]
    if not added:
        return worst
    order = {code: i for i, code in enumerate(RULES)}
    reasons = sorted([*worst.get("reasons", ()), *added], key=lambda r: (
        -_RANK.get(_severity(r), 0), order.get(str(r.get("code")), len(order))))
    return {"verdict": max(map(_severity, reasons), key=lambda s: _RANK.get(s, 0)),
            "reasons": reasons}


def _without_medians(verdict: Mapping[str, Any]) -> Mapping[str, Any]:
    """A repetition's verdict without its ON_MEDIANS reasons (as it is when it has none)."""
    reasons = list(verdict.get("reasons") or ())
    kept = [r for r in reasons if r.get("code") not in ON_MEDIANS]
    if len(kept) == len(reasons):
        return verdict
    return {"verdict": max(map(_severity, kept), key=lambda s: _RANK.get(s, 0), default=VALID),
            "reasons": kept}


def _severity(reason: Mapping[str, Any]) -> str:
    rule = RULES.get(str(reason.get("code")))
    return str(reason.get("severity") or (rule.severity if rule else VALID))


def intervals(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """INTERVAL_PATHS -> [low, high] across the repetitions that have a number there (paths with
    fewer than 2 such repetitions are left out)."""
    found = {}
    for path in INTERVAL_PATHS:
        values = [v for run in runs if (v := number_at(run, path)) is not None]
        ci = t_interval(values)
        if ci is not None:
            found[path] = [ci[0], ci[1]]
    return found


def number_at(data: Any, path: str) -> float | None:
    """The finite number at dotted `path` in `data`; None when there is none."""
    for key in path.split("."):
        data = data.get(key) if isinstance(data, Mapping) else None
    return float(data) if _number(data) else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_ABSENT = object()  # a key one repetition's block lacks


def median_tree(values: Sequence[Any]) -> Any:
    """The median of the repetitions' `values` of one leaf, or of a whole tree, key by key (see
    merge_metrics: counts stay whole, other leaves are the first repetition's)."""
    present = [v for v in values if v is not _ABSENT]
    maps = [v for v in present if isinstance(v, Mapping)]
    if maps and len(maps) == len([v for v in present if v is not None]):
        keys = dict.fromkeys(k for m in maps for k in m)
        merged = {k: median_tree([m.get(k, _ABSENT) for m in maps]) for k in keys}
        # a count whose median is 0, absent from some repetition, stays absent (as there)
        return {k: v for k, v in merged.items()
                if not (type(v) is int and v == 0 and any(k not in m for m in maps))}
    numbers = [v for v in present if _number(v)]
    if numbers and all(isinstance(v, int) for v in numbers):
        # counts stay whole; a count a repetition lacks (errors.timeout, say) is 0 there
        return statistics.median_low(numbers + [0] * (len(values) - len(present)))
    if numbers:
        return statistics.median(numbers)
    return next((v for v in present if v is not None), None)
