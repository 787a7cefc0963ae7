"""The RECAP printed after `runner apply`: one line per job, totals, source and path (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.plan.expand import point_label


def _ms(dist: Mapping[str, Any] | None, stat: str) -> str:
    value = (dist or {}).get(stat)
    return "-" if value is None else f"{value:.1f}"


def job_line(summary: Mapping[str, Any]) -> str:
    """benchmark, model, parameters, status, requests, TTFT p50/p95, TPOT p50, tokens/s."""
    metrics = summary.get("metrics") or {}
    point = point_label(_point(summary)) or _load_label(summary.get("params") or {})
    status = summary["status"] + (" (resumed)" if summary.get("resumed") else "")
    parts = [summary["benchmark"], summary["model"], point, status]
    if metrics:
        req = metrics["requests"]
        tput = metrics["throughput"]["output_tokens_per_s"]
        ttft = metrics["ttft_ms"]
        parts += [f"ok={req['ok']} failed={req['failed']}",
                  f"TTFT p50 {_ms(ttft, 'p50')} p95 {_ms(ttft, 'p95')} ms",
                  f"TPOT p50 {_ms(metrics['tpot_ms'], 'p50')} ms",
                  f"{tput:.1f} tok/s" if tput is not None else "- tok/s"]
        parts += _flags(metrics)
    if summary.get("error") and summary["status"] != "ok":
        parts.append(f"({summary['error']})")
    return "  ".join(parts)


def _load_label(params: Mapping[str, Any]) -> str:
    """Without a matrix point, the load that defines the job (`concurrency=8`, `rate=4`)."""
    return point_label({k: params[k] for k in ("concurrency", "rate") if k in params}) or "-"


def _point(summary: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(summary.get("point") or {})


def _flags(metrics: Mapping[str, Any]) -> list[str]:
    flags = []
    if (metrics.get("client") or {}).get("client_bound"):
        flags.append("client_bound")
    slo = metrics.get("slo")
    if slo is not None:
        misses = slo_misses({"metrics": metrics})
        flags.append(f"SLO missed: {'; '.join(misses)}" if misses else "SLO ok")
    return flags


def slo_misses(summary: Mapping[str, Any]) -> list[str]:
    """One line per missed SLO check of a job, e.g. `ttft_ms p95 512.3 > 500`."""
    slo = (summary.get("metrics") or {}).get("slo") or {}
    return [_describe(check) for check in slo.get("checks", []) if not check.get("passed")]


def _describe(check: Mapping[str, Any]) -> str:
    stat = f" {check['stat']}" if check.get("stat") else ""
    value = check.get("value")
    shown = "no data" if value is None else f"{value:.4g}"
    relation = ">=" if check["metric"].startswith("min_") else "<="
    return f"{check['metric']}{stat} {shown} (limit {relation} {check['limit']})"


def totals(summaries: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {"ok": 0, "failed": 0, "skipped": 0, "interrupted": 0}
    for s in summaries:
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    return counts


def render(summaries: Sequence[Mapping[str, Any]], source_line: str, run_dir: str) -> str:
    """The whole recap as text."""
    lines = ["", "RECAP " + "*" * 66]
    lines += [job_line(s) for s in summaries]
    t = totals(summaries)
    lines += ["", " ".join(f"{k}={v}" for k, v in t.items()), source_line, f"results: {run_dir}"]
    return "\n".join(lines)
