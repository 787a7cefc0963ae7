"""Reports of a stored run as HTML, Markdown, CSV or JSON, rendered from disk only."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from runner.atomicfile import write_atomic
from runner.report.data import (
    Job,
    all_jobs,
    caveats,
    counts,
    flags,
    label,
    run_info,
    stat,
    warnings,
)
from runner.report.gatewayview import markdown_gateway
from runner.report.html import fmt, render_html
from runner.report.lengthsview import markdown_lengths
from runner.report.reasoningview import markdown_reasoning
from runner.report.replayview import markdown_replay
from runner.report.servergroups import by_benchmark
from runner.report.timeline import client_series
from runner.report.turns import markdown_turns
from runner.results.runs import StoredRun, load_run
from runner.run.capacity import capacity_line
from runner.schema import load_schema
from runner.servermetrics.timeline import job_server_series

REPORT_FILES = (("html", "report.html"), ("md", "summary.md"))
MD_ROWS = 50  # jobs per benchmark in the Markdown summary; the HTML report has them all
JOB_COLUMNS = ("id", "benchmark", "model", "status", "error", "attempts", "started_at",
               "finished_at", "stopped", "load_duration_s")
JOB_FIELDS = {"load_duration_s": "duration_s"}  # the job's wall time, apart from the metric's
DYNAMIC = ("errors", "slo.checks", "gateway.deployments", "gateway.model_groups",  # per run
           # a repeated job's: one [low, high] column per interval; each repetition's own
           # figures (a list of metrics blocks) stay in the job JSON
           "repetitions.intervals", "repetitions.per_repetition")


def render_report(run_dir: str, fmt_name: str = "html") -> str:
    """One report of the run stored in `run_dir`: html, md, csv or json."""
    if fmt_name not in RENDERERS:
        raise ValueError(f"unknown report format {fmt_name!r}")
    return RENDERERS[fmt_name](load_run(run_dir))


def write_reports(run_dir: str) -> list[str]:
    """Write report.html and summary.md into the run directory; returns their paths."""
    run = load_run(run_dir)
    paths = []
    for fmt_name, name in REPORT_FILES:
        path = os.path.join(run_dir, name)
        write_atomic(path, RENDERERS[fmt_name](run))
        paths.append(path)
    return paths


def render_json(run: StoredRun) -> str:
    """Run info, warnings and every job summary (never-run jobs as their manifest entry)."""
    jobs = all_jobs(run)
    data = {"run": run_info(run, jobs), "warnings": [w.text for w in warnings(run, jobs)],
            "jobs": [_with_timeline(run, job) for job in jobs]}
    return json.dumps(data, indent=1) + "\n"


def _with_timeline(run: StoredRun, job: Job) -> Job:
    """The job with its per-second client series (see runner.report.timeline) and the server's
    series from its scrapes (runner.servermetrics.timeline), when it ran."""
    slug = job.get("slug")
    if job.get("metrics") is None or not isinstance(slug, str):
        return job
    return {**job, "timeline": {"client": client_series(run.requests(slug)),
                                "server": job_server_series(run.run_dir, job)}}


def render_markdown(run: StoredRun) -> str:
    """A compact summary for a pull-request comment or a chat message."""
    jobs = all_jobs(run)
    info = run_info(run, jobs)
    inventory = info["inventory"]
    lines = [f"### runner · {_md(info['plan'].get('name'))} · run `{info['run_id']}`", "",
             f"**{_md(info['badge'][0])}** · jobs: {_totals(info['totals'])} · inventory: "
             f"{_md(inventory.get('source'))}"
             + (f" ({_md(inventory['server'])})" if inventory.get("server") else "") + " · "
             f"{info['started_at']} → {info['finished_at'] or 'not finished'}"]
    found = warnings(run, jobs)
    if found:
        lines += ["", "**Warnings**", *(f"- ⚠ {_md(w.text)}" for w in found)]
    records = run.manifest.get("capacity") or []
    if records:
        lines += ["", "**Capacity at SLO**", *(f"- {_md(capacity_line(r))}" for r in records)]
    for name, group in by_benchmark(jobs).items():
        lines += ["", f"#### {_md(name)} ({_totals(counts(group))})", "", *_md_table(group),
                  *_md_caveats(group[:MD_ROWS]), *markdown_gateway(group[:MD_ROWS], fmt, _md),
                  *markdown_turns(group[:MD_ROWS], fmt, _md),
                  *markdown_reasoning(group[:MD_ROWS], fmt, _md),
                  *markdown_lengths(group[:MD_ROWS], fmt, _md),
                  *markdown_replay(group[:MD_ROWS], _md)]
    return "\n".join(lines) + "\n"


def _totals(totals: Mapping[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in totals.items())


MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")


def _md(value: Any) -> str:
    """Untrusted text made safe for a Markdown table cell: every character Markdown gives a
    meaning (emphasis, links, tags, pipes, entities) backslash-escaped, newlines made spaces.
    Markdown shows `\\<=` as `<=`; HTML entities such as `&lt;` would show as written in
    the raw file and in every renderer that does not decode them."""
    text = str(value if value is not None else "–")
    return MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def _md_table(jobs: Sequence[Job]) -> list[str]:
    head = ["| model | params | status | TTFT p50 ms | TTFT p95 ms | TPOT p50 ms | tok/s "
            "| errors |", "|---|---|---|--:|--:|--:|--:|---|"]
    rows = [_md_row(job) for job in jobs[:MD_ROWS]]
    if len(jobs) > MD_ROWS:
        rows.append(f"| … {len(jobs) - MD_ROWS} more jobs: see report.html | | | | | | | |")
    return head + rows


def _md_row(job: Job) -> str:
    kinds = stat(job, "errors") or {}
    failed = stat(job, "requests.failed")
    errors = "–" if failed is None else str(failed)
    if kinds:
        errors += " (" + ", ".join(f"{k} ×{n}" for k, n in kinds.items()) + ")"
    cells = [job.get("model"), label(job), " · ".join([str(job.get("status")), *flags(job)]),
             fmt(stat(job, "ttft_ms.p50")), fmt(stat(job, "ttft_ms.p95")),
             fmt(stat(job, "tpot_ms.p50")), _tokens_per_s(job), errors]
    return "| " + " | ".join(_md(c) for c in cells) + " |"


def _tokens_per_s(job: Job) -> str:
    """The client's output tok/s, with the server's own beside it when its metrics say; an
    embeddings job's inputs/s (it has no output tokens)."""
    if (inputs := stat(job, "throughput.inputs_per_s")) is not None:
        return f"{fmt(inputs)} inputs/s"
    server = (job.get("server_metrics") or {}).get("generation_tokens_per_s")
    client = fmt(stat(job, "throughput.output_tokens_per_s"))
    return client if server is None else f"{client} (server {fmt(server)})"
def _md_caveats(jobs: Sequence[Job]) -> list[str]:
    """Why jobs are not valid, one line per reason with its figure and remedy."""
    found = caveats(jobs)
    if not found:
        return []
    return ["", "**Validity**", *(f"- `{_md(c.job)}` {c.verdict}: **{c.code}** "
                                  f"({_md(c.figure)}): {_md(c.explanation)}. "
                                  f"Remedy: {_md(c.remedy)}." for c in found)]


def render_csv(run: StoredRun) -> str:
    """One row per job with every metric as a dotted column (`ttft_ms.p95`) and `param.<name>`."""
    jobs = all_jobs(run)
    flat = [flatten(job.get("metrics")) for job in jobs]
    params = list(dict.fromkeys(k for job in jobs for k in job.get("params") or {}))
    metrics = metric_columns(flat)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", *JOB_COLUMNS, *(f"param.{p}" for p in params), *metrics])
    for job, values in zip(jobs, flat, strict=True):
        given = job.get("params") or {}
        measured = job.get("metrics") is not None
        row = [run.run_id, *(job.get(JOB_FIELDS.get(c, c)) for c in JOB_COLUMNS),
               *(given.get(p) for p in params), *(_metric(values, c, measured) for c in metrics)]
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def _metric(values: Mapping[str, Any], column: str, measured: bool) -> Any:
    if column in values:
        return values[column]
    return 0 if measured and column.startswith("errors.") else None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True)
    return repr(value) if isinstance(value, float) else str(value)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested metrics as {dotted.key: value}; SLO checks keyed by metric and statistic."""
    if isinstance(value, Mapping):
        found: dict[str, Any] = {}
        for key, sub in value.items():
            found.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return found
    if prefix == "slo.checks" and isinstance(value, list):
        return {f"{prefix}.{_check_name(c)}.{k}": c.get(k) for c in value
                for k in ("value", "limit", "passed")}
    return {prefix: value} if prefix else {}


def _check_name(check: Mapping[str, Any]) -> str:
    return ".".join(str(p) for p in (check.get("metric"), check.get("stat")) if p is not None)


def metric_columns(flat: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every metric column in the schema's order; run-dependent ones (errors.*) sorted in place."""
    seen = {key for row in flat for key in row}
    columns: list[str] = []
    for leaf in schema_leaves():
        if leaf in DYNAMIC:
            columns += sorted(k for k in seen if k.startswith(leaf + "."))
        else:
            columns.append(leaf)
    # A null group (no SLO, closed loop) has no column of its own: its leaves are listed.
    extra = [k for k in sorted(seen - set(columns))
             if not any(c.startswith(k + ".") for c in columns)]
    return columns + [k for k in extra if k not in DYNAMIC]


def schema_leaves() -> list[str]:
    """The dotted paths of every metric leaf in schemas/result.schema.json, in schema order."""
    defs = load_schema("result")["$defs"]
    return list(_leaves(defs["metrics"], defs, ""))


def _leaves(node: Mapping[str, Any], defs: Mapping[str, Any], prefix: str) -> Iterator[str]:
    node = _resolve(node, defs)
    props = node.get("properties")
    if not props or node.get("type") == "array":
        yield prefix
        return
    for key, sub in props.items():
        yield from _leaves(sub, defs, f"{prefix}.{key}" if prefix else key)


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    if "$ref" in node:
        return _resolve(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    for option in node.get("oneOf", ()):
        if "$ref" in option or "properties" in option:
            return _resolve(option, defs)
    return node


RENDERERS: dict[str, Callable[[StoredRun], str]] = {
    "html": render_html, "md": render_markdown, "csv": render_csv, "json": render_json,
}
