"""Repetitions (issue 13 §2): the t interval, the median merge, and the job's metrics block."""

from __future__ import annotations

import io
import math
import statistics
from typing import Any

import jsonschema
import pytest

from runner.inventory.config import Server
from runner.load.records import RequestRecord
from runner.plan.expand import Job
from runner.report.timeline import client_series, in_sequence
from runner.run.executor import JobSpec
from runner.run.metrics import summarize
from runner.run.progress import Live
from runner.run.recap import job_cells, repeat_note
from runner.run.repeat import (
    INTERVAL_PATHS,
    merge_metrics,
    number_at,
    t_interval,
    t_quantile,
)
from runner.run.validity import judge_validity
from runner.schema import load_schema


@pytest.mark.parametrize(("df", "level", "expected"), [
    # Student t critical values t_{(1+level)/2, df} (any statistics table, e.g. NIST §1.3.6.7.2)
    (1, 0.95, 12.706), (2, 0.95, 4.303), (3, 0.95, 3.182), (4, 0.95, 2.776),
    (5, 0.95, 2.571), (9, 0.95, 2.262), (29, 0.95, 2.045), (99, 0.95, 1.984),
    (2, 0.99, 9.925), (10, 0.99, 3.169), (1, 0.90, 6.314), (30, 0.90, 1.697),
])
def test_t_quantile_matches_the_tables(df: int, level: float, expected: float) -> None:
    assert t_quantile(level, df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_tends_to_the_normal_and_refuses_nonsense() -> None:
    assert 1.96 < t_quantile(0.95, 99) < t_quantile(0.95, 98) < 2.0
    for df, level in ((0, 0.95), (3, 1.0), (3, 0.0)):
        with pytest.raises(ValueError):
            t_quantile(level, df)


def test_t_interval_is_mean_plus_minus_t_s_over_root_n() -> None:
    values = [48.0, 50.0, 52.0]  # mean 50, s 2: 50 ± 4.303 * 2 / √3
    low, high = t_interval(values) or (0, 0)
    half = 4.3027 * 2 / math.sqrt(3)
    assert (low, high) == (pytest.approx(50 - half, abs=1e-3), pytest.approx(50 + half, abs=1e-3))
    five = [10.0, 11.0, 12.0, 13.0, 14.0]
    low5, high5 = t_interval(five) or (0, 0)
    assert high5 - low5 == pytest.approx(2 * 2.7764 * statistics.stdev(five) / math.sqrt(5),
                                         abs=1e-3)
    assert t_interval([7.0, 7.0]) == (7.0, 7.0)
    assert t_interval([1.0]) is None and t_interval([]) is None


def records(ttft: float, n: int = 12, failed: int = 0) -> list[RequestRecord]:
    out = [RequestRecord(index=i, sent_ms=i * 10.0, ttft_ms=ttft + i % 3, itl_ms=[2.0] * 7,
                         e2e_ms=ttft + 14, output_tokens=8, output_tokens_source="usage",
                         content_chunks=8, streamed=True, ok=True) for i in range(n)]
    return out + [RequestRecord(index=n + i, sent_ms=(n + i) * 10.0, ok=False,
                                error_kind="timeout", error="t") for i in range(failed)]


def repetition(ttft: float, failed: int = 0) -> dict[str, Any]:
    metrics = summarize(records(ttft, failed=failed))
    metrics["gateway"] = None
    metrics["validity"] = judge_validity(metrics)
    return metrics


def test_merge_takes_medians_keeps_counts_whole_and_gives_intervals() -> None:
    runs = [repetition(100.0), repetition(110.0, failed=1), repetition(90.0)]
    merged = merge_metrics(runs)
    assert merged["ttft_ms"]["p50"] == statistics.median(r["ttft_ms"]["p50"] for r in runs)
    assert merged["ttft_ms"]["p50"] == runs[0]["ttft_ms"]["p50"]
    # 12, 13, 12 requests: the (lower) median stays an integer
    assert merged["requests"]["total"] == 12 and isinstance(merged["requests"]["total"], int)
    reps = merged["repetitions"]
    assert (reps["count"], reps["method"], reps["level"]) == (3, "student_t", 0.95)
    assert reps["per_repetition"] == runs
    values = [r["ttft_ms"]["p50"] for r in runs]
    assert reps["intervals"]["ttft_ms.p50"] == list(t_interval(values) or ())
    low, high = reps["intervals"]["ttft_ms.p50"]
    assert low < 100 < high
    assert set(reps["intervals"]) <= set(INTERVAL_PATHS)
    assert "throughput.output_tokens_per_s" in reps["intervals"]
    jsonschema.validate({"metrics": merged}, _metrics_only())


def test_a_leaf_missing_or_null_in_a_repetition_takes_the_others_median() -> None:
    merged = merge_metrics([{"a": {"x": 1.0}, "b": None}, {"a": {"x": 3.0, "y": "s"}, "b": 0.5},
                            {"a": {"x": 2.0}, "b": 0.25}])
    assert merged["a"] == {"x": 2.0, "y": "s"}
    assert merged["b"] == pytest.approx(0.375)
    assert number_at(merged, "a.x") == 2.0 and number_at(merged, "a.y") is None
    # a count one repetition lacks is 0 there: one timeout in one of three is no median timeout
    errors = merge_metrics([{"errors": {"timeout": 1}}, {"errors": {}}, {"errors": {}}])
    assert errors["errors"] == {}
    assert merge_metrics([{"errors": {"http": 2}}, {"errors": {"http": 3}},
                          {"errors": {}}])["errors"] == {"http": 2}


def test_the_verdict_is_the_worst_repetitions() -> None:
    valid = {"verdict": "valid", "reasons": []}
    invalid = {"verdict": "invalid", "reasons": [{"code": "client_bound"}]}
    degraded = {"verdict": "degraded", "reasons": [{"code": "short_outputs"}]}
    merged = merge_metrics([{"validity": valid}, {"validity": degraded},
                            {"validity": invalid}, {"validity": valid}])
    assert merged["validity"] == invalid
    assert merge_metrics([{"validity": valid}, {"validity": valid}])["validity"] == valid


def test_the_recap_shows_the_repetitions_and_their_intervals() -> None:
    merged = merge_metrics([repetition(100.0), repetition(104.0), repetition(96.0)])
    summary = {"benchmark": "b", "model": "m", "point": {}, "params": {"concurrency": 1},
               "status": "ok", "error": None, "metrics": merged}
    note = repeat_note(summary) or ""
    low, high = merged["repetitions"]["intervals"]["ttft_ms.p50"]
    assert note.startswith("×3 (95% CI TTFT p50 ") and f"{low:.1f}-{high:.1f} ms" in note
    assert note.endswith(" tok/s)")
    assert note in job_cells(summary)[-1]
    assert repeat_note({**summary, "metrics": repetition(100.0)}) is None


def _metrics_only() -> dict[str, Any]:
    schema = load_schema("result")
    return {"$defs": schema["$defs"], "type": "object",
            "properties": {"metrics": {"$ref": "#/$defs/metrics"}}}


def test_the_live_line_counts_every_repetitions_requests() -> None:
    spec = JobSpec(Job("b/m", "slug", "b", "m", {}, {"requests": 3, "repeat": 4}),
                   Server("s", "http://127.0.0.1:9"))
    live = Live(1, io.StringIO())
    live.job_started(spec, 1)
    assert live.goal == 12


def test_a_record_names_its_repetition_only_in_a_repeated_job() -> None:
    once = RequestRecord(index=0, ok=True)
    assert "repetition" not in once.to_json()  # a job run once: its log as before
    third = RequestRecord(index=0, ok=True, repetition=3)
    assert third.to_json()["repetition"] == 3
    assert RequestRecord.from_json(third.to_json()).repetition == 3
    assert RequestRecord.from_json(once.to_json()).repetition is None


def test_the_timeline_lays_repetitions_end_to_end() -> None:
    def sent(at_ms: float, number: int | None) -> RequestRecord:
        return RequestRecord(index=0, ok=True, sent_ms=at_ms, e2e_ms=500.0, ttft_ms=10.0,
                             output_tokens=2, repetition=number)

    once = [sent(0.0, None), sent(1000.0, None)]
    assert in_sequence(once) == once
    assert client_series(once)["started"] == [1, 1]
    repeated = [sent(0.0, 1), sent(1000.0, 1), sent(0.0, 2), sent(1000.0, 2)]
    moved = in_sequence(repeated)
    assert [r.sent_ms for r in moved] == [0.0, 1000.0, 1500.0, 2500.0]
    assert [r.sent_ms for r in repeated] == [0.0, 1000.0, 0.0, 1000.0]  # the log is untouched
    # sent at 0, 1, 1.5 and 2.5 s: not both repetitions over one another ([2, 2])
    assert client_series(repeated)["started"] == [1, 2, 1]


def test_the_slo_verdict_is_judged_again_on_the_medians() -> None:
    slo = {"ttft_ms": {"p50": 105.0}}
    runs = []
    for ttft in (110.0, 100.0, 101.0):  # the first repetition misses, the median does not
        metrics = summarize(records(ttft), slo=slo)
        metrics["validity"] = judge_validity(metrics)
        runs.append(metrics)
    assert runs[0]["slo"]["passed"] is False
    merged = merge_metrics(runs, slo)
    assert merged["slo"]["passed"] is True
    assert merged["slo"]["checks"][0]["value"] == merged["ttft_ms"]["p50"]
    assert merge_metrics(runs)["slo"]["passed"] is False  # without the SLO: the first's, as is


def prefixed(achieved: float, **extra: Any) -> dict[str, Any]:
    """A repetition's metrics: its prefix_cache block (expected 0.8) and its own verdict."""
    block = {"expected": 0.8, "achieved": achieved, "hit_tokens": achieved * 100,
             "queried_tokens": 100.0, "gap": round(achieved - 0.8, 4), "threshold": 0.1,
             "exceeded": abs(achieved - 0.8) > 0.1}
    metrics = {"prefix_cache": block, **extra}
    return {**metrics, "validity": judge_validity(metrics)}


def test_a_repeated_jobs_prefix_cache_gap_is_judged_on_the_median_rates() -> None:
    # one cold repetition of three: its own verdict says so, the job's median does not
    runs = [prefixed(0.6), prefixed(0.8), prefixed(0.79)]
    assert [r["validity"]["verdict"] for r in runs] == ["degraded", "valid", "valid"]
    merged = merge_metrics(runs)
    assert merged["prefix_cache"]["achieved"] == 0.79 and merged["prefix_cache"]["gap"] == -0.01
    assert merged["prefix_cache"]["exceeded"] is False
    assert merged["validity"] == {"verdict": "valid", "reasons": []}
    # two of three short: the median is, and its figure is the median's
    merged = merge_metrics([prefixed(0.6), prefixed(0.5), prefixed(0.8)])
    [reason] = merged["validity"]["reasons"]
    assert reason["code"] == "prefix_cache_gap" and merged["prefix_cache"]["exceeded"] is True
    assert reason["figure"].startswith("prefix-cache hit rate 0.60 achieved vs 0.80 expected")
    # other reasons stay the worst repetition's
    bound = {"client": {"client_bound": True, "reason": "event-loop delay"}}
    merged = merge_metrics([prefixed(0.8, **bound), prefixed(0.8), prefixed(0.8)])
    assert [r["code"] for r in merged["validity"]["reasons"]] == ["client_bound"]
