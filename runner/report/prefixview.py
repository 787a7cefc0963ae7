"""Shared prefixes in the reports (issue 14 §1): per job, the prefix-cache hit rate the plan
implies beside the one the server's counters achieved (metrics.prefix_cache)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.report.data import Job, stat

HEADERS = ("Job", "Prefixes", "Block", "Expected hit rate", "Achieved hit rate", "Gap",
           "Hit / queried tokens")


@dataclass(frozen=True)
class PrefixRow:
    """One shared-prefix job's figures, as text; `gap` marks a gap beyond the threshold."""

    job: str
    cells: tuple[str, ...]
    gap: bool


def prefix_rows(jobs: Sequence[Job]) -> tuple[PrefixRow, ...]:
    """A row per job whose metrics carry a prefix_cache block."""
    rows = []
    for job in jobs:
        block = stat(job, "prefix_cache")
        if not isinstance(block, Mapping):
            continue
        prefixes = (f"{block.get('count')} × {block.get('tokens')} tokens, "
                    f"{block.get('pick')}{', primed' if block.get('primed') else ''}")
        size = f"{block.get('block_size')} ({block.get('block_size_source')})"
        achieved = _share(block.get("achieved")) if block.get("achieved") is not None \
            else f"– ({block.get('achieved_reason')})"
        gap = block.get("gap")
        tokens = f"{_count(block.get('hit_tokens'))} / {_count(block.get('queried_tokens'))}"
        cells = (prefixes, size, _share(block.get("expected")), achieved,
                 "–" if gap is None else f"{gap * 100:+.1f} pts", tokens)
        rows.append(PrefixRow(str(job.get("id")), cells, bool(block.get("exceeded"))))
    return tuple(rows)


def _share(value: Any) -> str:
    return "–" if not isinstance(value, int | float) else f"{value * 100:.1f}%"


def _count(value: Any) -> str:
    return "–" if not isinstance(value, int | float) else f"{value:,.0f}"
