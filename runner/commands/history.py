"""`runner history`: a metric over time per job, from the results index."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence

from runner.commands.compare import format_value
from runner.errors import EXIT_OK
from runner.inventory import config
from runner.plural import counted
from runner.printable import printable, printable_lines
from runner.report.compare import Metric, find_metric, verdict
from runner.report.history import Series, load_history, sparkline
from runner.results.index import URL_ENV, choose_index
from runner.run.validity import DEGRADED, INVALID, UNKNOWN

# Under a job's sparkline, when some of its points are not valid: one mark per point.
MARKS = {INVALID: "!", DEGRADED: "~"}
LEGEND = "(! invalid, ~ degraded: see runner report RUN)"
# Without --metric: TTFT p95; where no job in scope has one (an embeddings job has no first
# token), E2E p95, which every job has, and a line that says so.
DEFAULT_METRIC, NO_TTFT_METRIC = "ttft_p95", "e2e_p95"
NO_TTFT_NOTE = (f"no job here has {DEFAULT_METRIC} (an embeddings job has no first token): "
                f"showing {NO_TTFT_METRIC}; --metric NAME for another\n")


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    configured = None if env.get(URL_ENV) else configured_index(args.config_dir, env)
    index = choose_index(args.results, env, configured)
    metric, series = _load(args, index, args.metric or DEFAULT_METRIC)
    note = ""
    if not series and args.metric is None:  # e.g. embeddings jobs only: they have no TTFT
        metric, series = _load(args, index, NO_TTFT_METRIC)
        note = NO_TTFT_NOTE if series else ""
    renderers = {"text": as_text, "json": as_json, "csv": as_csv}
    text = renderers[args.format](series, metric, args)
    print(printable_lines((note if args.format == "text" else "") + text), end="")
    return EXIT_OK


def _load(args: argparse.Namespace, index: str | None, name: str) -> tuple[Metric, list[Series]]:
    """The metric `name` and its series under the command's filters (InputError: see
    load_history and find_metric)."""
    metric = find_metric(name)
    return metric, load_history(args.results, metric, plan=args.plan, benchmark=args.benchmark,
                                model=args.model, last=args.last, index=index)


def configured_index(option: str | None, env: Mapping[str, str]) -> str | None:
    """servers.yaml's `results.index_url`, when a servers.yaml is found (history needs none)."""
    found = config.find_config_dir(option, env)
    if not os.path.isfile(os.path.join(found.path, "servers.yaml")):
        return None
    return config.load_servers(found).index_url


def as_text(series: Sequence[Series], metric: Metric, args: argparse.Namespace) -> str:
    """One line per job: a sparkline, first, last, min, max and the change."""
    scope = f" of plan {args.plan}" if args.plan else ""
    runs = len({p.run_id for s in series for p in s.points})
    head = f"{metric.name} ({metric.unit}) over the last {counted(runs, 'run')}{scope}"
    if not series:
        return f"{head}: no stored values\n"
    ids = [printable(s.job_id) for s in series]  # model ids come from servers
    width = max(map(len, ids))
    spark = max(len(s.points) for s in series)
    lines = []
    for i, s in zip(ids, series, strict=True):
        lines.append(f"{i.ljust(width)}  {sparkline(s.values).ljust(spark)}  {_figures(s, metric)}")
        if any(p.validity in MARKS for p in s.points):  # under each bar: how far to trust it
            marks = "".join(MARKS.get(p.validity, "·") for p in s.points)
            lines.append(f"{''.ljust(width)}  {marks.ljust(spark)}  {LEGEND}")
    unknown = sum(p.validity == UNKNOWN for s in series for p in s.points)
    if unknown:
        lines.append(f"validity unknown for {counted(unknown, 'point')} (stored before "
                     "verdicts)")
    return "\n".join([head, *lines]) + "\n"


def as_json(series: Sequence[Series], metric: Metric, args: argparse.Namespace) -> str:
    """Every point of every job, with the filters that chose them."""
    filters = {"plan": args.plan, "benchmark": args.benchmark, "model": args.model,
               "last": args.last}
    data = {"metric": metric.name, "index_name": metric.index_name, "unit": metric.unit,
            "filters": filters, "series": [s.to_json(metric) for s in series]}
    return json.dumps(data, indent=2) + "\n"


def as_csv(series: Sequence[Series], metric: Metric, args: argparse.Namespace) -> str:
    """One row per point: job, run and value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["job_id", "benchmark", "model", "run_id", "plan", "started_at", "status",
                     "metric", "value", "validity"])
    for s in series:
        writer.writerows([s.job_id, s.benchmark, s.model, p.run_id, p.plan, p.started_at,
                          p.status, metric.name, repr(p.value), p.validity] for p in s.points)
    return out.getvalue()


def _figures(s: Series, metric: Metric) -> str:
    values = s.values
    first, last = values[0], values[-1]
    shown = [f"{label} {format_value(v, metric.name)}" for label, v in
             (("first", first), ("last", last), ("min", min(values)), ("max", max(values)))]
    change, trend = s.change(metric), verdict(metric, first, last, math.inf)
    text = "-" if change is None else format_value(change, metric.name, signed=True) \
        if metric.absolute else f"{change * 100:+.1f}%"
    return "  ".join([*shown, f"change {text} ({trend})", counted(len(values), "run")])
