"""Reasoning models in the reports (issue 14 §3): per job that reasoned, TTFT (first token of
any kind) beside TTFO (first answer token), and the reasoning and answer tokens of its usage
(metrics.ttfo_ms, metrics.reasoning)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner.report.data import Job, stat

HEADERS = ("Job", "Reasoned", "TTFT p50", "TTFO p50", "TTFT p95", "TTFO p95",
           "Reasoning tok p50", "Answer tok p50", "Token source")
NUMBERS = 7  # the first cells after the job: right-aligned
NOTE = ("TTFT: sent → the first token of any kind, reasoning included; TTFO: sent → the first "
        "answer token (AIPerf's time to first output token), ms. Token counts from the server's "
        "usage (completion_tokens_details.reasoning_tokens), never estimated.")


@dataclass(frozen=True)
class ReasoningTable:
    """The jobs that reasoned, as text rows under HEADERS."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = NOTE


def reasoning_table(jobs: Sequence[Job], fmt: Any) -> ReasoningTable | None:
    """A row per job some of whose requests reasoned; None when none did (the reports then
    show TTFT alone, which equals TTFO). `fmt` formats a number."""
    rows = []
    for job in jobs:
        reasoned = stat(job, "reasoning.requests_with_reasoning")
        if not reasoned:
            continue
        ok = stat(job, "requests.ok")
        split = stat(job, "reasoning") or {}
        source = split.get("source") or "unknown"
        if split.get("reason"):
            source += f" ({split['reason']})"
        unanswered = split.get("unanswered")  # cut while reasoning: no TTFO
        no_answer = f", {unanswered} with no answer text" if unanswered else ""
        rows.append((str(job.get("id")), f"{reasoned} of {ok}{no_answer}",
                     fmt(stat(job, "ttft_ms.p50")), fmt(stat(job, "ttfo_ms.p50")),
                     fmt(stat(job, "ttft_ms.p95")), fmt(stat(job, "ttfo_ms.p95")),
                     fmt(stat(job, "reasoning.reasoning_tokens.p50")),
                     fmt(stat(job, "reasoning.answer_tokens.p50")), source))
    return ReasoningTable(HEADERS, tuple(rows)) if rows else None


def markdown_reasoning(jobs: Sequence[Job], fmt: Any, escape: Any) -> list[str]:
    """The summary.md table of the reasoning split (empty when no job reasoned); `escape`
    makes untrusted text safe in a Markdown cell."""
    table = reasoning_table(jobs, fmt)
    if table is None:
        return []
    head = "| " + " | ".join(table.headers) + " |"
    rule = "|---|" + "--:|" * NUMBERS + "---|"
    body = ["| " + " | ".join(escape(c) for c in row) + " |" for row in table.rows]
    return ["", "**Reasoning** (" + NOTE + ")", "", head, rule, *body]
