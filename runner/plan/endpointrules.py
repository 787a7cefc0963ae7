"""What a job's params mean for its endpoint (issue 14 §4): fields of one endpoint set on a
job of another would be sent nowhere, silently."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.errors import Problem
from runner.yamlfile import Document

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


def generation_place_problems(doc: Document, merged: Sequence[Any]) -> list[Problem]:
    """Each GENERATION_ONLY field that an embeddings benchmark (its workload's endpoint, merged
    over the defaults, not set by its matrix) writes in its own workload or matrix, at its
    key: it would be left out of every one of its jobs, silently. (The plan's defaults may set
    them for its other benchmarks.)"""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    found = data.get("benchmarks")
    own: list[Any] = found if isinstance(found, list) else []
    problems = []
    for i, bench in enumerate(merged):
        if not (_embeds(bench) and i < len(own) and isinstance(own[i], Mapping)):
            continue
        for section in ("workload", "matrix"):
            written = own[i].get(section)
            problems += [Problem(f"{key} has no meaning for endpoint embeddings (an embeddings "
                                 f"request generates no text and is never streamed): remove "
                                 f"{key}", doc.where(("benchmarks", i, section, key), key=True))
                         for key in GENERATION_ONLY
                         if isinstance(written, Mapping) and key in written]
    return problems


def _embeds(bench: Any) -> bool:
    """Whether every job of a merged benchmark is an embeddings one."""
    if not isinstance(bench, Mapping):
        return False
    workload, matrix = bench.get("workload"), bench.get("matrix")
    varied = isinstance(matrix, Mapping) and ("endpoint" in matrix or "include" in matrix)
    return isinstance(workload, Mapping) and workload.get("endpoint") == "embeddings" \
        and not varied
