"""Token accounting: the expectation a job's params set, lengths, tokens per chunk."""

from __future__ import annotations

from typing import Any

import pytest

from runner.load.records import RequestRecord
from runner.run.tokens import Expectation, lengths, per_chunk, sources


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
