"""The RECAP printed after `runner apply`: one aligned row per job, totals that count SLO misses,
where everything is, and what to run next (pure)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.plan.expand import point_label
from runner.plan.servers import id_server
from runner.plan.totals import totals_text
from runner.printable import printable, printable_lines
from runner.results.jobfiles import COMPLETE_STATUSES as FINISHED
from runner.run.capacity import capacity_line
from runner.run.queueing import queued_latency
from runner.run.validity import UNKNOWN, VALID, first_reason, stored_verdict, tokens_estimated

ABSENT = "-"  # a number that does not exist is shown as absent, never as 0


@dataclass(frozen=True)
class RunFacts:
    """What the recap tells about the run besides its jobs."""

    run_dir: str
    status: str  # the run's status: ok, failed or interrupted
    plan_ref: str  # the plan or lock file the run was started with
    plan_name: str
    source_line: str
    planned: Mapping[str, int | float]  # the plan view's totals (benchmarks, skipped, models, jobs)
    report: str | None = None  # report.html, when it was written
    statuses: Mapping[str, str] | None = None  # job id -> status in the manifest
    options: tuple[str, ...] = ()  # apply's options a resume needs too (--server demo, ...)
    capacity: Sequence[Mapping[str, Any]] = ()  # the run's capacity search records


def number(value: float | None) -> str:
    """A measured figure with sensible digits: 429.4, 41.2, 4.00, 0.0123; absent as `-`."""
    if value is None:
        return ABSENT
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    size = abs(value)
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if size >= 1 else f"{value:.3g}"


HEADER = ("benchmark", "model", "params", "status", "req ok", "req failed", "TTFT p50 ms",
          "TTFT p95 ms", "TPOT p50 ms", "tok/s", "notes")
NUMERIC = frozenset(range(4, 10))  # right-aligned columns


def job_cells(summary: Mapping[str, Any], status: str | None = None) -> list[str]:
    """One job as the recap's cells (see HEADER); a number that does not exist is `-`."""
    metrics = summary.get("metrics") or {}
    point = point_label(_point(summary)) or load_label(summary.get("params") or {})
    shown = (status or summary["status"]) + (" (resumed)" if summary.get("resumed") else "")
    req = metrics.get("requests") or {}
    figures = [_count(req.get("ok")), _count(req.get("failed")),
               number(_stat(metrics, "ttft_ms", "p50")), number(_stat(metrics, "ttft_ms", "p95")),
               number(_stat(metrics, "tpot_ms", "p50")),
               _tokens_per_s(summary)]
    notes = [*([note] if (note := repeat_note(summary)) else []), *_latency_note(summary),
             *_flags(summary)]
    if summary.get("error") and summary["status"] != "ok":
        notes.append(f"({summary['error']})")
    # Model ids and error messages come from the server: one escaped line each, so that none
    # can clear the screen or start a line of its own (a forged `jobs: ok=999`).
    cells = [summary["benchmark"], summary["model"], point, shown, *figures, "  ".join(notes)]
    return [printable(cell) for cell in cells]


def _tokens_per_s(summary: Mapping[str, Any]) -> str:
    """The client's output tok/s, and the server's own beside it when its metrics say:
    `41.2 (server 40.8)`; an embeddings job's inputs/s and prompt tok/s, which it has in their
    place: `345 inputs/s (4140 prompt tok/s)`."""
    throughput = (summary.get("metrics") or {}).get("throughput") or {}
    if (inputs := throughput.get("inputs_per_s")) is not None:
        prompt = throughput.get("prompt_tokens_per_s")
        return f"{number(inputs)} inputs/s ({number(prompt)} prompt tok/s)"
    client = throughput.get("output_tokens_per_s")
    server = (summary.get("server_metrics") or {}).get("generation_tokens_per_s")
    return number(client) + (f" (server {number(server)})" if server is not None else "")


_REPEAT_SHOWN = (("ttft_ms.p50", "TTFT p50 ", " ms"),
                 ("throughput.output_tokens_per_s", "", " tok/s"),
                 ("throughput.inputs_per_s", "", " inputs/s"))


def _latency_note(summary: Mapping[str, Any]) -> list[str]:
    """An embeddings job's latency (it has no TTFT nor TPOT): `latency p50 5.50 p95 6.12 ms`,
    request sent to answer read (metrics.e2e_ms); nothing for the other jobs."""
    metrics = summary.get("metrics") or {}
    if (metrics.get("throughput") or {}).get("inputs_per_s") is None:
        return []
    return [f"latency p50 {number(_stat(metrics, 'e2e_ms', 'p50'))} "
            f"p95 {number(_stat(metrics, 'e2e_ms', 'p95'))} ms"]


def repeat_note(summary: Mapping[str, Any]) -> str | None:
    """A repeated job (load.repeat) as `×3 (95% CI TTFT p50 48.1-52.3 ms, 95.0-101 tok/s)`:
    its repetitions and their intervals (metrics.repetitions); None for a job run once."""
    reps = (summary.get("metrics") or {}).get("repetitions")
    if not isinstance(reps, Mapping):
        return None
    found = reps.get("intervals")
    table: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    shown = []
    for path, before, after in _REPEAT_SHOWN:
        pair = table.get(path)
        if isinstance(pair, Sequence) and len(pair) == 2 and all(
                isinstance(v, int | float) for v in pair):
            shown.append(f"{before}{number(pair[0])}-{number(pair[1])}{after}")
    level = reps.get("level")
    ci = f"{level:.0%} CI " if isinstance(level, float) else "CI "
    return f"×{reps.get('count')}" + (f" ({ci}{', '.join(shown)})" if shown else "")


def _count(value: int | None) -> str:
    return ABSENT if value is None else str(value)


def _stat(metrics: Mapping[str, Any], name: str, stat: str) -> float | None:
    return (metrics.get(name) or {}).get(stat)


def job_line(summary: Mapping[str, Any]) -> str:
    """One job as a line, for the progress output (the recap aligns the same cells); a job of
    a plan with several servers starts with its server (`us:chat`), as jobs of two servers
    finish side by side."""
    cells = job_cells(summary)
    if name := server_name(summary):
        cells[0] = printable(f"{name}:{cells[0]}")
    parts = cells[:4]
    metrics = summary.get("metrics")
    if metrics:
        ok, failed, ttft50, ttft95, tpot, tput = cells[4:10]
        parts.append(f"ok={ok} failed={failed}")
        if (metrics.get("throughput") or {}).get("inputs_per_s") is not None:
            parts.append(tput)  # an embeddings job: its latency is in the notes
        else:
            parts += [f"TTFT p50 {ttft50} p95 {ttft95} ms", f"TPOT p50 {tpot} ms",
                      f"{tput} tok/s"]
    if (summary.get("workers") or 1) > 1:  # --workers: how many processes sent its load
        parts.append(f"workers={summary['workers']}")
    return "  ".join([*parts, *cells[10:11]]).rstrip()


def load_label(params: Mapping[str, Any]) -> str:
    """Without a matrix point, the load that defines the job (`concurrency=8`, `rate=4`)."""
    return point_label({k: params[k] for k in ("concurrency", "rate") if k in params}) or "-"


def _point(summary: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(summary.get("point") or {})


def _flags(summary: Mapping[str, Any]) -> list[str]:
    """Cancelled requests, Retry-After pauses, queue-inclusive latency when the client queue is
    material, client_bound and the SLO verdict, for jobs whose numbers exist (not failed ones)."""
    metrics = summary.get("metrics") or {}
    if summary.get("status") != "ok":
        return []
    flags = [*validity_notes(summary), *_load_notes(metrics)]
    if queued := queued_latency(metrics):
        flags.append(queued)
    if metrics.get("slo") is not None:
        misses = slo_misses(summary)
        # No data is not a pass, but not a measured miss either: say which it was.
        label = "SLO no data" if metrics["slo"].get("status") == "no_data" else "SLO missed"
        flags.append(f"{label}: {'; '.join(misses)}" if misses else "SLO ok")
    return flags


def validity_notes(summary: Mapping[str, Any]) -> list[str]:
    """The verdict with its first reason and figure (`invalid: client_bound (event-loop delay
    p99 23.4 ms > 10 ms) +1 more`), and `tokens≈chunks` when some output tokens are chunks.
    A job stored before verdicts shows `validity unknown` (and client_bound, as it did)."""
    verdict = stored_verdict(summary)
    if verdict is None:
        return []
    notes = [] if verdict == VALID else [verdict]
    if verdict == UNKNOWN:
        notes = ["validity unknown"]
        if ((summary.get("metrics") or {}).get("client") or {}).get("client_bound"):
            notes.append("client_bound")
    if reason := first_reason(summary):
        notes[0] += f": {reason}"
    return notes + (["tokens≈chunks"] if tokens_estimated(summary) else [])


def _load_notes(metrics: Mapping[str, Any]) -> list[str]:
    """Requests cut at the job's end, and pauses a server asked for: `2 cancelled`,
    `paused 3x 4.50 s (Retry-After)`."""
    notes = []
    if cancelled := (metrics.get("requests") or {}).get("cancelled"):
        notes.append(f"{cancelled} cancelled")
    pauses = metrics.get("retry_after") or {}
    if pauses.get("pauses"):
        notes.append(f"paused {pauses['pauses']}x {number(pauses.get('paused_s'))} s "
                     "(Retry-After)")
    return notes


def slo_misses(summary: Mapping[str, Any]) -> list[str]:
    """One line per missed SLO check of a job that ran to the end, e.g.
    `ttft_ms p95 512.3 (limit <= 500)`. A failed or unfinished job has no SLO verdict: its
    failure is the news, not numbers that do not exist."""
    if summary.get("status") != "ok":
        return []
    slo = (summary.get("metrics") or {}).get("slo") or {}
    return [_describe(check) for check in slo.get("checks", []) if not check.get("passed")]


def _describe(check: Mapping[str, Any]) -> str:
    stat = f" {check['stat']}" if check.get("stat") else ""
    value = check.get("value")
    shown = "no data" if value is None else number(value)
    if value is None and check.get("unanswered"):
        shown = f"not reached ({check['unanswered']} answers with no answer text)"
    relation = ">=" if check["metric"].startswith("min_") else "<="
    return f"{check['metric']}{stat} {shown} (limit {relation} {check['limit']})"


def totals(summaries: Sequence[Mapping[str, Any]],
           statuses: Mapping[str, str] | None = None) -> dict[str, int]:
    """Jobs per status (pending only when some are), and how many of them missed their SLO."""
    counts = {"ok": 0, "slo_missed": 0, "failed": 0, "skipped": 0, "interrupted": 0}
    for s in summaries:
        status = _status(s, statuses)
        counts[status] = counts.get(status, 0) + 1
        counts["slo_missed"] += bool(slo_misses(s))
    return counts


def _status(summary: Mapping[str, Any], statuses: Mapping[str, str] | None) -> str:
    return str((statuses or {}).get(summary["id"], summary["status"]))


def render(summaries: Sequence[Mapping[str, Any]], facts: RunFacts) -> str:
    """The whole recap as text; its last lines say where the results are and what to run next."""
    counts = totals(summaries, facts.statuses)
    lines = ["", "RECAP " + "*" * 66, *_table(summaries, facts.statuses), ""]
    if facts.planned:
        lines.append(f"planned: {totals_text(facts.planned)}")
    lines += [capacity_line(record) for record in facts.capacity]
    lines += ["jobs: " + " ".join(f"{k}={v}" for k, v in counts.items()),
              *map(printable, facts.source_line.split("\n")),  # one line per server
              f"results: {printable(facts.run_dir)}"]
    if facts.report:
        lines.append(f"report: {printable(facts.report)}")
    return printable_lines("\n".join(lines + next_steps(facts)))


def _table(summaries: Sequence[Mapping[str, Any]],
           statuses: Mapping[str, str] | None) -> list[str]:
    """The jobs' rows under their header; jobs of several servers are grouped by server, each
    group under a `server: NAME` line (the columns line up across groups)."""
    names = [server_name(s) for s in summaries]
    order = {name: i for i, name in reversed(list(enumerate(names)))}
    ranked = sorted(range(len(summaries)), key=lambda i: order[names[i]])  # stable
    rows = align([list(HEADER), *(job_cells(summaries[i], _status(summaries[i], statuses))
                                  for i in ranked)])
    if len(order) < 2:
        return rows
    lines, current = [rows[0]], None
    for row, i in zip(rows[1:], ranked, strict=True):
        if names[i] != current:
            current = names[i]
            lines.append(printable(f"server: {current}"))
        lines.append(row)
    return lines


def server_name(summary: Mapping[str, Any]) -> str:
    """The server a job's id names in a run of several servers, else ''."""
    return id_server(str(summary.get("id", ""))) or ""


def next_steps(facts: RunFacts) -> list[str]:
    """The commands a user wants next: resume a run with jobs still to run, run a failed plan
    again, else report and compare."""
    run_dir, plan_ref = shlex.quote(facts.run_dir), shlex.join([facts.plan_ref, *facts.options])
    unfinished = any(s not in FINISHED for s in (facts.statuses or {}).values())
    if facts.status in ("interrupted", "partial") or (facts.status == "failed" and unfinished):
        return [f"resume with: runner apply {plan_ref} --resume {run_dir}"]
    if facts.status == "failed":  # every job ran; a resume would run nothing
        return [f"failed: runner report {run_dir} --format md shows why; "
                f"run again with: runner apply {plan_ref}"]
    plan = shlex.quote(facts.plan_name)
    return [f"next: runner report {run_dir} --format md",
            f"      runner compare previous latest --plan {plan}"]


def align(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines whose columns line up (numbers to the right)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if i in NUMERIC else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]
