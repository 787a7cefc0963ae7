"""Prompt lengths in the reports (issue 14 §6): per synthetic job, the server's mean prompt
length against the target and how the prompts were sized (metrics.prompt_calibration)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.report.data import Job, stat

HEADERS = ("Job", "Target", "Achieved mean", "Ratio", "Sized by", "Words/token",
           "Overhead", "Requests")
NOTE = ("Synthetic prompts: the server's mean prompt_tokens against input_tokens (a trace: "
        "against each request's own input length, 'per request' its mean), and how "
        "runner sized them for the model (tokenize: the server's /tokenize; usage: probe "
        "requests' usage; tokenizer: the model's tokenizer.json; none: a word per token).")


@dataclass(frozen=True)
class LengthRow:
    """One job's prompt lengths, as text."""

    job: str
    cells: tuple[str, ...]


def length_rows(jobs: Sequence[Job], fmt: Any) -> tuple[LengthRow, ...]:
    """A row per job whose metrics carry a prompt_calibration (synthetic prompts); `fmt`
    formats a number."""
    rows = []
    for job in jobs:
        calibration = stat(job, "prompt_calibration")
        if not isinstance(calibration, Mapping):
            continue
        ratio = stat(job, "lengths.input.ratio")
        method = str(calibration.get("method"))
        if calibration.get("reason"):
            method += f" ({calibration['reason']})"
        cells = (*_target_cells(job, fmt),
                 "–" if not isinstance(ratio, int | float) else f"{ratio:.3f}", method,
                 fmt(calibration.get("words_per_token")), fmt(calibration.get("overhead_tokens")),
                 str(calibration.get("requests_spent", "–")))
        rows.append(LengthRow(str(job.get("id")), cells))
    return tuple(rows)


def _target_cells(job: Job, fmt: Any) -> tuple[str, str]:
    """The target and achieved mean cells: a trace job's are the mean of its requests' own
    input lengths ('per request') and the server's mean over those requests (ratio x it)."""
    own, ratio = stat(job, "lengths.input.requested_mean"), stat(job, "lengths.input.ratio")
    if not isinstance(own, int | float):
        return (fmt(stat(job, "lengths.input.target")),
                fmt(stat(job, "lengths.input.achieved_mean")))
    achieved = ratio * own if isinstance(ratio, int | float) else None
    return f"{fmt(own)} per request", fmt(achieved)


def markdown_lengths(jobs: Sequence[Job], fmt: Any, escape: Any) -> list[str]:
    """The summary.md table of prompt lengths (empty when no job had synthetic prompts);
    `escape` makes untrusted text safe in a Markdown cell."""
    rows = length_rows(jobs, fmt)
    if not rows:
        return []
    head = "| " + " | ".join(HEADERS) + " |"
    rule = "|---|" + "--:|" * 3 + "---|" + "--:|" * 3
    body = ["| " + " | ".join(escape(c) for c in (row.job, *row.cells)) + " |" for row in rows]
    return ["", f"**Prompt lengths** ({NOTE})", "", head, rule, *body]
