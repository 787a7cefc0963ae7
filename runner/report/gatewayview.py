"""The gateway in the reports (issue 12): per job, the model's time beside the LiteLLM proxy's
overhead, and the retries, fallbacks and deployments the proxy reported (metrics.gateway)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.report.data import Job, stat

HEADERS = ("Job", "E2E p50", "Model time p50", "Model time p95", "Overhead p50",
           "Overhead p95", "Retries", "Fallbacks", "Deployments", "API bases", "Cost $",
           "LiteLLM")
ID_CHARS = 12  # a deployment id is a 64-digit hash: its start tells deployments apart
MAX_LISTED = 4  # deployments or hosts named per job, then "+N"


@dataclass(frozen=True)
class GatewayRow:
    """One job's gateway figures, as text (numbers in ms, cost in USD)."""

    job: str
    cells: tuple[str, ...]


def gateway_rows(jobs: Sequence[Job], fmt: Any) -> tuple[GatewayRow, ...]:
    """A row per job whose metrics carry a gateway block; `fmt` formats a number."""
    rows = []
    for job in jobs:
        block = stat(job, "gateway")
        if not isinstance(block, Mapping):
            continue
        cells = (fmt(stat(job, "e2e_ms.p50")), fmt(stat(job, "gateway.model_time_ms.p50")),
                 fmt(stat(job, "gateway.model_time_ms.p95")),
                 fmt(stat(job, "gateway.overhead_ms.p50")),
                 fmt(stat(job, "gateway.overhead_ms.p95")),
                 _attempts(block.get("retries")), _attempts(block.get("fallbacks")),
                 _deployments(block.get("deployments")), _listed(block.get("api_bases")),
                 fmt(block.get("cost_usd")), _listed(block.get("litellm_versions")))
        rows.append(GatewayRow(str(job.get("id")), cells))
    return tuple(rows)


def _attempts(value: Any) -> str:
    if not isinstance(value, Mapping):
        return "–"
    requests, total = value.get("requests"), value.get("total")
    return "0" if not requests else f"{requests} req ({total} in all)"


def _deployments(value: Any) -> str:
    if not isinstance(value, Mapping) or not value:
        return "–"
    items = sorted(value.items(), key=lambda item: (-_int(item[1]), str(item[0])))
    shown = [f"{str(name)[:ID_CHARS]}×{count}" for name, count in items[:MAX_LISTED]]
    return ", ".join(shown) + (f" +{len(items) - MAX_LISTED}" if len(items) > MAX_LISTED else "")


def _listed(value: Any) -> str:
    if not isinstance(value, list) or not value:
        return "–"
    names = [str(v) for v in value]
    more = f" +{len(names) - MAX_LISTED}" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def markdown_gateway(jobs: Sequence[Job], fmt: Any, escape: Any) -> list[str]:
    """The summary.md table of gateway figures (empty when no job saw a LiteLLM proxy);
    `escape` makes untrusted text safe in a Markdown cell."""
    rows = gateway_rows(jobs, fmt)
    if not rows:
        return []
    head = "| " + " | ".join(HEADERS) + " |"
    rule = "|---|" + "--:|" * 5 + "---|" * (len(HEADERS) - 6)
    body = ["| " + " | ".join(escape(c) for c in (row.job, *row.cells)) + " |" for row in rows]
    return ["", "**Gateway** (model time = E2E − LiteLLM overhead, ms)", "", head, rule, *body]
