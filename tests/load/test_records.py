"""The request record: its error kinds are the result schema's; its token count and vLLM's
chunk timings are filled right."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

import pytest

from runner.load.records import ERROR_KINDS, RequestRecord, count_tokens, time_chunks
from runner.schema import load_schema


def test_every_error_kind_is_in_the_result_schema() -> None:
    defs = load_schema("result")["$defs"]
    assert defs["request"]["properties"]["error_kind"]["enum"] == [*ERROR_KINDS, None]
    pattern = defs["metrics"]["properties"]["errors"]["propertyNames"]["pattern"]
    assert all(re.fullmatch(pattern, kind) for kind in ERROR_KINDS)
    assert {"aborted", "content_filter", "truncated"} <= set(ERROR_KINDS)


@pytest.mark.parametrize(
    ("content", "textless"),
    [([], []), ([], [5, 9]), ([10, 20, 30], []), ([10, 20, 30], [0, 30, 40]),
     ([10], [10, 12]), ([10, 20, 30], [0, 15, 25, 40]), ([10, 20], [20, 20])],
    ids=["none", "no text", "text only", "role and finish", "one chunk", "interleaved", "ties"])
def test_vllm_chunk_timings_equal_the_sorted_merge(content: list[int],
                                                   textless: list[int]) -> None:
    """The shortcut around itl_ms gives what merging every chunk's time gives (ns -> ms)."""
    record = RequestRecord(index=0, itl_ms=[(b - a) / 1e6 for a, b in pairwise(content)])
    time_chunks(record, content, textless, 0)
    times = sorted(content + textless)
    assert record.ttft_first_chunk_ms == (times[0] / 1e6 if times else None)
    assert record.itl_chunks_ms == [(b - a) / 1e6 for a, b in pairwise(times)]


@pytest.mark.parametrize(
    ("claimed", "chunks", "streamed", "expected"),
    [(None, 5, True, (5, "chunks", False)), (None, 1, False, (None, None, False)),
     (5, 5, True, (5, "usage", False)), (40, 10, True, (40, "usage", False)),
     (3, 30, True, (30, "chunks", True)), (0, 30, True, (30, "chunks", True)),
     (0, 1, False, (1, "chunks", True)), (0, 0, True, (0, "usage", False))])
def test_count_tokens(claimed: int | None, chunks: int, streamed: bool,
                      expected: tuple[Any, ...]) -> None:
    record = RequestRecord(index=0, content_chunks=chunks)
    count_tokens(record, claimed, streamed)
    assert (record.output_tokens, record.output_tokens_source,
            record.usage_inconsistent) == expected
    assert record.usage_output_tokens == claimed
