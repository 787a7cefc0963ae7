"""Counted nouns for what the CLI prints: `1 benchmark`, `2 benchmarks`."""

from __future__ import annotations


def counted(count: int, word: str) -> str:
    """`count` and `word`, with an s unless the count is one."""
    return f"{count} {word}{'' if count == 1 else 's'}"
