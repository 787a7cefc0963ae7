"""The cases of issue 10 (§1, §2) against a scripted server on 127.0.0.1 that knows the truth:
when it wrote the first text, how many chunks carried text, how each answer ended."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, chunk, details, text, usage_chunk

from runner.load.loadgen import LoadResult, Target, run_load
from runner.load.workload import prompt_source
from runner.run.metrics import summarize

TRUE_TTFT_MS = 150.0
SLACK_MS = 300.0  # a generous bound for a busy machine; the wrong answers were 2x off or worse


def job(**overrides: Any) -> dict[str, Any]:
    base = {"endpoint": "chat", "input_tokens": 8, "max_tokens": 16, "temperature": 0,
            "seed": 0, "stream": True, "concurrency": 1, "requests": 1, "warmup_requests": 0,
            "request_timeout_s": 20}
    return {**base, **overrides}


def load(script: Script, **overrides: Any) -> LoadResult:
    params = job(**overrides)
    with scripted_server(script) as url:
        return asyncio.run(run_load(Target(url, {}, "m"), params,
                                    prompt_source(params, ".", {})))


VLLM_ABORT = [(0, ROLE), *[(10 * i, text("tok ")) for i in range(1, 6)],
              (60, chunk(finish="abort")), (61, usage_chunk(completion_tokens=5)), (62, DONE)]


def test_six_requests_vllm_aborted_are_six_failures_kept_out_of_every_statistic() -> None:
    result = load(Script(VLLM_ABORT), requests=6, concurrency=2)
    assert [(r.ok, r.error_kind, r.finish_reason, r.content_chunks) for r in result.records] == [
        (False, "aborted", "abort", 5)] * 6
    assert result.records[0].error == "the server ended the answer early (finish_reason abort)"
    metrics = summarize(result.records)
    assert metrics["requests"] == {"total": 6, "ok": 0, "failed": 6, "cancelled": 0,
                                   "warmup": 0}
    assert metrics["errors"] == {"aborted": 6} and metrics["error_rate"] == 1.0
    for name in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "output_tokens"):
        assert metrics[name]["count"] == 0, name
    assert metrics["throughput"]["output_tokens_per_s"] == 0


@pytest.mark.parametrize(
    ("finish", "kind"), [("abort", "aborted"), ("error", "aborted"), ("repetition", "aborted"),
                         ("content_filter", "content_filter"), ("length", None)])
def test_a_non_streamed_answer_is_judged_by_its_finish_reason(finish: str, kind: str) -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                         "finish_reason": finish}], "usage": {"prompt_tokens": 3,
                                                              "completion_tokens": 1}}
    record = load(Script([], body=body), stream=False, requests=2).records[-1]
    assert (record.ok, record.error_kind, record.finish_reason) == (kind is None, kind, finish)


@pytest.mark.parametrize(
    ("ending", "kind", "message"),
    [
        ([chunk(finish="content_filter"), DONE], "content_filter",
         "the server ended the answer early (finish_reason content_filter)"),
        ([DONE], "truncated", "the stream ended ([DONE]) without a finish reason"),
        ([], "truncated", "the stream ended before a finish reason"),
        ([chunk(finish="tool_calls")], None, None),
    ],
    ids=["content filter", "[DONE] without a finish reason", "no [DONE], no finish", "ok"],
)
def test_how_a_stream_ends_decides_its_outcome(ending: list[Any], kind: str | None,
                                               message: str | None) -> None:
    events = [(0, ROLE), (10, text("a")), *[(20, value) for value in ending]]
    record = load(Script(events)).records[0]
    assert (record.ok, record.error_kind, record.error) == (kind is None, kind, message)


# Reasoning only in reasoning_details (text, then summaries), then the answer: the first text
# at 150 ms, 10 + 2 + 5 = 17 chunks with text.
REASONING_DETAILS = [
    (0, ROLE),
    *[(TRUE_TTFT_MS + 10 * i, details({"type": "reasoning.text", "text": f"step {i}"}))
      for i in range(10)],
    (260, details({"type": "reasoning.summary", "summary": "in short"})),
    (270, details({"type": "summary", "summary": "also"})),
    (280, details({"type": "reasoning.encrypted", "data": "opaque"})),
    *[(600 + 10 * i, text(f"word{i} ")) for i in range(5)],
    (650, chunk(finish="stop")), (651, usage_chunk(completion_tokens=40)), (652, DONE),
]
# A role-only chunk with an unrelated nested "text" first, then the answer at 150 ms.
NESTED_TEXT = [
    (0, chunk({"role": "assistant"}, meta={"text": "not an answer", "content": "nor this"})),
    *[(TRUE_TTFT_MS + 10 * i, text("tok ")) for i in range(4)],
    (200, chunk(finish="stop")), (201, DONE),
]
PARTS_AND_TOOLS = [
    (0, ROLE),
    (5, chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                               "function": {"name": "f", "arguments": ""}}]})),
    (TRUE_TTFT_MS, chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]})),
    (160, chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]})),
    (170, chunk({"content": [{"type": "text", "text": "done"}]})),
    (180, chunk(finish="tool_calls")), (181, DONE),
]


@pytest.mark.parametrize(
    ("events", "chunks"),
    [(REASONING_DETAILS, 17), (NESTED_TEXT, 4), (PARTS_AND_TOOLS, 3)],
    ids=["reasoning_details only", "role-only chunk with a nested text", "parts and tool calls"],
)
def test_ttft_and_chunks_are_true_and_the_same_compact_or_spaced(
    events: list[tuple[float, Any]], chunks: int
) -> None:
    seen = []
    for compact in (True, False):
        record = load(Script(events, compact=compact), requests=2).records[-1]
        assert record.ok and record.content_chunks == chunks, (compact, record)
        assert record.ttft_ms is not None
        assert TRUE_TTFT_MS <= record.ttft_ms < TRUE_TTFT_MS + SLACK_MS, (compact, record)
        seen.append(record.content_chunks)
    assert seen[0] == seen[1]


# --- issue 10 §6: a long answer whose tokens keep coming is not a timeout ------------------

SLOW_ANSWER = [(0, ROLE), *[(300 * i, text("tok ")) for i in range(1, 11)],
               (3010, chunk(finish="stop")), (3020, DONE)]  # a token every 0.3 s for 3 s


def test_a_long_answer_still_streaming_is_cut_by_the_deadline_but_not_by_the_stall_guard() -> None:
    """Before: request_timeout_s was the only guard, and a 3 s answer with a 2 s deadline
    failed as timeout while its tokens came. The deadline still holds; with a stall guard of
    1 s (gaps of 0.3 s) and a large deadline the answer succeeds, all 10 chunks measured."""
    cut = load(Script(SLOW_ANSWER), request_timeout_s=2).records[0]
    assert (cut.ok, cut.error_kind) == (False, "timeout")
    whole = load(Script(SLOW_ANSWER), request_timeout_s=600, stall_timeout_s=1).records[0]
    assert (whole.ok, whole.error_kind, whole.content_chunks) == (True, None, 10)
    assert whole.e2e_ms is not None and whole.e2e_ms >= 3000
