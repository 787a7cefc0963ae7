"""Throughput of the inputs a job sent (issue 14 §4): embeddings count inputs, not outputs."""

from __future__ import annotations

from collections.abc import Sequence

from runner.load.records import RequestRecord


def input_throughput(ok: Sequence[RequestRecord],
                     duration_s: float | None) -> dict[str, float | None]:
    """The summary's `throughput` keys of inputs, over the ok requests of a window of
    `duration_s` seconds (metrics._window_s; None or 0: unknown, and so are these):

    - `inputs_per_s`: inputs embedded per second (each embeddings request's `inputs`, its
      batch_size); None for a job of another endpoint (no request carries inputs).
    - `prompt_tokens_per_s`: prompt tokens per second, from each answer's usage (requests
      without usage count 0); for every endpoint, as vLLM's bench reports input throughput."""
    if not duration_s:
        return {"inputs_per_s": None, "prompt_tokens_per_s": None}
    counted = [r.inputs for r in ok if r.inputs is not None]
    prompt = sum(r.prompt_tokens or 0 for r in ok)
    return {"inputs_per_s": sum(counted) / duration_s if counted else None,
            "prompt_tokens_per_s": prompt / duration_s}
