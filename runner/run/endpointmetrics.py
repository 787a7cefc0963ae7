"""Throughput of the inputs a job sent (issue 14 §4): embeddings count inputs, not outputs."""

from __future__ import annotations

from collections.abc import Sequence

from runner.load.records import RequestRecord


def input_throughput(measured: Sequence[RequestRecord], ok: Sequence[RequestRecord],
                     duration_s: float | None) -> dict[str, float | None]:
    """The summary's `throughput` keys of inputs, over the `ok` requests of the `measured` ones
    in a window of `duration_s` seconds (metrics._window_s; None or 0: unknown, and so are
    these). An embeddings job (a measured request carries inputs) also gets
    `output_tokens_per_s` None: it has no output tokens, and 0 would read as a measured zero.

    - `inputs_per_s`: inputs embedded per second (each embeddings request's `inputs`, its
      batch_size); None for a job of another endpoint (no request carries inputs).
    - `prompt_tokens_per_s`: prompt tokens per second, from each answer's usage (requests
      without usage count 0); for every endpoint, as vLLM's bench reports input throughput."""
    embeds = {"output_tokens_per_s": None} if embeddings_job(measured) else {}
    if not duration_s:
        return {"inputs_per_s": None, "prompt_tokens_per_s": None, **embeds}
    counted = [r.inputs for r in ok if r.inputs is not None]
    prompt = sum(r.prompt_tokens or 0 for r in ok)
    return {"inputs_per_s": sum(counted) / duration_s if counted else None,
            "prompt_tokens_per_s": prompt / duration_s, **embeds}


def embeddings_job(records: Sequence[RequestRecord]) -> bool:
    """Whether `records` are an embeddings job's: one of them carries its inputs."""
    return any(r.inputs is not None for r in records)
