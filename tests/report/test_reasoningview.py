"""The reports' reasoning table (runner.report.reasoningview), from job summaries."""

from __future__ import annotations

from runner.report.reasoningview import reasoning_table


def test_a_ttfo_that_never_came_says_why_beside_its_dash() -> None:
    # Seen: "| chatcut/r1 | 6 of 6 | 20.7 | – | 21.4 | – |": every answer was cut while
    # reasoning (max_tokens), and nothing said why TTFO had no value.
    job = {"id": "cut/r1", "metrics": {
        "requests": {"ok": 6}, "ttft_ms": {"p50": 20.7, "p95": 21.4}, "ttfo_ms": {},
        "reasoning": {"requests_with_reasoning": 6, "unanswered": 6, "source": "usage",
                      "reason": None, "reasoning_tokens": {"p50": 4}, "answer_tokens": {"p50": 0}}}}
    table = reasoning_table([job], lambda v: "–" if v is None else f"{v:g}")
    assert table is not None
    assert table.rows[0][:4] == ("cut/r1", "6 of 6, 6 with no answer text", "20.7", "–")
