"""The LiteLLM gateway in front of a model, measured apart from it (issue 12): what runner asks
the proxy for on every request, and each job's `metrics["gateway"]` from its records (pure)."""

from __future__ import annotations

import fnmatch
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from runner.load.records import RequestRecord
from runner.run.metrics import distribution

NO_RETRIES = {"x-litellm-num-retries": "0"}  # LiteLLM reads it into the request's num_retries
NO_FALLBACKS = {"disable_fallbacks": True}  # the router pops it before calling the backend


def gateway_request(kind: str, allowed: Mapping[str, bool]) -> tuple[dict[str, str],
                                                                       dict[str, Any]]:
    """(headers, body fields) runner adds to each request of a `kind` server whose servers.yaml
    `gateway` allows `allowed` ({retries, fallbacks}: False = ask the proxy for none).

    Sent to every `kind: litellm` server, a LiteLLM proxy or an engine behind no proxy alike:
    runner cannot know which before the first answer, and the bodies are built before the
    clock starts. A header an engine does not know is ignored by every HTTP server; the body
    field is ignored by vLLM (it logs a warning per request: tests/commands/test_apply_gateway
    runs a job against the real engine), and a server that refuses unknown fields is told
    with `gateway: {fallbacks: true}`. The simulator (`kind: mock`) gets neither."""
    if kind != "litellm":
        return {}, {}
    headers = {} if allowed.get("retries") else dict(NO_RETRIES)
    body = {} if allowed.get("fallbacks") else dict(NO_FALLBACKS)
    return headers, body


def summarize_gateway(records: Sequence[RequestRecord], model: str) -> dict[str, Any] | None:
    """A job's gateway block from its measured requests that carried LiteLLM headers; None when
    none did (not a LiteLLM proxy, or a proxy that sends no headers).

    `overhead_ms`: LiteLLM's own time per ok request (`x-litellm-overhead-duration-ms`);
    `model_time_ms`: the client's E2E minus that overhead, per ok request that has both: the
    time the model (and the network to it) took. `retries`/`fallbacks`: requests with any,
    and their total. `mismatched`: requests for `model` answered by another model group with
    no fallback reported (a route runner did not ask for; a wildcard group that matches
    `model` is the same model). LiteLLM 1.106.2 names an alias's answers with the alias as
    their group (checked against the real proxy), so aliases show only across jobs: see
    run_gateway's `shared_deployments`."""
    seen = [(r, r.gateway) for r in records if not r.warmup and r.gateway]
    if not seen:
        return None
    ok = [(r, g) for r, g in seen if r.ok]
    overhead = [g["overhead_ms"] for _, g in ok if _finite(g.get("overhead_ms"))]
    model_time = [max(0.0, r.e2e_ms - g["overhead_ms"]) for r, g in ok
                  if r.e2e_ms is not None and _finite(g.get("overhead_ms"))]
    costs = [g["cost_usd"] for _, g in seen if _finite(g.get("cost_usd"))]
    groups = Counter(g["model_group"] for _, g in seen if g.get("model_group"))
    return {
        "requests": len(seen),
        "overhead_ms": distribution(overhead),
        "model_time_ms": distribution(model_time),
        "retries": _attempts(g.get("attempted_retries") for _, g in seen),
        "fallbacks": _attempts(g.get("attempted_fallbacks") for _, g in seen),
        "deployments": _most(Counter(g["deployment_id"] for _, g in seen
                                     if g.get("deployment_id"))),
        "model_groups": _most(groups),
        "mismatched": sum(1 for _, g in seen if _mismatch(g, model)),
        "api_bases": sorted({g["api_base"] for _, g in seen if g.get("api_base")})[:MOST],
        "cost_usd": math.fsum(costs) if costs else None,
        "litellm_versions": sorted({g["litellm_version"] for _, g in seen
                                    if g.get("litellm_version")})[:MOST],
    }


# A proxy names a handful of deployments, groups, hosts and versions; one that sends a new name
# with every answer would grow the job's JSON by a name per request: the MOST most frequent are
# kept, and the rest counted under OTHERS.
MOST = 32
OTHERS = "(others)"


def _most(counts: Counter[str]) -> dict[str, int]:
    kept = dict(counts.most_common(MOST))
    rest = sum(counts.values()) - sum(kept.values())
    return {**kept, OTHERS: rest} if rest else kept


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _attempts(counts: Any) -> dict[str, int]:
    values = [c for c in counts if isinstance(c, int) and c > 0]
    return {"requests": len(values), "total": sum(values)}


def _mismatch(gateway: Mapping[str, Any], model: str) -> bool:
    group = gateway.get("model_group")
    if not group or group == model or gateway.get("attempted_fallbacks"):
        return False
    return not ("*" in group and fnmatch.fnmatchcase(model, group))


def run_gateway(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The manifest's `gateway` block from a run's job summaries: every LiteLLM version and
    every deployment (with its requests) seen, so a night-to-night change can be tied to a
    gateway upgrade or a new deployment; `shared_deployments`: each deployment that answered
    more than one model id of the run, with those ids (an alias and its target, or the ids a
    wildcard route serves: LiteLLM 1.106.2 reports an alias as its own model group, so only
    this cross-job view shows it). None when no job saw a LiteLLM proxy."""
    versions: set[str] = set()
    deployments: Counter[str] = Counter()
    models: dict[str, set[str]] = {}
    for summary in summaries:
        block = (summary.get("metrics") or {}).get("gateway")
        if not isinstance(block, Mapping):
            continue
        versions.update(v for v in block.get("litellm_versions") or () if isinstance(v, str))
        for name, count in (block.get("deployments") or {}).items():
            deployments[str(name)] += int(count) if isinstance(count, int) else 0
            if name != OTHERS:
                models.setdefault(str(name), set()).add(str(summary.get("model")))
    if not versions and not deployments:
        return None
    shared = {name: sorted(ids) for name, ids in sorted(models.items()) if len(ids) > 1}
    return {"litellm_versions": sorted(versions)[:MOST],
            "deployments": dict(sorted(_most(deployments).items())),
            "shared_deployments": dict(list(shared.items())[:MOST])}


def retried(metrics: Mapping[str, Any]) -> str | None:
    """The gateway_retries figure of a job's metrics (None: no request was retried)."""
    return _attempted(metrics, "retries", "retried by the proxy")


def fell_back(metrics: Mapping[str, Any]) -> str | None:
    """The gateway_fallbacks figure of a job's metrics (None: no request fell back)."""
    return _attempted(metrics, "fallbacks", "answered after a fallback")


def mismatched(metrics: Mapping[str, Any]) -> str | None:
    """The deployment_mismatch figure of a job's metrics (None: every group was the model)."""
    block = _block(metrics)
    count = _int(block.get("mismatched"))
    if count <= 0:
        return None
    groups = block.get("model_groups")
    names = ", ".join(sorted(str(g) for g in groups)) if isinstance(groups, Mapping) else "?"
    return f"{count} requests answered by another model group (groups seen: {names[:200]})"


def _attempted(metrics: Mapping[str, Any], what: str, done: str) -> str | None:
    block = _block(metrics)
    counts = block.get(what)
    counts = counts if isinstance(counts, Mapping) else {}
    requests = _int(counts.get("requests"))
    if requests <= 0:
        return None
    return (f"{requests} of {_int(block.get('requests'))} requests {done} "
            f"({_int(counts.get('total'))} {what} in all)")


def _block(metrics: Mapping[str, Any]) -> Mapping[str, Any]:
    block = metrics.get("gateway")
    return block if isinstance(block, Mapping) else {}


def _int(value: Any) -> int:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return int(value) if ok else 0
