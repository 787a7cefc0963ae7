"""The summary's reasoning split (runner.run.reasoning) and SLOs on ttfo_ms, from records."""

from __future__ import annotations

from typing import Any

import pytest

from runner.load.records import RequestRecord
from runner.run.metrics import evaluate_slo, meets_latency_slo, summarize


def record(ttft: float | None = 10.0, ttfo: float | None = 90.0, reasoning: int | None = 6,
           output: int = 10, chunks: int | None = 6, **extra: Any) -> RequestRecord:
    return RequestRecord(index=0, ok=True, ttft_ms=ttft, ttfo_ms=ttfo, e2e_ms=120.0,
                         reasoning_tokens=reasoning, output_tokens=output,
                         output_tokens_source="usage", content_chunks=10,
                         reasoning_chunks=chunks, **extra)


SLO = {"ttfo_ms": {"p50": 50.0}}


@pytest.mark.parametrize(
    ("kept", "good"),
    [(record(ttfo=40.0), True), (record(ttfo=90.0), False),
     (record(ttfo=None), False),  # cut while reasoning: no answer text, no TTFO
     (record(ttft=None, ttfo=None, chunks=None, streamed=False), False)],
    ids=["within", "beyond", "no answer", "not streamed"])
def test_goodput_under_a_ttfo_bound(kept: RequestRecord, good: bool) -> None:
    assert meets_latency_slo(kept, SLO) is good


def test_the_ttfo_check_passes_fails_and_has_no_data() -> None:
    fast = summarize([record(ttfo=40.0)] * 4, slo=SLO)
    assert fast["slo"]["checks"] == [{"metric": "ttfo_ms", "stat": "p50", "limit": 50.0,
                                      "value": 40.0, "passed": True, "status": "pass"}]
    assert fast["goodput"]["requests"] == 4
    slow = summarize([record(ttfo=90.0)] * 4, slo={**SLO, "ttft_ms": {"p50": 50.0}})
    assert {c["metric"]: c["status"] for c in slow["slo"]["checks"]} == {
        "ttfo_ms": "fail", "ttft_ms": "pass"}  # the first token was in time, the answer not
    assert slow["goodput"]["requests"] == 0
    whole = summarize([record(ttft=None, ttfo=None, chunks=None, streamed=False)], slo=SLO)
    assert whole["slo"]["status"] == "no_data"


def test_partial_usage_is_said() -> None:
    split = summarize([record(), record(reasoning=None)])["reasoning"]
    assert (split["source"], split["reasoning_tokens"]["count"]) == ("usage_partial", 1)
    assert split["reason"] == "only 1 of 2 answers' usage gave reasoning_tokens"
    assert split["requests_with_reasoning"] == 2  # the second streamed reasoning chunks


def test_answer_tokens_need_output_tokens_from_usage() -> None:
    counted = record(output=10, reasoning=6)
    guessed = record(output=10, reasoning=6)
    guessed.output_tokens_source = "chunks"  # the usage claim was impossible: not subtracted
    split = summarize([counted, guessed])["reasoning"]
    assert split["answer_tokens"]["count"] == 1 and split["answer_tokens"]["p50"] == 4
    assert (split["reasoning_chunks"], split["answer_chunks"]) == (12, 8)


def test_old_records_without_the_fields_summarise_as_before() -> None:
    old = RequestRecord.from_json({"index": 0, "ok": True, "ttft_ms": 5.0, "content_chunks": 3,
                                   "output_tokens": 3, "output_tokens_source": "usage"})
    metrics = summarize([old])
    assert metrics["ttfo_ms"]["count"] == 0
    assert metrics["reasoning"]["requests_with_reasoning"] == 0
    assert metrics["reasoning"]["source"] is None and metrics["reasoning"]["reason"] is None
    assert evaluate_slo(metrics, SLO)["status"] == "no_data"


def test_answers_that_never_came_miss_the_ttfo_check() -> None:
    # Cut while reasoning (max_tokens): no answer text, so no TTFO. README: such a request
    # misses a ttfo_ms bound; a check that skipped it judged only the answers that came.
    none = summarize([record(ttfo=None)] * 4, slo=SLO)
    assert none["reasoning"]["unanswered"] == 4
    assert none["slo"]["status"] == "fail"
    assert none["slo"]["checks"] == [{"metric": "ttfo_ms", "stat": "p50", "limit": 50.0,
                                      "value": None, "passed": False, "status": "fail",
                                      "unanswered": 4}]
    half = summarize([record(ttfo=10.0)] * 2 + [record(ttfo=None)] * 2, slo=SLO)
    assert half["ttfo_ms"]["p50"] == 10.0  # the distribution: the answers that came
    assert half["slo"]["status"] == "fail"  # the median request had no answer in time


@pytest.mark.parametrize(("stat", "value", "status"),
                         [("p50", 10.0, "pass"), ("p90", 10.0, "pass"), ("p95", None, "fail"),
                          ("max", None, "fail"), ("mean", None, "fail")])
def test_one_unanswered_request_in_twenty_counts_as_infinitely_late(
        stat: str, value: float | None, status: str) -> None:
    kept = [record(ttfo=10.0)] * 19 + [record(ttfo=None)]
    check = summarize(kept, slo={"ttfo_ms": {stat: 1000.0}})["slo"]["checks"][0]
    assert (check["value"], check["status"], check["unanswered"]) == (value, status, 1)


def test_repetitions_medians_keep_the_unanswered_rule() -> None:
    merged = summarize([record(ttfo=None)] * 3)
    assert evaluate_slo(merged, SLO)["status"] == "fail"
