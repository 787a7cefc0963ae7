"""`runner compare BASE NEW`: compare two stored runs; exit 4 on a regression."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from runner.errors import EXIT_GATE, EXIT_OK
from runner.printable import printable, printable_lines
from runner.report.compare import (
    NO_DATA,
    Comparison,
    JobPair,
    Row,
    compare,
    parse_metrics,
    parse_threshold,
)
from runner.report.noise import NOISE_LEVEL, NOISE_MIN_SAMPLES, NOISE_ROUNDS
from runner.results.runs import StoredRun, load_run, resolve_run
from runner.run.repeat import REPEAT_LEVEL, REPEAT_METHOD
from runner.run.validity import UNKNOWN, stored_verdict

_HEAD = ("", "metric", "unit", "base", "new", "delta", "delta%", "verdict")


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    threshold = parse_threshold(args.threshold)
    metrics = parse_metrics(args.metric)
    base, new = (load_run(resolve_run(ref, args.results, args.plan))
                 for ref in (args.base, args.new))
    if base.run_dir == new.run_dir:
        print(f"note: BASE and NEW are the same run ({base.run_dir})", file=sys.stderr)
    result = compare(base, new, metrics, threshold, args.gate_invalid)
    failures = result.gate_failures(args.allow_missing)
    renderers = {"text": as_text, "md": as_markdown, "json": as_json}
    print(printable_lines(renderers[args.format](result, base, new, failures)))
    for line in failures:
        print(f"GATE: {printable(line)}", file=sys.stderr)
    return EXIT_GATE if failures else EXIT_OK


def as_json(result: Comparison, base: StoredRun, new: StoredRun,
            failures: Sequence[str] = ()) -> str:
    """Everything: both runs, every row with its interval, and the summary."""
    data = {"base": _run_info(base), "new": _run_info(new), "threshold": result.threshold,
            "metrics": [m.name for m in result.metrics],
            "noise": {"level": NOISE_LEVEL, "rounds": NOISE_ROUNDS,
                      "min_samples": NOISE_MIN_SAMPLES,
                      "repetitions": {"method": REPEAT_METHOD, "level": REPEAT_LEVEL}},
            "jobs": [_job_json(job) for job in result.jobs],
            "only_in_base": list(result.only_in_base), "only_in_new": list(result.only_in_new),
            "set_aside": [{"id": job.id, "why": job.aside} for job in result.jobs if job.aside],
            "summary": {**result.counts(), "gate": "failed" if failures else "passed",
                        "gate_failures": list(failures)}}
    return json.dumps(data, indent=2)


def _job_json(job: JobPair) -> dict[str, Any]:
    new, base = job.new, job.base
    return {"id": job.id, "base_id": base["id"], "benchmark": new.get("benchmark"),
            "model": new.get("model"), "point": new.get("point"),
            "status": {"base": base.get("status"), "new": new.get("status")},
            "validity": {"base": stored_verdict(base), "new": stored_verdict(new)},
            "set_aside": job.aside,
            "params_changed": {k: list(v) for k, v in job.params_changed().items()},
            "rows": [_row_json(row) for row in job.rows]}


def _row_json(row: Row) -> dict[str, Any]:
    return {"metric": row.metric.name, "unit": row.metric.unit, "base": row.base,
            "new": row.new, "delta": row.delta, "delta_pct": row.delta_pct,
            "verdict": row.verdict, "within_noise": row.within_noise,
            "ci": list(row.ci) if row.ci else None, "gates": row.gates,
            **({"intervals": {"base": list(row.intervals[0]), "new": list(row.intervals[1])},
                "outside_both": row.outside_both} if row.intervals else {})}


def as_text(result: Comparison, base: StoredRun, new: StoredRun,
            failures: Sequence[str] = ()) -> str:
    """An aligned table per job; `>>` marks a regression that fails the gate."""
    lines = [f"base: {_run_label(base)}", f"new:  {_run_label(new)}",
             f"threshold: {result.threshold * 100:g}%; noise: {NOISE_LEVEL:.0%} interval of "
             "the difference, from the request logs (latency metrics); for jobs repeated in "
             "both runs, each run's 95% t interval across its repetitions ('outside both': the "
             "change is outside both)"]
    for job in result.jobs:
        table = [list(_HEAD)] + [[">>" if r.gates else "", *_cells(r)] for r in job.rows]
        lines += ["", printable(job.id), *("  " + line for line in _align(table)), *_notes(job)]
    lines.append("")
    lines += [f"set aside: {printable(line)}" for line in set_aside_lines(result)]
    lines += [f"only in base: {printable(job_id)}" for job_id in result.only_in_base]
    lines += [f"only in new: {printable(job_id)}" for job_id in result.only_in_new]
    gate = [f"gate: FAILED: {printable(line)}" for line in failures] or ["gate: passed"]
    return "\n".join([*lines, summary_line(result), *gate])


def as_markdown(result: Comparison, base: StoredRun, new: StoredRun,
                failures: Sequence[str] = ()) -> str:
    """A summary and a table per job, for a pull-request comment."""
    lines = [f"**runner compare**: base `{base.plan_name}/{base.run_id}` → "
             f"new `{new.plan_name}/{new.run_id}`, "
             f"threshold {result.threshold * 100:g}%", "", summary_line(result),
             *(["", *(f"**Gate failed:** {printable(line)}" for line in failures)]
               if failures else [])]
    for job in result.jobs:
        lines += ["", f"#### `{printable(job.id)}`", "",
                  "| metric | base | new | Δ | Δ% | verdict |", "|---|--:|--:|--:|--:|---|"]
        for row in job.rows:
            cells = _cells(row)
            cells[-1] = f"**{cells[-1]}**" if row.gates else cells[-1]
            lines.append("| " + " | ".join([f"{cells[0]} ({cells[1]})", *cells[2:]]) + " |")
        lines += [f"- {note.strip()}" for note in _notes(job)]
    aside = set_aside_lines(result)
    lines += ["", "**Set aside from the gate:**", *(f"- {printable(line)}" for line in aside)] \
        if aside else []
    for label, ids in (("Only in base", result.only_in_base), ("Only in new", result.only_in_new)):
        if ids:
            lines += ["", f"**{label}:** " + ", ".join(f"`{printable(i)}`" for i in ids)]
    return "\n".join(lines)


def set_aside_lines(result: Comparison) -> list[str]:
    """Each job compared but not gated because it is not valid on a side, and why; last, how
    to gate them."""
    lines = [f"{job.id}: {job.aside}" for job in result.jobs if job.aside]
    if lines:
        lines.append(f"{_plural(len(lines), 'job')} not valid on a side: compared, not gated "
                     "(--gate-invalid gates them)")
    return lines


def summary_line(result: Comparison) -> str:
    """N regressions, M improvements, K within noise; and the unmatched jobs."""
    c = result.counts()
    aside = f"; {c['set_aside']} set aside (not valid)" if c["set_aside"] else ""
    return (f"{_plural(c['regressions'], 'regression')}{aside}, "
            f"{_plural(c['improvements'], 'improvement')}, {c['within_noise']} within noise; "
            f"jobs only in base: {len(result.only_in_base)}; "
            f"only in new: {len(result.only_in_new)}")


def _cells(row: Row) -> list[str]:
    """metric, unit, base, new, delta, delta%, verdict."""
    m = row.metric
    delta = "-" if row.delta is None else format_value(row.delta, m.name, signed=True)
    pct = "-" if row.delta_pct is None else f"{row.delta_pct:+.1f}%"
    base, new = format_value(row.base, m.name), format_value(row.new, m.name)
    return [m.name, m.unit, base, new, delta, pct, _verdict(row)]


def _verdict(row: Row) -> str:
    if row.gates:
        return "REGRESSION" + (" (outside both)" if row.outside_both else "")
    if row.aside and row.verdict == "regression" and not row.within_noise:
        return "regression (set aside)"
    if row.within_noise and row.verdict != "same":
        return f"{row.verdict} (within noise)"
    if row.outside_both and row.verdict != "same":
        return f"{row.verdict} (outside both)"
    return row.verdict


def format_value(value: float | None, metric: str, *, signed: bool = False) -> str:
    """A metric value for a table: error_rate in percent (a delta in points), others to 3-4
    significant digits."""
    if value is None:
        return "-"
    sign = "+" if signed else ""
    if metric == "error_rate":
        return f"{value * 100:{sign}.2f}" + ("pp" if signed else "")
    digits = 1 if abs(value) >= 100 else 2 if abs(value) >= 1 else 3
    return f"{value:{sign}.{digits}f}"


def _notes(job: JobPair) -> list[str]:
    status = (job.base.get("status"), job.new.get("status"))
    notes = [] if status == ("ok", "ok") else [f"  status: {status[0]} -> {status[1]}"]
    if job.aside:
        notes.append(f"  set aside, not gated: {job.aside}")
    unknown = [side for side, summary in (("base", job.base), ("new", job.new))
               if stored_verdict(summary) == UNKNOWN]
    if unknown:
        notes.append(f"  validity unknown in {' and '.join(unknown)} (stored before verdicts): "
                     "gated as before")
    if lacking := [f"{row.metric.name} ({_lacking_side(row)})" for row in job.rows
                   if row.verdict == NO_DATA]:
        notes.append("  skipped, no data: " + ", ".join(lacking))
    changed = job.params_changed()
    if changed:
        notes.append("  params changed: " + ", ".join(
            f"{key} {_plain(old)} -> {_plain(new)}" for key, (old, new) in changed.items()))
    return notes


def _lacking_side(row: Row) -> str:
    if row.base is None and row.new is None:
        return "both"
    return "base" if row.base is None else "new"


def _plain(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if value is not None else "(unset)"


def _align(table: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    left = {0, 1, 2, len(widths) - 1}
    return ["  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in table]


def _run_label(run: StoredRun) -> str:
    started = run.manifest.get("started_at")
    return f"{run.plan_name}/{run.run_id}" + (f" (started {started})" if started else "")


def _run_info(run: StoredRun) -> dict[str, Any]:
    m = run.manifest
    return {"run_id": run.run_id, "plan": run.plan_name, "run_dir": run.run_dir,
            "started_at": m.get("started_at"), "status": m.get("status")}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
