"""What a job's params may not mix with its endpoint (issue 14 §4): the fields of one endpoint
set on a job of another would be sent nowhere, silently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Generation fields an embeddings request has no use for (kept out of its params' defaults).
GENERATION_ONLY = ("max_tokens", "temperature", "seed", "stream")


def endpoint_problem(params: Mapping[str, Any]) -> str | None:
    """Why a job's completed `params` cannot run, or None:
    batch_size (workload.embeddings) on a job that is not an embeddings one, or generation
    fields set on an embeddings job."""
    name = params.get("endpoint", "chat")
    if "batch_size" in params and name != "embeddings":
        return (f"batch_size (workload.embeddings) sizes embeddings requests, and this job's "
                f"endpoint is {name}: set endpoint: embeddings, or remove it")
    if name == "embeddings":
        given = [key for key in GENERATION_ONLY if key in params]
        if given:
            return (f"endpoint embeddings generates no text: remove {', '.join(given)} "
                    "(an embeddings request is never streamed and has no sampling)")
    return None
