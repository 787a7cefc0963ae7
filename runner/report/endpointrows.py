"""Which of the compared metrics a job pair has (issue 14 §4, pure): an embeddings job makes no
output tokens, so it is compared on the throughput it has (inputs/s, prompt tokens/s) in place
of output tokens/s, and never on latencies of output tokens (TTFT, TPOT, ITL, TTFO)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

# The compare metrics an embeddings job cannot have: they measure output tokens.
OUTPUT_PREFIXES = ("ttft_", "tpot_", "itl_", "ttfo_", "turn_ttft_")
OUTPUT_NAMES = frozenset({"output_tps", "server_tps"})
# What takes output_tps's place for an embeddings job: the throughput it has.
EMBEDDINGS_THROUGHPUT = ("input_tps", "prompt_tps")


class Named(Protocol):
    """A compare metric, as far as this module reads it."""

    @property
    def name(self) -> str: ...


M = TypeVar("M", bound=Named)


def pair_metrics(metrics: Sequence[M], base: Mapping[str, Any], new: Mapping[str, Any],
                 find: Callable[[str], M]) -> tuple[M, ...]:
    """`metrics` as the job pair (`base`, `new`: job summaries) is compared on them: unchanged
    unless both jobs are embeddings jobs (params.endpoint); then without the metrics of output
    tokens, and with `find(name)` of EMBEDDINGS_THROUGHPUT where output_tps stood (once, and
    not twice when `metrics` holds them already)."""
    if not (embeddings(base) and embeddings(new)):
        return tuple(metrics)
    chosen: list[M] = []
    for metric in metrics:
        if metric.name == "output_tps":
            chosen += [find(name) for name in EMBEDDINGS_THROUGHPUT]
        elif not _of_outputs(metric.name):
            chosen.append(metric)
    return tuple({m.name: m for m in chosen}.values())


def embeddings(job: Mapping[str, Any]) -> bool:
    """Whether the job summary is an embeddings job's (its params' endpoint)."""
    return (job.get("params") or {}).get("endpoint") == "embeddings"


def _of_outputs(name: str) -> bool:
    return name in OUTPUT_NAMES or name.startswith(OUTPUT_PREFIXES)
