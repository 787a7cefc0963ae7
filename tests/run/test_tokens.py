"""Token accounting: the expectation a job's params set, lengths, tokens per chunk."""

from __future__ import annotations

from typing import Any

import pytest

from runner.load.records import RequestRecord
from runner.load.replay import TracePrompts
from runner.load.trace import Trace, TraceRequest
from runner.run.tokens import Expectation, lengths, per_chunk, sources
from runner.run.validity import judge_validity


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"max_tokens": 64, "input_tokens": 100}, Expectation(64, False, 100)),
        ({"max_tokens": 64, "extra_body": {"ignore_eos": True}}, Expectation(64, True, None)),
        ({"max_tokens": 64, "extra_body": {"ignore_eos": "yes"}}, Expectation(64, False, None)),
        ({"max_tokens": 64, "extra_body": {"min_tokens": 64}}, Expectation(64, True, None)),
        ({"max_tokens": 64, "extra_body": {"min_tokens": 10}}, Expectation(64, False, None)),
        ({"max_tokens": 64, "extra_body": {"max_completion_tokens": 32}},
         Expectation(32, False, None)),
        ({"max_tokens": 64, "input_tokens": 100, "dataset": "d.jsonl"},
         Expectation(64, False, None)),
        ({"max_tokens": 64, "input_tokens": 100, "template": "x"}, Expectation(64, False, None)),
        ({}, Expectation(None, False, None)),
    ],
)
def test_expectation_from_params(params: dict[str, Any], expected: Expectation) -> None:
    assert Expectation.from_params(params) == expected


def record(out: int | None, source: str | None = "usage", chunks: int = 1,
           **extra: Any) -> RequestRecord:
    return RequestRecord(index=0, ok=True, output_tokens=out, output_tokens_source=source,
                         content_chunks=chunks, ttft_first_chunk_ms=extra.pop("first", 1.0),
                         **extra)


def test_lengths_without_expectation_or_records_are_none() -> None:
    assert lengths([], Expectation()) == {
        "output": {"requested": None, "fixed": False, "achieved_mean": None, "ratio": None},
        "input": {"target": None, "achieved_mean": None, "ratio": None}}


def test_lengths_ratio_is_the_mean_over_the_request() -> None:
    got = lengths([record(10, prompt_tokens=90), record(30, prompt_tokens=110)],
                  Expectation(40, True, 100))
    assert got["output"] == {"requested": 40, "fixed": True, "achieved_mean": 20.0, "ratio": 0.5}
    assert got["input"] == {"target": 100, "achieved_mean": 100.0, "ratio": 1.0}


def test_tokens_per_chunk_only_from_streamed_usage_counts() -> None:
    records = [record(40, chunks=10), record(10, "chunks", chunks=10),
               record(5, chunks=1, first=None), record(3, chunks=0)]
    assert per_chunk(records) == [4.0]


def test_sources_count_inconsistent_usage_among_chunks() -> None:
    records = [record(30, "chunks", 30, usage_inconsistent=True), record(5), record(2, "chunks")]
    assert sources(records) == {"usage": 1, "chunks": 2, "usage_inconsistent": 1}


def trace_prompts(*outputs: int | None) -> TracePrompts:
    """A runner trace whose lines ask these output lengths (None: the plan's max_tokens)."""
    lines = tuple(TraceRequest(i * 100.0, i + 1, input_tokens=8, output_tokens=out)
                  for i, out in enumerate(outputs))
    return TracePrompts(Trace("t.jsonl", "runner", lines), seed=0, chat=True)


TRACE = {"trace": "t.jsonl", "replay": {}, "max_tokens": 64, "warmup_requests": 1,
         "extra_body": {"ignore_eos": True}}


def test_a_trace_job_is_judged_against_each_requests_own_length() -> None:
    expect = Expectation.from_params(TRACE, trace_prompts(10, 200, None))
    assert expect.max_tokens is None and expect.fixed_output  # each line asks its own
    # measured request i (after the 1 warm-up) sends line i; line 3 asks max_tokens 64
    answers = [RequestRecord(index=i + 1, ok=True, output_tokens=out)
               for i, out in enumerate((10, 200, 64, 10, 100))]
    out = lengths(answers, expect)["output"]
    assert out["requested"] is None and out["fixed"] is True
    assert out["requested_mean"] == pytest.approx((10 + 200 + 64 + 10 + 200) / 5)
    assert out["ratio"] == pytest.approx((10 + 200 + 64 + 10 + 100) / (10 + 200 + 64 + 10 + 200))
    # the plan's max_tokens (64) would have called the 200-token answers 3x too long, and
    # the 10-token answers short: each request is held to its own line's length
    short = judge_validity({"lengths": {"output": out}, "requests": {"ok": 5}})
    assert [r["code"] for r in short["reasons"]] == ["short_outputs"]
    assert short["reasons"][0]["figure"] == (
        "outputs 76.8 tokens on average of 96.8 asked (each request's own length; ratio 0.79 "
        "< 0.9)")
    exact = [RequestRecord(index=i + 1, ok=True, output_tokens=out)
             for i, out in enumerate((10, 200, 64, 10, 200))]
    out = lengths(exact, expect)["output"]
    assert out["ratio"] == 1.0
    assert judge_validity({"lengths": {"output": out}, "requests": {"ok": 5}})["reasons"] == []


def test_min_tokens_fixes_the_trace_lines_it_covers() -> None:
    params = {**TRACE, "extra_body": {"min_tokens": 50}}
    expect = Expectation.from_params(params, trace_prompts(10, 200))
    # line 1 (10 <= 50) must be exactly 10; line 2 (200 > 50) may stop early: not judged
    answers = [RequestRecord(index=1, ok=True, output_tokens=5),
               RequestRecord(index=2, ok=True, output_tokens=60)]
    out = lengths(answers, expect)["output"]
    assert out["fixed"] is True and out["requested_mean"] == 10 and out["ratio"] == 0.5
    assert not Expectation.from_params({**TRACE, "extra_body": {}},
                                       trace_prompts(10, 200)).fixed_output


def input_trace(*inputs: int | None) -> TracePrompts:
    """A runner trace whose lines give these input lengths (None: a line of text)."""
    lines = tuple(TraceRequest(i * 100.0, i + 1, input_tokens=n) if n is not None else
                  TraceRequest(i * 100.0, i + 1, prompt={"prompt": "text"})
                  for i, n in enumerate(inputs))
    return TracePrompts(Trace("t.jsonl", "runner", lines), seed=0, chat=False)


def test_a_trace_jobs_prompts_are_held_to_each_lines_own_input_length() -> None:
    # Seen: a trace's input target was null, so prompts_off_target could never fire for it.
    expect = Expectation.from_params(TRACE, input_trace(100, 400, None))
    # measured request i (after the 1 warm-up) sends line i (cycled); line 3 is text
    sent = [RequestRecord(index=i + 1, ok=True, prompt_tokens=n, output_tokens=1)
            for i, n in enumerate((130, 520, 9, 130))]
    given = lengths(sent, expect)["input"]
    assert given["target"] is None
    assert given["requested_mean"] == pytest.approx((100 + 400 + 100) / 3)
    assert given["ratio"] == pytest.approx((130 + 520 + 130) / 600)
    judged = judge_validity({"lengths": {"input": given}, "requests": {"ok": 4}})
    assert [r["code"] for r in judged["reasons"]] == ["prompts_off_target"]
    assert judged["reasons"][0]["figure"] == (
        "prompts 260 tokens on average vs 200 asked (each request's own length; ratio 1.30, "
        "outside 0.8-1.25)")
    near = [RequestRecord(index=i + 1, ok=True, prompt_tokens=n)
            for i, n in enumerate((104, 410, 9))]
    given = lengths(near, expect)["input"]
    assert given["ratio"] == pytest.approx(514 / 500)
    assert judge_validity({"lengths": {"input": given}, "requests": {"ok": 3}})["reasons"] == []


def test_a_short_trace_prompt_within_the_template_slack_is_on_target() -> None:
    # 4-token lines counted as 24 (a chat template's markers): 6x, yet only 20 tokens off
    expect = Expectation.from_params(TRACE, input_trace(4))
    given = lengths([RequestRecord(index=1, ok=True, prompt_tokens=24)], expect)["input"]
    assert given["ratio"] == 6.0
    assert judge_validity({"lengths": {"input": given}, "requests": {"ok": 1}})["reasons"] == []


def test_an_embeddings_trace_request_asks_the_sum_of_its_batchs_lines() -> None:
    params = {**TRACE, "endpoint": "embeddings", "batch_size": 2, "warmup_requests": 0}
    expect = Expectation.from_params(params, input_trace(10, 30, 50))
    # request 0 sends lines 1-2 (40 tokens), request 1 lines 3 and 1 (60 tokens)
    sent = [RequestRecord(index=0, ok=True, prompt_tokens=40),
            RequestRecord(index=1, ok=True, prompt_tokens=90)]
    given = lengths(sent, expect)["input"]
    assert given["requested_mean"] == 50 and given["ratio"] == pytest.approx(130 / 100)


def test_a_trace_of_text_lines_asks_no_input_length() -> None:
    given = lengths([RequestRecord(index=1, ok=True, prompt_tokens=7)],
                    Expectation.from_params(TRACE, input_trace(None)))["input"]
    assert given["requested_mean"] is None and given["ratio"] is None
    assert "requested_mean" not in lengths([], Expectation.from_params({"max_tokens": 4}))["input"]
