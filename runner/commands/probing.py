"""The probe in `runner plan --probe` and `runner apply` (unless --no-probe): probe the selected
models once, drop the jobs of those the key cannot call, and hold the plan against the key's
limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from runner.errors import InventoryError
from runner.inventory.config import Server
from runner.inventory.listing import Inventory
from runner.load.trace import load_trace
from runner.plan.expand import Job
from runner.plan.selection import Selected
from runner.run.keylimits import (
    Demand,
    KeyLimits,
    exceeded,
    fetch_key_limits,
    job_demand,
)
from runner.run.probe import ProbeReport, all_dropped_message, text_lines
from runner.run.probewire import PROBE_TOKENS, ProbeTarget, run_probe


@dataclass(frozen=True)
class Probed:
    """The probe's report, the selection without the dropped models' jobs, the key's limits
    and the lines saying which limits the plan passes."""

    report: ProbeReport
    chosen: list[Selected]
    limits: KeyLimits | None = None
    over_limits: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The plan view's `probe` (and the manifest's): model id -> verdict."""
        return self.report.to_json()

    def lines(self) -> list[str]:
        """The plan view's probe section, its key limits and the limits the plan passes."""
        lines = text_lines(self.report)
        if self.limits is not None:
            lines.append(f"  {self.limits.text()}")
        lines += [f"  WARNING: {line} (apply refuses this plan unless --force)"
                  for line in self.over_limits]
        return lines


def probe_selection(chosen: Sequence[Selected], inv: Inventory, server: Server,
                    env: Mapping[str, str], plan_dir: str = ".") -> Probed:
    """Probe each (model, endpoint) of the selection once on `server`; raises InventoryError
    (exit 3) when the probe drops every model that had jobs. `plan_dir`: where the plan's
    traces are (a replay's demand is its trace's)."""
    probed = probe_jobs([job for s in chosen for job in s.jobs], inv, server, env, plan_dir)
    return replace(probed, chosen=[_without_dropped(s, probed.report, server.name)
                                   for s in chosen])


def probe_jobs(jobs: Sequence[Job], inv: Inventory, server: Server,
               env: Mapping[str, str], plan_dir: str = ".") -> Probed:
    """Probe each (model, endpoint) of `jobs` once on `server` (a lock's jobs, or a
    selection's), and hold the jobs left against the key's limits; `chosen` is left empty.
    Raises InventoryError (exit 3) when the probe drops every job."""
    modes = {m.id: m.mode for m in inv.models}
    targets: dict[tuple[str, str], ProbeTarget] = {}
    for job in jobs:
        mode = modes.get(job.model)
        targets.setdefault((job.model, endpoint_of(job)),
                           ProbeTarget(server, job.model, job.params, mode))
    report = run_probe(list(targets.values()), env)
    kept = [j for j in jobs if report.drops(server.name, j.model, endpoint_of(j)) is None]
    if report.dropped() and not kept:
        raise InventoryError(all_dropped_message(report))
    limits = fetch_key_limits(server, env) if server.kind != "mock" else None
    over = exceeded(limits, _demands(kept, report, plan_dir)) if limits is not None else []
    return Probed(replace(report, key_limits={server.name: limits.to_json()} if limits else {}),
                  [], limits, over)


def merge_probed(probes: Sequence[Probed]) -> Probed:
    """The probes of several servers as one: every result, every server's key limits, every
    selection and warning (the first server's limits for the plan view's line)."""
    reports = [p.report for p in probes]
    report = ProbeReport(tuple(r for rep in reports for r in rep.results),
                         {k: v for rep in reports for k, v in rep.key_limits.items()},
                         round(sum(rep.seconds for rep in reports), 3),
                         any(rep.capped for rep in reports))
    return Probed(report, [s for p in probes for s in p.chosen],
                  next((p.limits for p in probes if p.limits is not None), None),
                  [line for p in probes for line in p.over_limits])


def endpoint_of(job: Job) -> str:
    return str(job.params.get("endpoint", "chat"))


def _without_dropped(s: Selected, report: ProbeReport, server: str) -> Selected:
    def dropped(model: str, endpoint: str) -> bool:
        return report.drops(server, model, endpoint) is not None

    jobs = tuple(j for j in s.jobs if not dropped(j.model, endpoint_of(j)))
    if len(jobs) == len(s.jobs):
        return s
    models = tuple(m for m in s.models if any(j.model == m for j in jobs))
    gone = [m for m in s.models if m not in models]
    warning = f"dropped by the probe: {', '.join(gone)}"
    return replace(s, models=models, jobs=jobs, warnings=(*s.warnings, warning),
                   skipped=s.skipped or (None if jobs else "every model dropped by the probe"))


def _demands(jobs: Sequence[Job], report: ProbeReport, plan_dir: str) -> list[Demand]:
    """Each job's peak demand; a closed loop's expected latency per token is its model's probe
    latency over PROBE_TOKENS (None without one: that job is not estimated); a replay's is its
    trace's (read from `plan_dir`, once per file)."""
    per_token = {(r.model, r.endpoint): r.latency_ms / 1e3 / PROBE_TOKENS
                 for r in report.results if r.status == "ok" and r.latency_ms}
    found = (job_demand(job, per_token.get((job.model, endpoint_of(job))),
                        load_trace(job.params, plan_dir) if "replay" in job.params else None)
             for job in jobs)
    return [d for d in found if d is not None]
