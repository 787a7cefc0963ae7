"""Issue 10 §3 and §7 against a scripted server that knows the truth: usage that contradicts
the stream, counts from chunks, answers shorter than a fixed length, vLLM's chunk timings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, STOP, chunk, text, usage_chunk

from runner.load.loadgen import LoadResult, Target, run_load
from runner.load.records import RequestRecord
from runner.load.workload import prompt_source
from runner.run.metrics import Expectation, summarize

ITL_MS = 10.0
SLACK_MS = 300.0  # generous for a busy machine; the wrong answers were 17x off


def job(**overrides: Any) -> dict[str, Any]:
    base = {"endpoint": "chat", "input_tokens": 8, "max_tokens": 64, "temperature": 0,
            "seed": 0, "stream": True, "concurrency": 1, "requests": 2, "warmup_requests": 0,
            "request_timeout_s": 20}
    return {**base, **overrides}


def load(events: list[tuple[float, Any]], **overrides: Any) -> tuple[LoadResult, dict[str, Any]]:
    params = job(**overrides)
    with scripted_server(Script(events)) as url:
        result = asyncio.run(run_load(Target(url, {}, "m"), params,
                                      prompt_source(params, ".", {})))
    return result, summarize(result.records, expect=Expectation.from_params(params))


def thirty_chunks(completion_tokens: int | None) -> list[tuple[float, Any]]:
    """30 non-empty content chunks ITL_MS apart, then the finish and (maybe) a usage claim."""
    events: list[tuple[float, Any]] = [
        (0, ROLE), *[(50 + ITL_MS * i, text("w ")) for i in range(30)], (350, STOP)]
    if completion_tokens is not None:
        events.append((351, usage_chunk(completion_tokens=completion_tokens)))
    return [*events, (352, DONE)]


@pytest.mark.parametrize("claimed", [0, 3])
def test_usage_below_the_chunks_is_flagged_and_never_drives_tpot(claimed: int) -> None:
    result, metrics = load(thirty_chunks(claimed))
    record = result.records[0]
    assert (record.usage_inconsistent, record.usage_output_tokens) == (True, claimed)
    assert (record.output_tokens, record.output_tokens_source) == (30, "chunks")
    assert record.tpot_ms is not None and record.tpot_ms < ITL_MS + SLACK_MS / 30  # truth ~10
    assert metrics["output_tokens_source"] == {"usage": 0, "chunks": 2, "usage_inconsistent": 2}
    tokens_per_s = metrics["throughput"]["output_tokens_per_s"]
    assert tokens_per_s > 30 / (0.352 + SLACK_MS / 1000)  # 3.2 tok/s before; truth ~75


def test_usage_at_or_above_the_chunks_is_believed() -> None:
    result, metrics = load(thirty_chunks(30))
    assert {(r.output_tokens, r.output_tokens_source, r.usage_inconsistent)
            for r in result.records} == {(30, "usage", False)}
    assert metrics["tokens_per_chunk"]["p50"] == 1.0


def test_no_usage_and_several_tokens_per_chunk_says_the_count_came_from_chunks() -> None:
    """Ollama-style: 40 tokens in 10 chunks, no usage: the count is 10, from chunks, and the
    summary says so (the recap's tokens≈chunks marker reads this key)."""
    events = [(0, ROLE), *[(20 * i, text("four tokens here!")) for i in range(1, 11)],
              (220, STOP), (221, DONE)]
    result, metrics = load(events)
    assert {(r.output_tokens, r.output_tokens_source) for r in result.records} == {(10, "chunks")}
    assert metrics["output_tokens_source"] == {"usage": 0, "chunks": 2, "usage_inconsistent": 0}
    assert metrics["tokens_per_chunk"]["count"] == 0  # unknown: no usage to divide


def test_with_usage_coalesced_chunks_show_as_tokens_per_chunk() -> None:
    events = [(0, ROLE), *[(20 * i, text("four tokens here!")) for i in range(1, 11)],
              (220, STOP), (221, usage_chunk(completion_tokens=40)), (222, DONE)]
    _, metrics = load(events)
    assert metrics["tokens_per_chunk"]["mean"] == 4.0


def test_an_answer_short_of_a_fixed_length_shows_in_lengths() -> None:
    """max_tokens 64 with ignore_eos; the server stops at 12."""
    events = [(0, ROLE), *[(10 * i, text("t ")) for i in range(1, 13)], (130, STOP),
              (131, usage_chunk(prompt_tokens=16, completion_tokens=12)), (132, DONE)]
    _, metrics = load(events, extra_body={"ignore_eos": True})
    output, prompt = metrics["lengths"]["output"], metrics["lengths"]["input"]
    assert output == {"requested": 64, "fixed": True, "achieved_mean": 12.0, "ratio": 12 / 64}
    assert prompt == {"target": 8, "achieved_mean": 16.0, "ratio": 2.0}


def test_vllm_timings_count_every_chunk_with_choices() -> None:
    """A role chunk at 0, two empty-text chunks (a token with no visible text yet), text from
    150 ms: runner's TTFT waits for the text, vLLM's takes the role chunk; vLLM's ITL has a gap
    per chunk with choices, runner's per chunk with text."""
    events = [(0, ROLE), (100, text("")), (120, chunk({"content": ""})),
              *[(150 + ITL_MS * i, text("w ")) for i in range(3)], (200, STOP),
              (201, usage_chunk(completion_tokens=6)), (202, DONE)]
    result, metrics = load(events, requests=1)
    record: RequestRecord = result.records[0]
    assert record.ttft_first_chunk_ms is not None and record.ttft_ms is not None
    assert record.ttft_first_chunk_ms < 150 <= record.ttft_ms < 150 + SLACK_MS
    assert (len(record.itl_ms), len(record.itl_chunks_ms)) == (2, 6)
    assert sum(record.itl_chunks_ms) == pytest.approx(
        record.itl_ms[0] + record.itl_ms[1] + (record.ttft_ms - record.ttft_first_chunk_ms)
        + record.itl_chunks_ms[-1], abs=0.01)
    assert metrics["itl_chunks_ms"]["count"] == 6 and metrics["ttft_first_chunk_ms"]["count"] == 1


def test_a_non_streamed_answer_has_no_chunk_timings() -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 0}}
    params = job(stream=False, requests=1)
    with scripted_server(Script([], body=body)) as url:
        record = asyncio.run(run_load(Target(url, {}, "m"), params,
                                      prompt_source(params, ".", {}))).records[0]
    assert (record.ttft_first_chunk_ms, record.itl_chunks_ms) == (None, [])
    assert (record.output_tokens, record.usage_inconsistent) == (1, True)  # text, 0 tokens
