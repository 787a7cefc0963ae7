"""What `apply --resume RUN` may run (pure): jobs of the run's own plan, and only jobs the run
recorded when it started, so that one run directory never holds two runs' results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from runner.errors import InputError, InventoryError
from runner.run.executor import JobSpec

COMPLETE = ("ok", "failed")  # a job done in the record keeps the parameters it ran with


@dataclass(frozen=True)
class Resumption:
    """The ids of the selected jobs that belong to the run, and what the user should know."""

    job_ids: frozenset[str]
    warnings: tuple[str, ...]


def check_resume(run_dir: str, manifest: Mapping[str, Any], plan: Mapping[str, Any],
                 jobs: Sequence[Mapping[str, Any]], force: bool) -> Resumption:
    """InputError when the run is of another plan (name always; sha256 unless `force`) or a job
    it still has to run now has other parameters (unless `force`); InventoryError when no
    selected job belongs to the run (nothing would run); jobs it never recorded are left out,
    jobs it has done are never run again."""
    warnings = [*_check_plan(run_dir, manifest.get("plan") or {}, plan, force)]
    recorded = {e.get("id"): e for e in manifest.get("jobs") or [] if isinstance(e, Mapping)}
    changed = [j for j in jobs if j["id"] in recorded
               and recorded[j["id"]].get("status") not in COMPLETE
               and recorded[j["id"]].get("params") != j["params"]]
    if changed and not force:
        first = changed[0]
        raise InputError(
            f"{run_dir}: job {first['id']} was recorded with other parameters than the plan "
            f"gives now ({_diff(recorded[first['id']].get('params'), first['params'])}; "
            f"{len(changed)} job(s) differ); resume with the same plan and -e values, start a "
            "new run, or pass --force to run them with the new parameters")
    if changed:
        warnings.append(f"--force: {len(changed)} job(s) of {run_dir} run with changed parameters")
    # a search or sweep is in the run when it recorded one of its trials (their `search`)
    recorded.update({e.get("search"): e for e in list(recorded.values()) if e.get("search")})
    outside = [j["id"] for j in jobs if j["id"] not in recorded]
    if jobs and len(outside) == len(jobs):
        raise InventoryError(
            f"none of the {len(jobs)} selected job(s) belong to run {run_dir} (e.g. "
            f"{outside[0]}): resume it with the server, --limit and --tags it ran with, "
            "or start a new run")
    if outside:
        warnings.append(f"{len(outside)} selected job(s) are not part of run {run_dir} and are "
                        f"not run (e.g. {outside[0]}); start a new run for them")
    return Resumption(frozenset(j["id"] for j in jobs if j["id"] in recorded), tuple(warnings))


def prompt_nonce(manifest: Mapping[str, Any]) -> str | None:
    """The nonce the run's prompts were made with (`prompt_nonce` in its manifest), so that a
    resume sends the prompts the interrupted run sent; None for a run made before runs had one
    (see `runner.load.workload.prompt_salt`)."""
    nonce = manifest.get("prompt_nonce")
    return nonce if isinstance(nonce, str) else None


def as_recorded(specs: Sequence[JobSpec], manifest: Mapping[str, Any]) -> list[JobSpec]:
    """Jobs the run has done keep the parameters they ran with, so they are not run again."""
    done = {e["id"]: e["params"] for e in manifest.get("jobs") or []
            if isinstance(e, Mapping) and e.get("status") in COMPLETE}
    return [replace(s, job=replace(s.job, params=done[s.job.id])) if s.job.id in done else s
            for s in specs]


def _check_plan(run_dir: str, stored: Mapping[str, Any], plan: Mapping[str, Any],
                force: bool) -> list[str]:
    name, given = stored.get("name"), plan.get("name")
    if name != given:
        raise InputError(
            f"{run_dir} is a run of plan '{name}', not of plan '{given}' ({plan.get('path')}); "
            f"resume it with its own plan ({stored.get('path')}); --force cannot change this: "
            f"a run directory belongs to one plan (results/{name}/)")
    old, new = stored.get("sha256"), plan.get("sha256")
    if old == new:
        return []
    what = (f"{plan.get('path')} changed since run {run_dir} started "
            f"(sha256 {str(old)[:12]} then, {str(new)[:12]} now)")
    if not force:
        raise InputError(f"{what}; resume with the plan as it was, start a new run, "
                         "or pass --force to resume with the changed plan")
    return [f"--force: {what}"]


def _diff(old: Any, new: Mapping[str, Any]) -> str:
    """`key: then -> now` for each parameter that differs."""
    before = old if isinstance(old, Mapping) else {}
    keys = sorted(set(before) | set(new), key=str)
    return ", ".join(f"{k}: {before.get(k)!r} -> {new.get(k)!r}" for k in keys
                     if before.get(k) != new.get(k))
