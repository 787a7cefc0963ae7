"""What every report format shares: run info, warnings, axes, definitions (jobs by benchmark
and server: runner.report.servergroups)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.plan.expand import point_label
from runner.report.probed import probe_notes
from runner.report.servergroups import fallback_notes, inventory_header
from runner.results.runs import StoredRun
from runner.run.queueing import queued_latency
from runner.run.recap import load_label, repeat_note, slo_misses
from runner.run.validity import (
    UNKNOWN,
    VALID,
    first_reason,
    stored_reasons,
    stored_verdict,
    tokens_estimated,
)
from runner.schema import load_schema

Job = Mapping[str, Any]
# The matrix parameters a chart prefers on its x axis, in this order.
X_PREFERENCE = ("concurrency", "rate", "max_concurrency", "input_tokens", "max_tokens")
STATUSES = ("ok", "failed", "interrupted", "skipped", "pending")


@dataclass(frozen=True)
class Banner:
    """A run-level banner: `level` is warn or error."""

    level: str
    text: str


@dataclass(frozen=True)
class Axis:
    """How a benchmark's jobs are charted: x parameter, x per job, series name per job."""

    param: str | None  # None: nothing varies, the models are the x categories
    categories: tuple[str, ...] | None  # set when x is not numeric
    xs: tuple[float, ...]
    series: tuple[str, ...]


def all_jobs(run: StoredRun) -> list[Job]:
    """Every job in manifest order: its stored summary, else its manifest entry (never run)."""
    stored = {job.get("slug"): job for job in run.jobs}
    entries = run.manifest.get("jobs", [])
    return [stored.get(e.get("slug")) or {**e, "metrics": None} for e in entries]


def point(job: Job) -> Mapping[str, Any]:
    """The job's matrix point (its params when the point was not stored)."""
    found = job.get("point")
    return found if isinstance(found, Mapping) else job.get("params") or {}


def label(job: Job) -> str:
    """The job's matrix point, else the load that defines it (`concurrency=8`)."""
    return point_label(point(job)) or load_label(job.get("params") or {})


def stat(job: Job, path: str) -> Any:
    """A metric by dotted path, e.g. `ttft_ms.p95`; None when missing."""
    value: Any = job.get("metrics")
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def client_bound(job: Job) -> bool:
    return bool(stat(job, "client.client_bound"))


def validity_flags(job: Job) -> list[str]:
    """The job's verdict when it is not valid (`invalid`, `degraded`, `validity unknown` for a
    job stored before verdicts, with `client-bound` as such jobs showed it), and
    `tokens≈chunks` when some output tokens were counted by chunks."""
    verdict = stored_verdict(job)
    flags = [] if verdict in (None, VALID) else [verdict]
    if verdict == UNKNOWN:
        flags = ["validity unknown", *(["client-bound"] if client_bound(job) else [])]
    return flags + (["tokens≈chunks"] if tokens_estimated(job) else [])


@dataclass(frozen=True)
class Caveat:
    """One reason a job is not valid, for the reports' validity tables."""

    job: str
    verdict: str
    code: str
    figure: str
    explanation: str
    remedy: str


def caveats(jobs: Sequence[Job]) -> list[Caveat]:
    """Every reason of every job that is not valid, in job order."""
    return [Caveat(str(j.get("id")), str(stored_verdict(j)), *(str(r.get(k, "")) for k in
                   ("code", "figure", "explanation", "remedy")))
            for j in jobs for r in stored_reasons(j)]


def flags(job: Job) -> list[str]:
    """A job's table flags: an early stop (`stopped early: saturated`), its repetitions with
    their intervals (`×3 (95% CI ...)`, recap.repeat_note), its validity flags
    (validity_flags), SLO missed, and queue-inclusive latency when the client queue is
    material (`queued: TTFT p50 1180 ms, E2E p50 1222 ms from scheduled ...`)."""
    early = job.get("early_stop")
    found = [f"stopped early: {early.get('reason')}"] if isinstance(early, dict) else []
    found += [note] if (note := repeat_note(job)) else []
    found += [*validity_flags(job), *([_slo_flag(job)] if slo_missed(job) else [])]
    queued = queued_latency(job.get("metrics") or {}) if job.get("status") == "ok" else None
    return [*found, queued] if queued else found


def _slo_flag(job: Job) -> str:
    slo = (job.get("metrics") or {}).get("slo") or {}
    return "SLO no data" if slo.get("status") == "no_data" else "SLO missed"


def slo_missed(job: Job) -> bool:
    """The job ran to the end and missed an SLO (a failed job has no SLO verdict)."""
    return bool(slo_misses(job))


def counts(jobs: Sequence[Job]) -> dict[str, int]:
    """Jobs per status in a fixed order, with `slo_missed` (ok jobs that missed their SLO)
    after ok; statuses without jobs are left out, except ok."""
    found = {s: sum(1 for j in jobs if j.get("status") == s) for s in STATUSES}
    found["slo_missed"] = sum(1 for j in jobs if slo_missed(j))
    others = {str(j.get("status")) for j in jobs} - set(STATUSES)
    found.update({s: sum(1 for j in jobs if j.get("status") == s) for s in sorted(others)})
    order = ["ok", "slo_missed", *(s for s in found if s not in ("ok", "slo_missed"))]
    return {s: found[s] for s in order if found[s] or s == "ok"}


def headline(status: str, totals: Mapping[str, int]) -> tuple[str, str]:
    """The run's badge: (text, css status). An ok run whose jobs missed an SLO is not green."""
    missed = totals.get("slo_missed", 0)
    if status == "ok" and missed:
        jobs = sum(n for s, n in totals.items() if s != "slo_missed")
        return f"ok, SLO missed by {missed} of {jobs} jobs", "slo_missed"
    return status, status


def run_info(run: StoredRun, jobs: Sequence[Job]) -> dict[str, Any]:
    """The run's header: plan, ids, times, inventory source and job totals."""
    manifest = run.manifest
    # Older or partial manifests may lack fields: every key the reports read is present.
    inventory = inventory_header(manifest)
    plan = {**dict.fromkeys(("name", "path", "sha256")), **(manifest.get("plan") or {})}
    return {"plan": plan, "run_id": run.run_id,
            "run_dir": run.run_dir, "status": manifest.get("status"),
            "started_at": manifest.get("started_at"), "finished_at": manifest.get("finished_at"),
            "runner_version": manifest.get("runner_version"), "inventory": inventory,
            "totals": counts(jobs), "jobs": len(jobs),
            "badge": headline(str(manifest.get("status")), counts(jobs))}


def warnings(run: StoredRun, jobs: Sequence[Job]) -> list[Banner]:
    """Why a reader should be careful with these numbers."""
    found = _status_warnings(str(run.manifest.get("status")), jobs)
    found += [Banner("warn", text) for text in fallback_notes(run.manifest)]
    found += [Banner("warn", text) for text in probe_notes(run.manifest)]
    found += _validity_warnings(jobs)
    # A job with a verdict says client_bound among its reasons; an older one says it here.
    bound = [j for j in jobs if client_bound(j) and stored_verdict(j) == UNKNOWN]
    if bound:
        found.append(Banner("warn", f"{_jobs(bound, 'was')} client-bound: the load generator, "
                                    f"not the server, was the limit ({_ids(bound)})"))
    missed = [j for j in jobs if slo_missed(j)]
    if missed:
        found.append(Banner("warn", f"{_jobs(missed)} missed the SLO: "
                             + "; ".join(f"{j.get('id')}: {', '.join(slo_misses(j))}"
                                         for j in missed[:5]) + _more(missed)))
    return found


def _validity_warnings(jobs: Sequence[Job]) -> list[Banner]:
    found = []
    invalid = [j for j in jobs if stored_verdict(j) == "invalid"]
    if invalid:
        found.append(Banner("warn", f"{_jobs(invalid, 'was')} invalid, not a measure of the "
                                    "server as planned (see Validity): " + "; ".join(
                                        f"{j.get('id')}: {first_reason(j)}" for j in invalid[:5])
                            + _more(invalid)))
    unknown = [j for j in jobs if stored_verdict(j) == UNKNOWN]
    if unknown:
        found.append(Banner("warn", f"{_jobs(unknown, 'was')} stored before validity "
                                    f"verdicts: their validity is unknown ({_ids(unknown)})"))
    return found


def _status_warnings(status: str, jobs: Sequence[Job]) -> list[Banner]:
    failed = [j for j in jobs if j.get("status") == "failed"]
    found = [Banner("error", f"{_jobs(failed)} failed ({_ids(failed)})")] if failed else []
    if status == "interrupted":
        undone = [j for j in jobs if j.get("status") not in ("ok", "failed")]
        found.insert(0, Banner("error", f"The run was interrupted: {_jobs(undone)} did not "
                                         "finish; `runner apply PLAN --resume RUN_DIR` runs them"))
    elif status == "partial":
        undone = [j for j in jobs if j.get("status") not in ("ok", "failed")]
        found.insert(0, Banner("warn", f"The run is partial: {_jobs(undone)} of its record have "
                                        "not run yet; `runner apply PLAN --resume RUN_DIR` runs "
                                        "them"))
    elif status not in ("ok", "failed"):
        found.insert(0, Banner("error", f"The run has not finished (status {status}): it is "
                                         "still running or it crashed; numbers may be partial"))
    return found


def _jobs(jobs: Sequence[Job], verb: str = "") -> str:
    one = len(jobs) == 1
    was = {"": "", "was": " was" if one else " were"}[verb]
    return f"{len(jobs)} job{'' if one else 's'}{was}"


def _ids(jobs: Sequence[Job]) -> str:
    return ", ".join(str(j.get("id")) for j in jobs[:5]) + _more(jobs)


def _more(jobs: Sequence[Job]) -> str:
    return f" and {len(jobs) - 5} more" if len(jobs) > 5 else ""


def axis(jobs: Sequence[Job]) -> Axis:
    """The matrix parameter to chart against, and one series per model (+ other varied keys)."""
    points = [point(j) for j in jobs]
    varied = _varied(points)
    numeric = [k for k in varied if all(_is_number(p.get(k)) for p in points)]
    param = next((k for k in (*X_PREFERENCE, *numeric, *varied) if k in varied), None)
    others = [k for k in varied if k != param]
    series = tuple(_series_name(j, p, others) for j, p in zip(jobs, points, strict=True))
    if param is None:
        names = tuple(dict.fromkeys(series))
        return Axis(None, names, tuple(float(names.index(s)) for s in series), series)
    if param in numeric:
        return Axis(param, None, tuple(float(p[param]) for p in points), series)
    values = [_text(p[param]) if param in p else _own_load(p, others) for p in points]
    names = tuple(dict.fromkeys(values))
    return Axis(param, names, tuple(float(names.index(v)) for v in values), series)


def _own_load(p: Mapping[str, Any], others: Sequence[str]) -> str:
    """The category of a point without the axis's key (a sweep's rate jobs on its concurrency
    axis): its other varied keys, e.g. `rate=60.54`; `-` when it has none."""
    return point_label({k: p[k] for k in others if k in p}) or "-"


def _varied(points: Sequence[Mapping[str, Any]]) -> list[str]:
    keys = list(dict.fromkeys(k for p in points for k in p))
    return [k for k in keys if len({_text(p.get(k)) for p in points}) > 1]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _series_name(job: Job, p: Mapping[str, Any], others: Sequence[str]) -> str:
    extra = point_label({k: p[k] for k in others if k in p})
    return f"{job.get('model')} · {extra}" if extra else str(job.get("model"))


def metric_definitions() -> list[tuple[str, str]]:
    """(name, description) of every metric, from schemas/result.schema.json."""
    defs = load_schema("result")["$defs"]
    found = [("statistics", defs["distribution"]["description"])]
    for name, spec in defs["metrics"]["properties"].items():
        if "description" in spec:
            found.append((name, spec["description"]))
        for sub, sub_spec in spec.get("properties", {}).items():
            if "description" in sub_spec:
                found.append((f"{name}.{sub}", sub_spec["description"]))
    found.append(("client", defs["client"]["description"]))
    return found
