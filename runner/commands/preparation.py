"""Preparing `runner apply`: from a plan or a lock, the inventory, the jobs to run and each
job's prompt source, checked before anything runs."""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from runner.commands.plan import load_checked, options_from, trace_lengths
from runner.commands.probing import Probed, endpoint_of, probe_jobs, probe_selection
from runner.errors import InputError, InventoryError, Problem, RefusedError, UsageError
from runner.inventory.listing import Inventory
from runner.inventory.workspace import Workspace, fetch, open_workspace, serving
from runner.load.traceplan import replay_sending_s
from runner.plan.expand import Job
from runner.plan.limits import limit_warning, model_limits, with_limit_warnings
from runner.plan.lock import check_fresh, is_lock, locked_jobs, read_lock
from runner.plan.selection import select, unknown_tags
from runner.plan.totals import totals
from runner.run.executor import JobSpec


@dataclass(frozen=True)
class Prepared:
    """Everything a run needs, from a plan or a lock."""

    plan: dict[str, Any]  # name, path, sha256
    variables: Mapping[str, Any]
    inventory: Inventory
    specs: list[JobSpec]
    warnings: list[str]
    selection: Mapping[str, Any]  # the options that chose the jobs: limit, tags, skip_tags
    totals: Mapping[str, int | float]  # the plan view's totals: benchmarks, skipped, models, jobs
    probed: Probed | None = None  # the probe's verdicts (None: --no-probe, or a lock)


@contextmanager
def prepare(args: argparse.Namespace,
            env: Mapping[str, str]) -> Iterator[tuple[Workspace, Prepared]]:
    """The workspace being served and everything the run needs, from a lock or a plan."""
    if is_lock(args.plan):
        with _from_lock(args, env) as found:
            yield found
    else:
        with _from_plan(args, env) as found:
            yield found


@contextmanager
def _from_plan(args: argparse.Namespace,
               env: Mapping[str, str]) -> Iterator[tuple[Workspace, Prepared]]:
    plan, ws = load_checked(args, env)
    options = options_from(args)
    with serving(ws) as live:
        inv = fetch(live, env, args.source, allow_fallback=plan.fallback)
        plan_dir = os.path.dirname(plan.path)
        chosen = with_limit_warnings(select(plan, inv.ids(), ws.models.groups, options, inv), inv,
                                     trace_lengths(plan))
        probed = probe_selection(chosen, inv, live.server, env, plan_dir) \
            if _probing(args) else None
        if probed is not None:
            chosen = probed.chosen
            _refuse_over_limits(probed, args.force)
        specs = [JobSpec(job, live.server, s.benchmark.slo, s.benchmark.retries,
                         s.benchmark.max_error_rate, _limits(job, inv, plan_dir))
                 for s in chosen for job in s.jobs]
        warnings = unknown_tags(plan, options)
        warnings += [f"{s.benchmark.name}: {w}" for s in chosen for w in s.warnings]
        selection = {"limit": args.limit, "tags": args.tags, "skip_tags": args.skip_tags}
        warnings += _probe_notes(probed)
        yield live, Prepared(plan.to_json(), plan.variables, inv, specs, warnings, selection,
                             totals(chosen, replay_sending_s(plan_dir)), probed)


def _probing(args: argparse.Namespace) -> bool:
    return not getattr(args, "no_probe", False)


def _probe_notes(probed: Probed | None) -> list[str]:
    """The WARNING lines of a probe: the limits passed under --force, the models dropped."""
    if probed is None:
        return []
    return [*(f"{w} (--force)" for w in probed.over_limits),
            *(f"probe: {r.model} [{r.endpoint}] dropped, {r.status}: {r.reason}"
              for r in probed.report.dropped())]


def _probe_locked(args: argparse.Namespace, specs: list[JobSpec], inv: Inventory,
                  live: Workspace, env: Mapping[str, str],
                  plan_dir: str) -> tuple[list[JobSpec], Probed | None]:
    """A lock's jobs probed as a plan's are (unless --no-probe): the dropped ones left out."""
    if not _probing(args) or not specs:
        return specs, None
    probed = probe_jobs([s.job for s in specs], inv, live.server, env, plan_dir)
    _refuse_over_limits(probed, args.force)
    name = live.server.name
    return [s for s in specs
            if probed.report.drops(name, s.job.model, endpoint_of(s.job)) is None], probed


def _refuse_over_limits(probed: Probed, force: bool) -> None:
    """A plan that passes the key's limits would measure 429s, not the model: exit 2 unless
    --force."""
    if probed.over_limits and not force:
        then = "; lower the load, or run it anyway with --force"
        raise RefusedError.many([Problem(line + then) for line in probed.over_limits])


@contextmanager
def _from_lock(args: argparse.Namespace,
               env: Mapping[str, str]) -> Iterator[tuple[Workspace, Prepared]]:
    _refuse_selection_options(args)
    lock = read_lock(args.plan)
    server = args.server or lock["options"]["server"]
    plan_path = lock["plan"].get("path")
    near = plan_path if plan_path and os.path.isfile(plan_path) else args.plan
    ws = open_workspace(args.config_dir, server, env, None, near=near)
    with serving(ws) as live:
        inv = fetch(live, env, args.source, allow_fallback=True)
        jobs = locked_jobs(lock)
        warnings = check_fresh(args.plan, lock, jobs, inv.ids(), args.force, args.allow_drift)
        served = set(inv.ids())
        settings = {b["name"]: b for b in lock["benchmarks"]}
        specs = [_locked_spec(job, live, settings[job.benchmark], inv,
                              os.path.dirname(plan_path or ""))
                 for job in jobs if job.model in served]
        warnings += [w for w in (limit_warning(s.job, s.model_limits) for s in specs) if w]
        if not specs:
            raise InventoryError(f"{args.plan}: none of the locked jobs can run; "
                                 "re-plan with `runner plan PLAN --out FILE`")
        specs, probed = _probe_locked(args, specs, inv, live, env,
                                      os.path.dirname(plan_path or ""))
        warnings += _probe_notes(probed)
        options = lock.get("options") or {}
        selection = {k: options.get(k) for k in ("limit", "tags", "skip_tags")}
        yield live, Prepared(lock["plan"], lock.get("variables", {}), inv, specs, warnings,
                             selection, lock.get("totals") or {}, probed)


_SELECTION_FLAGS = (("limit", "--limit"), ("tags", "--tags"), ("skip_tags", "--skip-tags"),
                    ("extra_vars", "-e/--extra-vars"), ("max_jobs", "--max-jobs"))


def _refuse_selection_options(args: argparse.Namespace) -> None:
    """A lock's jobs and variables are fixed: options that would change them are exit 2."""
    given = [flag for name, flag in _SELECTION_FLAGS if getattr(args, name, None)]
    if given:
        raise UsageError(f"{', '.join(given)} with a lock ({args.plan}): a lock runs exactly "
                         "what was planned; re-plan with these options: "
                         "`runner plan PLAN [options] --out FILE`")


def _locked_spec(job: Job, ws: Workspace, bench: Mapping[str, Any], inv: Inventory,
                 plan_dir: str) -> JobSpec:
    return JobSpec(job, ws.server, bench.get("slo", {}), bench.get("retries", 0),
                   bench.get("max_error_rate", 0), _limits(job, inv, plan_dir))


def _limits(job: Job, inv: Inventory, plan_dir: str) -> dict[str, Any]:
    """The job's lengths against its model's limits in the inventory (metrics `model_limits`),
    a trace's by its longest request."""
    from runner.load.traceplan import longest_request

    model = next((m for m in inv.models if m.id == job.model), None)
    return model_limits(job.params, model, functools.partial(longest_request, plan_dir=plan_dir))


def prompt_sources(prepared: Prepared) -> dict[str, Any]:
    """Each job's prompt source, built before anything runs (a bad dataset is exit 2 now)."""
    plan_dir = os.path.dirname(prepared.plan["path"])
    cache: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for spec in prepared.specs:
        params = spec.job.params
        key = repr([params.get(k) for k in _PROMPT_PARAMS])  # load settings share prompts
        if key not in cache:
            cache[key] = _prompt_source(spec, plan_dir, prepared)
        out[spec.job.id] = cache[key]
    return out


_PROMPT_PARAMS = ("endpoint", "dataset", "template", "input_tokens", "input_tokens_stddev",
                  "tokenizer", "seed", "trace", "trace_format",
                  "prefix")


def _prompt_source(spec: JobSpec, plan_dir: str, prepared: Prepared) -> Any:
    from runner.load.replay import job_prompts

    try:
        return job_prompts(spec.job.params, plan_dir, prepared.variables)
    except InputError as exc:
        where = f"{prepared.plan['path']}: benchmark '{spec.job.benchmark}'"
        raise InputError.many([Problem(f"{where}: {p.render()}") for p in exc.problems]) from None
