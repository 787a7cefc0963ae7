"""What a job's params mean for its endpoint (issue 14 §4): fields of one endpoint set on a
job of another would be sent nowhere, silently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Generation fields an embeddings request has no use for: left out of an embeddings job's
# params (a plan's `defaults:` may set them for its other benchmarks), never sent.
GENERATION_ONLY = ("max_tokens", "temperature", "seed", "stream")


def endpoint_problem(params: Mapping[str, Any]) -> str | None:
    """Why a job's completed `params` cannot run, or None: batch_size (workload.embeddings) on
    a job that is not an embeddings one."""
    name = params.get("endpoint", "chat")
    if "batch_size" in params and name != "embeddings":
        return (f"batch_size (workload.embeddings) sizes embeddings requests, and this job's "
                f"endpoint is {name}: set endpoint: embeddings, or remove it")
    return None


def for_endpoint(params: dict[str, Any]) -> dict[str, Any]:
    """`params` without the fields its endpoint has no use for (GENERATION_ONLY for embeddings)."""
    if params.get("endpoint") == "embeddings":
        for key in GENERATION_ONLY:
            params.pop(key, None)
    return params
