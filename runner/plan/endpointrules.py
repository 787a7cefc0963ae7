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
# The SLO metrics (plan schema $defs.slo) an embeddings answer has: it streams no tokens, so
# ttft_ms, tpot_ms, itl_ms, ttfo_ms and min_output_tokens_per_s would always say no_data.
EMBEDDINGS_SLO = ("e2e_ms", "error_rate")


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


def slo_for(params: Mapping[str, Any], slo: Mapping[str, Any]) -> dict[str, Any]:
    """The SLO a job of `params` is held to: `slo` without the metrics an embeddings job never
    has (a plan's defaults, or a matrix that varies the endpoint, may set them for the
    benchmark's other jobs); `slo` unchanged for other endpoints."""
    if params.get("endpoint") != "embeddings":
        return dict(slo)
    return {key: value for key, value in slo.items() if key in EMBEDDINGS_SLO}


def slo_problem(key: str) -> str:
    """The one-line refusal of an SLO on `key` for an embeddings benchmark."""
    return (f"slo.{key} has no data for endpoint embeddings (an embeddings answer streams no "
            f"tokens: no first token, no output tokens); an embeddings job has "
            f"{', '.join(EMBEDDINGS_SLO)} (and inputs/s, prompt tokens/s in its throughput): "
            f"remove {key}")


def slo_place_problems(doc: Document, merged: Sequence[Any]) -> list[Problem]:
    """Each SLO metric that an embeddings benchmark (as for generation_place_problems) writes
    in its own `slo` and that an embeddings job never has, at its key."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    found = data.get("benchmarks")
    own: list[Any] = found if isinstance(found, list) else []
    problems = []
    for i, bench in enumerate(merged):
        slo = own[i].get("slo") if i < len(own) and isinstance(own[i], Mapping) else None
        if _embeds(bench) and isinstance(slo, Mapping):
            problems += [Problem(slo_problem(key), doc.where(("benchmarks", i, "slo", key),
                                                             key=True))
                         for key in slo if key not in EMBEDDINGS_SLO]
    return problems


def lock_slo_problems(doc: Document) -> list[Problem]:
    """In a lock: each SLO metric of a benchmark whose jobs are all embeddings ones (at least
    one) that an embeddings job never has, at its key."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    jobs = [j for j in data.get("jobs") or [] if isinstance(j, Mapping)]
    problems = []
    for i, bench in enumerate(data.get("benchmarks") or []):
        if not isinstance(bench, Mapping) or not isinstance(bench.get("slo"), Mapping):
            continue
        ends = {(j.get("params") or {}).get("endpoint") for j in jobs
                if j.get("benchmark") == bench.get("name") and isinstance(j.get("params"), Mapping)}
        if ends == {"embeddings"}:
            problems += [Problem(slo_problem(key), doc.where(("benchmarks", i, "slo", key),
                                                             key=True))
                         for key in bench["slo"] if key not in EMBEDDINGS_SLO]
    return problems


def embeddings_slo(bench: Mapping[str, Any]) -> dict[str, Any]:
    """A merged benchmark's `slo`, less what an embeddings job never has when every one of its
    jobs is an embeddings one (what its defaults set for the plan's other benchmarks)."""
    slo = bench.get("slo") or {}
    return slo_for({"endpoint": "embeddings"}, slo) if _embeds(bench) else dict(slo)


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
