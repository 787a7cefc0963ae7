"""Metrics: distributions, warm-up and failures, window and throughput, goodput, SLO, health."""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner.load.records import ERROR_KINDS, OPTIONAL_FIELDS, ClientHealth, RequestRecord
from runner.run.metrics import (
    CLIENT_BOUND_THRESHOLD_MS,
    Expectation,
    distribution,
    evaluate_slo,
    meets_latency_slo,
    summarize,
)

REPO = Path(__file__).resolve().parents[2]
NONE_STATS = dict.fromkeys(("mean", "std", "min", "p50", "p90", "p95", "p99", "max"))


def ok(
    index: int = 0,
    *,
    sent: float = 0.0,
    ttft: float | None = 10.0,
    e2e: float | None = 100.0,
    out: int | None = 10,
    prompt: int | None = 5,
    itl: list[float] | None = None,
    source: str = "usage",
    **extra: Any,
) -> RequestRecord:
    """A successful request with round numbers."""
    return RequestRecord(
        index=index, sent_ms=sent, ttft_ms=ttft, e2e_ms=e2e, output_tokens=out,
        prompt_tokens=prompt, itl_ms=itl or [], output_tokens_source=source, ok=True, **extra,
    )


def failed(
    index: int = 0, kind: str | None = "timeout", status: int | None = None, **extra: Any
) -> RequestRecord:
    """A failed request of `kind` (and HTTP `status`)."""
    return RequestRecord(index=index, ok=False, error_kind=kind, http_status=status, **extra)


# ---------------------------------------------------------------------------------------------
# distribution


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], {"count": 0, **NONE_STATS}),
        ([5.0], {"count": 1, "mean": 5, "std": 0, "min": 5, "p50": 5, "p90": 5, "p95": 5,
                 "p99": 5, "max": 5}),
        # even count: h = (n-1)p/100 = 0.5 for p50 -> halfway; p90 -> 1 + 0.9 * (2 - 1)
        ([2.0, 1.0], {"count": 2, "mean": 1.5, "std": 0.5, "min": 1, "p50": 1.5, "p90": 1.9,
                      "p95": 1.95, "p99": 1.99, "max": 2}),
        # odd count, unsorted input: p90 h = 1.8 -> 2 + 0.8 * (3 - 2)
        ([3.0, 1.0, 2.0], {"count": 3, "mean": 2, "std": math.sqrt(2 / 3), "min": 1, "p50": 2,
                           "p90": 2.8, "p95": 2.9, "p99": 2.98, "max": 3}),
        ([1.0, 2.0, 3.0, 4.0], {"count": 4, "mean": 2.5, "std": math.sqrt(1.25), "min": 1,
                                "p50": 2.5, "p90": 3.7, "p95": 3.85, "p99": 3.97, "max": 4}),
        # p90 h = 3.6 -> 40 + 0.6 * 10; p99 h = 3.96 -> 40 + 0.96 * 10
        ([50.0, 10.0, 40.0, 20.0, 30.0], {"count": 5, "mean": 30, "std": math.sqrt(200),
                                          "min": 10, "p50": 30, "p90": 46, "p95": 48,
                                          "p99": 49.6, "max": 50}),
        ([7.0, 7.0, 7.0], {"count": 3, "mean": 7, "std": 0, "min": 7, "p50": 7, "p90": 7,
                           "p95": 7, "p99": 7, "max": 7}),
    ],
    ids=["empty", "one", "two", "three-unsorted", "four", "five", "constant"],
)
def test_distribution_table(values: list[float], expected: dict[str, Any]) -> None:
    result = distribution(values)
    assert list(result) == ["count", "mean", "std", "min", "p50", "p90", "p95", "p99", "max"]
    assert result == pytest.approx(expected)


def test_distribution_matches_statistics_inclusive_quantiles_and_pstdev() -> None:
    rng = random.Random(7)
    values = [rng.expovariate(0.01) for _ in range(1001)]
    cuts = statistics.quantiles(values, n=100, method="inclusive")  # numpy 'linear' == type 7
    result = distribution(values)
    for p in (50, 90, 95, 99):
        assert result[f"p{p}"] == pytest.approx(cuts[p - 1])
    assert result["std"] == pytest.approx(statistics.pstdev(values))
    assert result["mean"] == pytest.approx(statistics.fmean(values))


def test_distribution_keeps_integer_min_and_max() -> None:
    result = distribution([3, 1, 2])
    assert (result["min"], result["max"]) == (1, 3)
    assert isinstance(result["min"], int)


# ---------------------------------------------------------------------------------------------
# counting: warm-up, failures, error kinds, token sources


def test_warmup_requests_only_count_as_warmup() -> None:
    records = [
        ok(0, warmup=True, sent=0, ttft=9000, e2e=9500),
        failed(1, warmup=True, kind="connection", sent_ms=100.0),
        ok(2, sent=10_000, ttft=20, e2e=1000, out=4),
    ]
    s = summarize(records)
    assert s["requests"] == {"total": 1, "ok": 1, "failed": 0, "cancelled": 0, "warmup": 2}
    assert (s["error_rate"], s["errors"]) == (0, {})
    assert s["ttft_ms"]["count"] == 1 and s["ttft_ms"]["max"] == 20
    assert s["duration_s"] == pytest.approx(1.0)  # window starts at the measured send
    assert s["output_tokens"]["count"] == 1


def test_cancelled_requests_have_no_outcome() -> None:
    """Requests the client cut (the end of duration_s, an interrupt) are counted, apart: not
    ok, not failed, out of error_rate, errors, goodput's share and every distribution."""
    records = [
        ok(0, ttft=10, e2e=100),
        failed(1, kind="timeout", e2e_ms=300.0),
        failed(2, kind="cancelled", sent_ms=50.0, ttft_ms=20.0, e2e_ms=900.0, output_tokens=7),
        failed(3, kind="cancelled", sent_ms=60.0, e2e_ms=890.0),
    ]
    s = summarize(records, slo={"ttft_ms": {"p95": 100}})
    assert s["requests"] == {"total": 4, "ok": 1, "failed": 1, "cancelled": 2, "warmup": 0}
    assert s["error_rate"] == 0.5 and s["errors"] == {"timeout": 1}
    assert s["goodput"]["share"] == 0.5
    assert s["ttft_ms"]["count"] == 1 and s["output_tokens"]["count"] == 1
    assert s["duration_s"] == pytest.approx(0.95)  # they were running: the window includes them


def test_only_cancelled_requests_give_no_error_rate() -> None:
    s = summarize([failed(0, kind="cancelled", e2e_ms=5.0)])
    assert s["requests"]["cancelled"] == 1 and s["requests"]["failed"] == 0
    assert (s["error_rate"], s["errors"]) == (None, {})


def test_retry_after_pauses_are_counted_and_summed() -> None:
    assert summarize([ok(0)], pauses_s=[1.0, 0.25])["retry_after"] == {"pauses": 2,
                                                                       "paused_s": 1.25}
    assert summarize([])["retry_after"] == {"pauses": 0, "paused_s": 0.0}


def test_failures_never_enter_latencies_but_count_in_error_rate() -> None:
    records = [
        ok(0, ttft=10, e2e=100, itl=[5.0]),
        ok(1, ttft=20, e2e=200, itl=[6.0]),
        ok(2, ttft=30, e2e=300, itl=[7.0]),
        # a truncated stream had a first token and an end, but is not a success
        failed(3, kind="truncated", ttft_ms=5000.0, e2e_ms=9000.0, itl_ms=[999.0],
               output_tokens=50),
    ]
    s = summarize(records)
    assert s["requests"] == {"total": 4, "ok": 3, "failed": 1, "cancelled": 0, "warmup": 0}
    assert s["error_rate"] == 0.25
    assert (s["ttft_ms"]["count"], s["ttft_ms"]["max"]) == (3, 30)
    assert (s["e2e_ms"]["count"], s["e2e_ms"]["max"]) == (3, 300)
    assert (s["itl_ms"]["count"], s["itl_ms"]["max"]) == (3, 7)
    assert s["output_tokens"]["max"] == 10


def test_error_counts_by_kind_with_http_split_by_status() -> None:
    records = [
        failed(0, "http", 500), failed(1, "http", 500), failed(2, "http", 429),
        failed(3, "timeout"), failed(4, "truncated"), failed(5, "http", None),
        failed(6, None), ok(7),
    ]
    errors = summarize(records)["errors"]
    assert errors == {"http": 1, "http_429": 1, "http_500": 2, "timeout": 1, "truncated": 1,
                      "unknown": 1}
    assert list(errors) == sorted(errors)


def test_output_token_sources_count_ok_requests() -> None:
    records = [ok(0), ok(1), ok(2, source="chunks"), failed(3, output_tokens_source="chunks")]
    assert summarize(records)["output_tokens_source"] == {"usage": 2, "chunks": 1,
                                                          "usage_inconsistent": 0}


# ---------------------------------------------------------------------------------------------
# window and throughput


def test_window_and_throughput_on_hand_made_records() -> None:
    records = [
        ok(0, sent=1000, e2e=2000, out=10, prompt=5),  # ends 3000
        ok(1, sent=1500, e2e=500, out=20, prompt=None),  # ends 2000; prompt unknown counts 0
        failed(2, sent_ms=2000.0, e2e_ms=3000.0),  # a failed request still ends the window: 5000
        failed(3, sent_ms=4500.0),  # no e2e: ends at its send
    ]
    s = summarize(records)
    assert s["duration_s"] == pytest.approx(4.0)
    assert s["throughput"] == pytest.approx(
        {"requests_per_s": 0.5, "output_tokens_per_s": 7.5, "total_tokens_per_s": 8.75,
         "inputs_per_s": None, "prompt_tokens_per_s": 1.25}
    )
    assert s["prompt_tokens"]["count"] == 1


def test_inputs_per_s_counts_the_inputs_of_ok_embeddings_requests() -> None:
    records = [ok(0, sent=0, e2e=1000, out=None, prompt=40), ok(1, sent=0, e2e=2000, prompt=40),
               failed(2, sent_ms=0.0, e2e_ms=500.0)]
    for record in records:
        record.inputs = 4
    s = summarize(records)
    assert s["throughput"]["inputs_per_s"] == pytest.approx(8 / 2.0)  # 2 ok x 4 inputs over 2 s
    assert s["throughput"]["prompt_tokens_per_s"] == pytest.approx(80 / 2.0)


def test_window_ends_at_the_send_of_a_late_failure_without_e2e() -> None:
    records = [ok(0, sent=0, e2e=1000), failed(1, sent_ms=3000.0)]
    assert summarize(records)["duration_s"] == pytest.approx(3.0)


def test_throughput_is_none_for_a_zero_window() -> None:
    s = summarize([failed(0, sent_ms=50.0)])
    assert s["duration_s"] == 0
    assert s["throughput"] == dict.fromkeys(
        ("requests_per_s", "output_tokens_per_s", "total_tokens_per_s", "inputs_per_s",
         "prompt_tokens_per_s")
    )


# ---------------------------------------------------------------------------------------------
# TPOT and open loop


def test_tpot_excludes_requests_with_fewer_than_two_output_tokens() -> None:
    records = [
        ok(0, ttft=100, e2e=900, out=1),  # no TPOT
        ok(1, ttft=100, e2e=150, out=2),  # (150 - 100) / 1 = 50
        ok(2, ttft=100, e2e=500, out=5),  # (500 - 100) / 4 = 100
        ok(3, ttft=100, e2e=500, out=None),  # unknown count: no TPOT
    ]
    tpot = summarize(records)["tpot_ms"]
    assert (tpot["count"], tpot["min"], tpot["max"], tpot["mean"]) == (2, 50, 100, 75)


def test_an_answer_in_one_piece_has_no_tpot() -> None:
    # Without streaming all tokens arrive at once: TTFT = E2E, and a TPOT of 0 would be a lie.
    whole = ok(0, ttft=400, e2e=400, out=10, content_chunks=1)
    assert whole.tpot_ms is None
    metrics = summarize([whole])
    assert metrics["tpot_ms"]["count"] == 0 and metrics["tpot_ms"]["p50"] is None
    assert metrics["ttft_ms"]["p50"] == 400


def test_e2e_from_scheduled_only_in_open_loop() -> None:
    closed = summarize([ok(0, sent=5, e2e=100)])
    assert closed["e2e_from_scheduled_ms"] is None
    records = [
        ok(0, scheduled_ms=0.0, sent=5, e2e=100),  # queued 5 ms: 105
        ok(1, scheduled_ms=10.0, sent=10, e2e=50),  # on time: 50
        failed(2, scheduled_ms=20.0, sent_ms=80.0, e2e_ms=10.0),
    ]
    s = summarize(records)
    scheduled = s["e2e_from_scheduled_ms"]
    assert (scheduled["count"], scheduled["min"], scheduled["max"]) == (2, 50, 105)
    assert (s["e2e_ms"]["min"], s["e2e_ms"]["max"]) == (50, 100)


def test_open_loop_with_only_failures_has_an_empty_scheduled_distribution() -> None:
    s = summarize([failed(0, scheduled_ms=0.0, sent_ms=1.0)])
    assert s["e2e_from_scheduled_ms"] == {"count": 0, **NONE_STATS}
    assert s["ttft_from_scheduled_ms"] == {"count": 0, **NONE_STATS}


def test_ttft_from_scheduled_includes_the_queue_in_open_loop_only() -> None:
    assert summarize([ok(0, sent=5, ttft=10)])["ttft_from_scheduled_ms"] is None
    records = [ok(0, scheduled_ms=0.0, sent=300, ttft=20, queue_ms=295.0),
               ok(1, scheduled_ms=100.0, sent=101, ttft=30, queue_ms=0.0)]
    s = summarize(records)
    assert (s["ttft_from_scheduled_ms"]["min"], s["ttft_from_scheduled_ms"]["max"]) == (31, 320)
    assert (s["ttft_ms"]["min"], s["ttft_ms"]["max"]) == (20, 30)


def test_client_queue_is_every_measured_request_s_wait_for_a_slot() -> None:
    """Issue 10 §4: the wait for a max_concurrency slot is its own figure, failed requests'
    waits included (they waited all the same), warm-ups' not."""
    records = [ok(0, warmup=True, queue_ms=900.0), ok(1, scheduled_ms=0.0, queue_ms=0.0),
               ok(2, scheduled_ms=100.0, sent=400, queue_ms=298.0),
               failed(3, scheduled_ms=200.0, sent_ms=700.0, queue_ms=496.0)]
    queue = summarize(records)["client_queue_ms"]
    assert (queue["count"], queue["min"], queue["p50"], queue["max"]) == (3, 0.0, 298.0, 496.0)
    unlimited = summarize([ok(0, scheduled_ms=0.0), ok(1)])["client_queue_ms"]
    assert unlimited == {"count": 0, **NONE_STATS}


def test_the_window_opens_when_the_first_measured_request_is_due() -> None:
    """As vLLM's benchmark_duration: from the window's start (offset 0, the first arrival's due
    time, even when its send was late) to the last end, the last partial wave included."""
    records = [ok(0, warmup=True, sent=-500, e2e=400), ok(1, scheduled_ms=0.0, sent=40, e2e=100),
               ok(2, scheduled_ms=100.0, sent=140, e2e=860)]
    assert summarize(records)["duration_s"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# goodput


GAPS = [10.0, 10.0, 10.0, 100.0]  # mean 32.5, p50 10, p99 = 10 + 0.97 * 90 = 97.3, max 100


@pytest.mark.parametrize(
    ("record", "slo", "good"),
    [
        (ok(ttft=150), {"ttft_ms": {"p95": 500, "p50": 200}}, True),
        (ok(ttft=250), {"ttft_ms": {"p95": 500, "p50": 200}}, False),  # strictest bound: 200
        (ok(ttft=200), {"ttft_ms": {"p99": 200}}, True),  # bounds are inclusive
        (ok(ttft=None), {"ttft_ms": {"p99": 200}}, False),
        (failed(ttft_ms=1.0, e2e_ms=2.0), {"ttft_ms": {"p99": 200}}, False),
        (ok(e2e=1000), {"e2e_ms": {"max": 1000}}, True),
        (ok(e2e=1000.1), {"e2e_ms": {"max": 1000}}, False),
        (ok(ttft=10, e2e=5000), {"ttft_ms": {"p90": 50}, "e2e_ms": {"mean": 2000}}, False),
        (ok(ttft=100, e2e=400, out=4), {"tpot_ms": {"p90": 100}}, True),  # (400-100)/3 = 100
        (ok(ttft=100, e2e=400, out=3), {"tpot_ms": {"p90": 100}}, False),  # 150
        (ok(ttft=100, e2e=9000, out=1), {"tpot_ms": {"p90": 100}}, True),  # no TPOT to break
        # Not streamed: no chunk timings, nothing shows the pace held (no data is not a pass).
        (ok(ttft=None, e2e=400, out=1, streamed=False), {"tpot_ms": {"p90": 100}}, False),
        (ok(ttft=None, e2e=400, out=9, streamed=False), {"itl_ms": {"max": 100}}, False),
        (ok(ttft=None, e2e=400, out=9, streamed=False), {"e2e_ms": {"max": 400}}, True),
        (ok(ttft=None, e2e=400, out=9, streamed=False), {"ttft_ms": {"max": 400}}, False),
        (ok(itl=GAPS), {"itl_ms": {"p50": 20}}, True),
        (ok(itl=GAPS), {"itl_ms": {"max": 50}}, False),
        (ok(itl=GAPS), {"itl_ms": {"p99": 97.31}}, True),
        (ok(itl=GAPS), {"itl_ms": {"p99": 97}}, False),
        (ok(itl=GAPS), {"itl_ms": {"mean": 40}}, True),
        (ok(itl=GAPS), {"itl_ms": {"mean": 30}}, False),
        (ok(itl=GAPS), {"itl_ms": {"p50": 20, "mean": 30}}, False),
        (ok(itl=[60.0]), {"itl_ms": {"p50": 50, "max": 100}}, False),  # one gap: strictest bound
        (ok(itl=[]), {"itl_ms": {"max": 1}}, True),  # no gap to break
        (ok(), {"error_rate": 0.1}, True),  # no latency bound: ok is enough
    ],
)
def test_meets_latency_slo(record: RequestRecord, slo: dict[str, Any], good: bool) -> None:
    assert meets_latency_slo(record, slo) is good


def test_goodput_in_summary() -> None:
    slo = {"ttft_ms": {"p95": 100}, "error_rate": 0.5}
    records = [
        ok(0, sent=0, ttft=50, e2e=1000),
        ok(1, sent=0, ttft=150, e2e=1000),
        ok(2, sent=1000, ttft=100, e2e=1000),  # window: 0 .. 2000 ms
        failed(3, sent_ms=500.0),
    ]
    goodput = summarize(records, slo=slo)["goodput"]
    assert goodput == {"requests": 2, "requests_per_s": 1.0, "share": 0.5}


@pytest.mark.parametrize("slo", [None, {}, {"error_rate": 0.1, "min_output_tokens_per_s": 1}])
def test_no_goodput_without_latency_bounds(slo: dict[str, Any] | None) -> None:
    assert summarize([ok()], slo=slo)["goodput"] is None


# ---------------------------------------------------------------------------------------------
# SLO evaluation


def dist(**stats: float | None) -> dict[str, Any]:
    return {"count": 1, **NONE_STATS, **stats}


SUMMARY: dict[str, Any] = {
    "error_rate": 0.1,
    "throughput": {"output_tokens_per_s": 80.0},
    "ttft_ms": dist(p50=200.0, p95=512.3),
    "tpot_ms": dist(mean=20.0, max=45.0),
    "itl_ms": {"count": 0, **NONE_STATS},
    "e2e_ms": dist(p99=1000.0),
}


def check(metric: str, stat: str | None, limit: float, value: float | None, passed: bool
          ) -> dict[str, Any]:
    status = "no_data" if value is None else "pass" if passed else "fail"
    return {"metric": metric, "stat": stat, "limit": limit, "value": value, "passed": passed,
            "status": status}


def overall(checks: list[dict[str, Any]]) -> str:
    statuses = {c["status"] for c in checks}
    return "fail" if "fail" in statuses else "no_data" if "no_data" in statuses else "pass"


@pytest.mark.parametrize(
    ("slo", "passed", "checks"),
    [
        ({}, True, []),
        ({"ttft_ms": {"p95": 500}}, False, [check("ttft_ms", "p95", 500, 512.3, False)]),
        ({"ttft_ms": {"p50": 200, "p95": 600}}, True,
         [check("ttft_ms", "p50", 200, 200.0, True), check("ttft_ms", "p95", 600, 512.3, True)]),
        ({"tpot_ms": {"max": 40, "mean": 25}}, False,
         [check("tpot_ms", "max", 40, 45.0, False), check("tpot_ms", "mean", 25, 20.0, True)]),
        ({"itl_ms": {"p99": 50}}, False, [check("itl_ms", "p99", 50, None, False)]),  # no data
        ({"e2e_ms": {"p99": 1000}}, True, [check("e2e_ms", "p99", 1000, 1000.0, True)]),
        ({"error_rate": 0.1}, True, [check("error_rate", None, 0.1, 0.1, True)]),
        ({"error_rate": 0.05}, False, [check("error_rate", None, 0.05, 0.1, False)]),
        ({"min_output_tokens_per_s": 80}, True,
         [check("min_output_tokens_per_s", None, 80, 80.0, True)]),
        ({"min_output_tokens_per_s": 100}, False,
         [check("min_output_tokens_per_s", None, 100, 80.0, False)]),
        ({"e2e_ms": {"p99": 2000}, "error_rate": 0.2, "min_output_tokens_per_s": 50}, True,
         [check("e2e_ms", "p99", 2000, 1000.0, True), check("error_rate", None, 0.2, 0.1, True),
          check("min_output_tokens_per_s", None, 50, 80.0, True)]),
    ],
)
def test_evaluate_slo_table(slo: dict[str, Any], passed: bool, checks: list[Any]) -> None:
    assert evaluate_slo(SUMMARY, slo) == {"passed": passed, "status": overall(checks),
                                          "checks": checks}


@pytest.mark.parametrize(
    ("slo", "status"),
    [
        ({"itl_ms": {"p99": 50}}, "no_data"),
        ({"itl_ms": {"p99": 50}, "ttft_ms": {"p95": 500}}, "fail"),  # a measured miss wins
        ({"itl_ms": {"p99": 50}, "ttft_ms": {"p95": 600}}, "no_data"),  # never a pass
        ({"ttft_ms": {"p95": 600}}, "pass"),
    ],
)
def test_no_data_is_neither_a_pass_nor_a_measured_miss(slo: dict[str, Any], status: str) -> None:
    result = evaluate_slo(SUMMARY, slo)
    assert result["status"] == status
    assert result["passed"] is (status == "pass")


def test_an_slo_on_tpot_of_answers_that_were_not_streamed_is_no_data() -> None:
    # Seen: stream false gave TPOT 0.0 ms, so `tpot_ms: {p50: 1}` passed and --gate exited 0.
    whole = [ok(i, sent=i * 100.0, ttft=None, e2e=90.0, out=20, streamed=False)
             for i in range(4)]
    s = summarize(whole, slo={"tpot_ms": {"p50": 1}, "ttft_ms": {"p99": 1000}})
    assert s["tpot_ms"]["p50"] is None and s["ttft_ms"]["p50"] is None
    assert s["streamed"] == {"streamed": 0, "not_streamed": 4}
    assert s["slo"]["status"] == "no_data" and s["slo"]["passed"] is False
    assert [c["status"] for c in s["slo"]["checks"]] == ["no_data", "no_data"]
    assert s["goodput"]["requests"] == 0  # no chunk timings: no request shown to be good


def test_summary_carries_the_slo_result() -> None:
    slo = {"ttft_ms": {"max": 15}}
    s = summarize([ok(0, ttft=10), ok(1, ttft=20)], slo=slo)
    assert s["slo"] == {"passed": False, "status": "fail",
                        "checks": [check("ttft_ms", "max", 15, 20, False)]}
    assert summarize([ok()])["slo"] is None


# ---------------------------------------------------------------------------------------------
# client health


@pytest.mark.parametrize(
    ("health", "threshold", "bound", "reason"),
    [
        (None, CLIENT_BOUND_THRESHOLD_MS, False, None),
        (ClientHealth([1.0] * 100, [2.0] * 100), CLIENT_BOUND_THRESHOLD_MS, False, None),
        # one spike in 100 is not p99: h = 98.01 -> 1 + 0.01 * (500 - 1) = 5.99
        (ClientHealth([1.0] * 99 + [500.0], [1.0] * 100), CLIENT_BOUND_THRESHOLD_MS, False, None),
        (ClientHealth([1.0] * 90 + [20.0] * 10, [1.0] * 100), CLIENT_BOUND_THRESHOLD_MS, True,
         "send lag p99 20.0 ms > 10 ms"),
        (ClientHealth([], [10.0] * 100), CLIENT_BOUND_THRESHOLD_MS, False, None),  # not over
        (ClientHealth([], [10.5] * 100), CLIENT_BOUND_THRESHOLD_MS, True,
         "event-loop delay p99 10.5 ms > 10 ms"),
        (ClientHealth([30.0], [40.0]), CLIENT_BOUND_THRESHOLD_MS, True,
         "send lag p99 30.0 ms > 10 ms; event-loop delay p99 40.0 ms > 10 ms"),
        (ClientHealth([5.0] * 10, []), 4.0, True, "send lag p99 5.0 ms > 4 ms"),
    ],
)
def test_client_bound(
    health: ClientHealth | None, threshold: float, bound: bool, reason: str | None
) -> None:
    client = summarize([ok()], health=health, client_bound_threshold_ms=threshold)["client"]
    assert (client["client_bound"], client["reason"]) == (bound, reason)
    assert client["threshold_ms"] == threshold
    lags = health.scheduling_lag_ms if health else []
    assert client["scheduling_lag_ms"]["count"] == len(lags)


# ---------------------------------------------------------------------------------------------
# empty input


@pytest.mark.parametrize("records", [[], [ok(0, warmup=True), failed(1, warmup=True)]],
                         ids=["nothing", "warmup-only"])
def test_empty_input_gives_none_values(records: list[RequestRecord]) -> None:
    slo = {"ttft_ms": {"p95": 100}, "error_rate": 0.1, "min_output_tokens_per_s": 1}
    s = summarize(records, slo=slo)
    assert s["requests"] == {"total": 0, "ok": 0, "failed": 0, "cancelled": 0,
                             "warmup": len(records)}
    assert (s["error_rate"], s["errors"], s["duration_s"]) == (None, {}, None)
    assert set(s["throughput"].values()) == {None}
    for name in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "output_tokens", "prompt_tokens"):
        assert s[name] == {"count": 0, **NONE_STATS}, name
    assert s["e2e_from_scheduled_ms"] is None
    assert s["goodput"] == {"requests": 0, "requests_per_s": None, "share": None}
    assert s["slo"]["passed"] is False
    assert [c["value"] for c in s["slo"]["checks"]] == [None, None, None]


# ---------------------------------------------------------------------------------------------
# schema in step with the code


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / "schemas/result.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def validator(schema: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for `$defs.<name>` of the result schema."""
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": schema["$defs"]})


SLO = {"ttft_ms": {"p95": 100}, "itl_ms": {"max": 50}, "error_rate": 0.1,
       "min_output_tokens_per_s": 1}
CASES: dict[str, tuple[list[RequestRecord], dict[str, Any] | None, ClientHealth | None]] = {
    "ok-only": ([ok(0, itl=[5.0, 6.0]), ok(1, sent=10, prompt=None)], None, None),
    "mixed": ([ok(0, warmup=True), ok(1, itl=[70.0]), failed(2, "http", 503),
               failed(3, "truncated", e2e_ms=5.0)], SLO, ClientHealth([1.0], [50.0])),
    "all-failed": ([failed(0, "connection"), failed(1, "http", 500, e2e_ms=3.0)], SLO, None),
    "open-loop": ([ok(0, scheduled_ms=0.0, sent=2), ok(1, scheduled_ms=10.0, sent=30, out=1),
                   failed(2, "timeout", scheduled_ms=20.0, sent_ms=20.0)], SLO,
                  ClientHealth([2.0, 20.0], [0.5])),
    "empty": ([], None, None),
    "empty-with-slo": ([], SLO, ClientHealth()),
    "cut-and-rate-limited": ([ok(0), failed(1, "rate_limited", 429, e2e_ms=2.0),
                              failed(2, "cancelled", e2e_ms=9.0)], SLO, None),
}


@pytest.mark.parametrize("case", CASES)
def test_summary_validates_against_result_schema(schema: dict[str, Any], case: str) -> None:
    records, slo, health = CASES[case]
    metrics = summarize(records, slo=slo, health=health, pauses_s=[1.5] if records else [])
    validator(schema, "metrics").validate(metrics)
    job = {"id": "b/m", "slug": "b_m", "benchmark": "b", "model": "m", "point": {},
           "params": {}, "server": {"name": "local"}, "status": "ok", "error": None,
           "attempts": 1, "stopped": "done", "started_at": "2025-01-01T00:00:00Z",
           "finished_at": "2025-01-01T00:01:00Z", "duration_s": 60.0,
           "metrics": json.loads(json.dumps(metrics))}
    jsonschema.Draft202012Validator(schema).validate(job)
    skipped = {**job, "status": "skipped", "error": "not run", "attempts": 0,
               "started_at": None, "finished_at": None, "metrics": None}
    del skipped["stopped"], skipped["duration_s"]
    jsonschema.Draft202012Validator(schema).validate(skipped)
    for record in records:
        validator(schema, "request").validate(json.loads(json.dumps(record.to_json())))


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda m: m.update(extra=1), "metrics"),
        (lambda m: m["requests"].pop("warmup"), "requests"),
        (lambda m: m["ttft_ms"].update(mean=1.0), "distribution with count 0 but a mean"),
        (lambda m: m["errors"].update(http_5xx=1), "unknown error key"),
        (lambda m: m["client"].pop("reason"), "client"),
        (lambda m: m["requests"].pop("cancelled"), "requests.cancelled"),
        (lambda m: m["retry_after"].update(paused_s=-1), "negative pause"),
        (lambda m: m["errors"].update(rate_limit=1), "a near error kind"),
    ],
)
def test_result_schema_rejects_drift(schema: dict[str, Any], change: Any, path: str) -> None:
    metrics = summarize([])
    change(metrics)
    with pytest.raises(jsonschema.ValidationError):
        validator(schema, "metrics").validate(metrics)


def test_request_schema_knows_every_error_kind(schema: dict[str, Any]) -> None:
    assert schema["$defs"]["request"]["properties"]["error_kind"]["enum"] == [*ERROR_KINDS, None]
    # `repetition` is written only in a repeated job's log (load.repeat > 1), the reasoning
    # fields only when known
    assert set(schema["$defs"]["request"]["required"]) == \
        set(RequestRecord.__dataclass_fields__) - set(OPTIONAL_FIELDS)
    assert set(schema["$defs"]["request"]["properties"]) == set(RequestRecord.__dataclass_fields__)
    pattern = schema["$defs"]["metrics"]["properties"]["errors"]["propertyNames"]["pattern"]
    errors = validator(schema, "metrics").evolve(
        schema={"propertyNames": {"pattern": pattern}}
    )
    for kind in (*ERROR_KINDS, "http_404", "unknown"):
        errors.validate({kind: 1})


# ---------------------------------------------------------------------------------------------
# speed


def test_summarize_100k_records_is_fast() -> None:
    rng = random.Random(3)
    records = [
        ok(i, sent=i * 10.0, ttft=rng.uniform(50, 500), e2e=rng.uniform(500, 5000), out=64,
           itl=[rng.uniform(5, 50)], scheduled_ms=i * 10.0)
        for i in range(100_000)
    ]
    health = ClientHealth([rng.random() for _ in range(100_000)], [rng.random()] * 1000)
    slo = {"ttft_ms": {"p95": 400}, "tpot_ms": {"p99": 60}, "e2e_ms": {"max": 4000}}
    start = time.process_time()  # CPU time: other processes on a busy machine do not count
    summarize(records, slo=slo, health=health)
    # ~0.3-0.5 s on a shared 2-CPU box; the bound only catches a quadratic slip.
    assert time.process_time() - start < 5


def test_rate_compares_the_achieved_send_rate_with_the_plan_s() -> None:
    """Issue 10 §4: 10 req/s asked, a request sent every 340 ms (each waited for the single
    slot): 2.94 req/s achieved, ratio 0.294. Closed loop: no rate at all."""
    records = [ok(i, scheduled_ms=100.0 * i, sent=340.0 * i) for i in range(6)]
    rate = summarize(records, expect=Expectation(rate=10))["rate"]
    assert rate["target_per_s"] == 10
    assert rate["achieved_per_s"] == pytest.approx(5 / 1.7)
    assert rate["scheduled_per_s"] == pytest.approx(10)
    assert rate["ratio"] == pytest.approx(0.294, abs=1e-3)
    closed = summarize([ok(0), ok(1, sent=100)], expect=Expectation.from_params({"concurrency": 2}))
    assert closed["rate"] == dict.fromkeys(("target_per_s", "achieved_per_s", "scheduled_per_s",
                                            "ratio"))

