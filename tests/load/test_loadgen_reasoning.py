"""Reasoning models (issue 14 §3) through the load generator: a scripted server on 127.0.0.1
streams reasoning, in each shape servers use, before the answer; every request records the
time to its first answer token (TTFO) beside TTFT, its reasoning chunks, and the usage's
reasoning tokens, and the summary splits reasoning from answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, STOP, chunk, details, text, usage_chunk

from runner.load.loadgen import LoadResult, Target, run_load
from runner.load.workload import prompt_source
from runner.run.metrics import summarize

REASONING_MS = 150.0  # when the scripted answer's first answer token is written
THOUGHTS = 3


def load(script: Script, **overrides: Any) -> LoadResult:
    params = {"endpoint": "chat", "input_tokens": 8, "max_tokens": 16, "temperature": 0,
              "seed": 0, "stream": True, "concurrency": 1, "requests": 2, "warmup_requests": 0,
              "request_timeout_s": 20, **overrides}
    with scripted_server(script) as url:
        return asyncio.run(run_load(Target(url, {}, "m"), params,
                                    prompt_source(params, ".", {})))


def with_details(reasoning: int | None, completion: int = 5) -> dict[str, Any]:
    counted = {} if reasoning is None else {"completion_tokens_details":
                                            {"reasoning_tokens": reasoning}}
    event = usage_chunk(completion_tokens=completion)
    event["usage"].update(counted)
    return event


SHAPES = {
    "reasoning_content": chunk({"reasoning_content": "think "}),
    "reasoning": chunk({"reasoning": "think "}),
    "reasoning_details": details({"type": "reasoning.text", "text": "think "}),
    "sglang nulls": chunk({"reasoning_content": "think ", "content": None, "tool_calls": None}),
}


def reasoned(thought: dict[str, Any], reasoning: int | None = THOUGHTS) -> Script:
    """ROLE at 0, THOUGHTS reasoning chunks 30 ms apart, then 2 answer chunks from
    REASONING_MS, the finish and the usage (5 completion tokens)."""
    events: list[tuple[float, Any]] = [(0, ROLE)]
    events += [(30.0 * (i + 1), thought) for i in range(THOUGHTS)]
    events += [(REASONING_MS, text("Hi")), (REASONING_MS + 20, text("!")),
               (REASONING_MS + 21, STOP), (REASONING_MS + 22, with_details(reasoning)),
               (REASONING_MS + 23, DONE)]
    return Script(events)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_ttfo_is_the_first_answer_token_after_the_reasoning(shape: str) -> None:
    records = load(reasoned(SHAPES[shape])).records
    for record in records:
        assert record.ok, record.error
        assert record.ttft_ms is not None and record.ttfo_ms is not None
        # The script wrote the answer REASONING_MS - 30 ms after the first thought: whatever
        # the machine's speed, the answer cannot arrive before the reasoning that preceded it.
        assert record.ttfo_ms > record.ttft_ms
        assert (record.content_chunks, record.reasoning_chunks) == (THOUGHTS + 2, THOUGHTS)
        assert (record.output_tokens, record.reasoning_tokens) == (5, THOUGHTS)
        assert len(record.itl_ms) == THOUGHTS + 1  # ITL spans reasoning and answer alike
    stored = records[0].to_json()
    assert stored["reasoning_tokens"] == THOUGHTS and stored["reasoning_chunks"] == THOUGHTS
    assert stored["ttfo_ms"] == round(records[0].ttfo_ms, 3)


def test_the_summary_splits_reasoning_from_answer() -> None:
    metrics = summarize(load(reasoned(SHAPES["reasoning_content"])).records)
    assert metrics["ttfo_ms"]["count"] == 2
    assert metrics["ttfo_ms"]["p50"] > metrics["ttft_ms"]["p50"]
    split = metrics["reasoning"]
    assert split["requests_with_reasoning"] == 2
    assert (split["reasoning_tokens"]["p50"], split["answer_tokens"]["p50"]) == (THOUGHTS, 2)
    assert (split["reasoning_chunks"], split["answer_chunks"]) == (2 * THOUGHTS, 4)
    assert (split["source"], split["reason"], split["inconsistent"]) == ("usage", None, 0)


def test_reasoning_without_usage_details_has_no_token_counts_and_says_why() -> None:
    records = load(reasoned(SHAPES["reasoning"], reasoning=None)).records
    assert [r.reasoning_tokens for r in records] == [None, None]
    assert "reasoning_tokens" not in records[0].to_json()  # never invented
    split = summarize(records)["reasoning"]
    assert split["requests_with_reasoning"] == 2 and split["source"] is None
    assert split["reasoning_tokens"]["count"] == 0 and split["answer_tokens"]["count"] == 0
    assert "gave no completion_tokens_details.reasoning_tokens" in split["reason"]


def test_a_claim_of_more_reasoning_than_output_is_left_out() -> None:
    split = summarize(load(reasoned(SHAPES["reasoning"], reasoning=9)).records)["reasoning"]
    assert split["inconsistent"] == 2 and split["answer_tokens"]["count"] == 0
    assert "more reasoning tokens than completion tokens" in split["reason"]


def test_an_answer_that_did_not_reason_has_ttfo_equal_to_ttft() -> None:
    script = Script([(0, ROLE), (20, text("a")), (40, text("b")), (41, STOP),
                     (42, usage_chunk(completion_tokens=2)), (43, DONE)])
    for record in load(script).records:
        assert record.ttfo_ms == record.ttft_ms is not None
        assert (record.reasoning_chunks, record.reasoning_tokens) == (0, None)
    split = summarize(load(script).records)["reasoning"]
    assert (split["requests_with_reasoning"], split["source"], split["reason"]) == (0, None, None)


def test_an_answer_cut_while_reasoning_has_no_ttfo() -> None:
    script = Script([(0, ROLE), (20, SHAPES["reasoning_content"]),
                     (40, chunk(finish="length")), (41, with_details(2, completion=2)),
                     (42, DONE)])
    record = load(script).records[0]
    assert record.ok and record.ttft_ms is not None and record.ttfo_ms is None
    assert "ttfo_ms" not in record.to_json()
    assert summarize([record])["ttfo_ms"]["count"] == 0


def test_a_non_streamed_answer_has_no_ttfo_but_its_reasoning_tokens() -> None:
    body = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "reasoning_content": "think", "content": "Hi"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 7,
                  "completion_tokens_details": {"reasoning_tokens": 4}}}
    record = load(Script([], body=body), stream=False).records[0]
    assert record.ok and (record.ttft_ms, record.ttfo_ms) == (None, None)
    assert (record.reasoning_tokens, record.reasoning_chunks) == (4, None)
    split = summarize([record])["reasoning"]
    assert (split["requests_with_reasoning"], split["answer_tokens"]["p50"]) == (1, 3)
