"""Preparing `runner apply`: from a plan or a lock, the inventory, the jobs to run and each
job's prompt source, checked before anything runs."""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from runner.commands.plan import load_checked, options_from
from runner.commands.probing import Probed, endpoint_of, merge_probed, probe_jobs
from runner.commands.targeting import chosen_of, probe_targets, resolve_targets, with_warnings
from runner.errors import (
    InputError,
    InventoryError,
    Problem,
    RefusedError,
    RunnerError,
    UsageError,
)
from runner.inventory.config import Server, unknown_server
from runner.inventory.listing import Inventory
from runner.inventory.workspace import Workspace, fetch, open_workspace, serving
from runner.load.traceplan import replay_sending_s
from runner.plan.endpointrules import slo_for
from runner.plan.expand import Job
from runner.plan.limits import limit_warning, model_limits
from runner.plan.lock import check_fresh, is_lock, locked_jobs, read_lock
from runner.plan.selection import unknown_tags
from runner.plan.servers import on_server
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
    # every server's inventory, in plan order (`inventory` is the first's)
    inventories: tuple[Inventory, ...] = ()

    @property
    def several(self) -> bool:
        """Whether the run has jobs of several servers (their ids carry the server)."""
        return len(self.inventories) > 1


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
    plan, ws, targets = load_checked(args, env)
    options = options_from(args)
    with ExitStack() as stack:  # every server serving until the run ends
        found = with_warnings(resolve_targets(plan, ws, targets, options, args, env, stack),
                              plan)
        probed = None
        if _probing(args):
            found, probed = probe_targets(found, env, targets.several,
                                          os.path.dirname(plan.path))
            _refuse_over_limits(probed, args.force)
        plan_dir = os.path.dirname(plan.path)
        specs = [JobSpec(job, t.server, slo_for(job.params, s.benchmark.slo), s.benchmark.retries,
                         s.benchmark.max_error_rate, _limits(job, t.inventory, plan_dir))
                 for t in found for s in t.chosen for job in s.jobs]
        warnings = unknown_tags(plan, options) + [n for t in found for n in t.notes]
        warnings += [f"{s.benchmark.name}: {w}" for s in chosen_of(found) for w in s.warnings]
        selection = {"limit": args.limit, "tags": args.tags, "skip_tags": args.skip_tags}
        warnings += _probe_notes(probed)
        yield replace(ws, server=found[0].server), Prepared(
            plan.to_json(), plan.variables, found[0].inventory, specs, warnings, selection,
            totals(chosen_of(found), replay_sending_s(plan_dir)), probed,
            tuple(t.inventory for t in found))


def _probing(args: argparse.Namespace) -> bool:
    return not getattr(args, "no_probe", False)


def _probe_notes(probed: Probed | None) -> list[str]:
    """The WARNING lines of a probe: the limits passed under --force, the models dropped."""
    if probed is None:
        return []
    return [*(f"{w} (--force)" for w in probed.over_limits),
            *(f"probe: {r.model} [{r.endpoint}] dropped, {r.status}: {r.reason}"
              for r in probed.report.dropped())]


def _probe_locked(args: argparse.Namespace, specs: list[JobSpec], found: Sequence[_Served],
                  env: Mapping[str, str], plan_dir: str) -> tuple[list[JobSpec], Probed | None]:
    """A lock's jobs probed as a plan's are (unless --no-probe), each on its server: the
    dropped ones left out."""
    if not _probing(args) or not specs:
        return specs, None
    probes = []
    for server, inv in found:
        mine = [s.job for s in specs if s.server.name == server.name]
        if mine:
            probes.append(probe_jobs(mine, inv, server, env, plan_dir))
    probed = merge_probed(probes)
    _refuse_over_limits(probed, args.force)
    return [s for s in specs if probed.report.drops(s.server.name, s.job.model,
                                                    endpoint_of(s.job)) is None], probed


def _refuse_over_limits(probed: Probed, force: bool) -> None:
    """A plan that passes the key's limits would measure 429s, not the model: exit 2 unless
    --force."""
    if probed.over_limits and not force:
        then = "; lower the load, or run it anyway with --force"
        raise RefusedError.many([Problem(line + then) for line in probed.over_limits])


_Served = tuple[Server, Inventory]  # a server of a lock, reachable, and its inventory now


@contextmanager
def _from_lock(args: argparse.Namespace,
               env: Mapping[str, str]) -> Iterator[tuple[Workspace, Prepared]]:
    _refuse_selection_options(args)
    lock = read_lock(args.plan)
    names, several = _lock_servers(lock, args.server)
    plan_path = lock["plan"].get("path")
    near = plan_path if plan_path and os.path.isfile(plan_path) else args.plan
    ws = open_workspace(args.config_dir, names[0], env, None, near=near)
    jobs = [job for job in locked_jobs(lock) if not several or job.server in names]
    with ExitStack() as stack:
        found = [_served(stack, ws, name, env, args.source, several) for name in names]
        by_server = _by_job_server(found, jobs, several)
        served = {name: set(inv.ids()) for name, (_, inv) in by_server.items()}
        warnings = check_fresh(args.plan, lock, jobs, served, args.force, args.allow_drift)
        settings = {b["name"]: b for b in lock["benchmarks"]}
        specs = [_locked_spec(job, *by_server[job.server], settings[job.benchmark],
                              os.path.dirname(plan_path or ""))
                 for job in jobs if job.model in served[job.server]]
        warnings += [w for w in (limit_warning(s.job, s.model_limits) for s in specs) if w]
        if not specs:
            raise InventoryError(f"{args.plan}: none of the locked jobs can run; "
                                 "re-plan with `runner plan PLAN --out FILE`")
        specs, probed = _probe_locked(args, specs, found, env, os.path.dirname(plan_path or ""))
        warnings += _probe_notes(probed)
        options = lock.get("options") or {}
        selection = {k: options.get(k) for k in ("limit", "tags", "skip_tags")}
        yield replace(ws, server=found[0][0]), Prepared(
            lock["plan"], lock.get("variables", {}), found[0][1], specs, warnings, selection,
            lock.get("totals") or {}, probed, tuple(inv for _, inv in found))


def _by_job_server(found: Sequence[_Served], jobs: Sequence[Job],
                   several: bool) -> dict[str | None, _Served]:
    """A job's `server` (None in a plan of one server) -> the server it runs on now: its own
    in a lock of several, else the lock's one (--server may replace it; a lock of one server
    of a plan of several still has jobs that name it)."""
    if several:
        return {server.name: (server, inv) for server, inv in found}
    return {job.server: found[0] for job in jobs}


def _lock_servers(lock: Mapping[str, Any], picked: str | None) -> tuple[list[str], bool]:
    """The servers a lock runs on and whether it has several (its jobs then name theirs):
    --server replaces a lock's one server, and picks one of a lock's several."""
    names = [entry["name"] for entry in lock.get("servers") or ()]
    if len(names) < 2:
        return [picked or lock["options"]["server"]], False
    if picked is None:
        return names, True
    if picked not in names:
        raise UsageError(f"--server '{picked}' is not one of the lock's servers "
                         f"({', '.join(names)}); --server picks one of them")
    return [picked], True


def _served(stack: ExitStack, ws: Workspace, name: str, env: Mapping[str, str], source: str,
            several: bool) -> _Served:
    """Server `name` serving for the duration of `stack`, and its inventory now."""
    if (unknown := unknown_server(ws.servers, name, "the lock")) is not None:
        raise InputError(unknown)
    live = stack.enter_context(serving(replace(ws, server=ws.servers.servers[name])))
    try:
        return live.server, fetch(live, env, source, allow_fallback=True)
    except RunnerError as exc:
        raise (on_server(exc, name) if several else exc) from None


_SELECTION_FLAGS = (("limit", "--limit"), ("tags", "--tags"), ("skip_tags", "--skip-tags"),
                    ("extra_vars", "-e/--extra-vars"), ("max_jobs", "--max-jobs"))


def _refuse_selection_options(args: argparse.Namespace) -> None:
    """A lock's jobs and variables are fixed: options that would change them are exit 2."""
    given = [flag for name, flag in _SELECTION_FLAGS if getattr(args, name, None)]
    if given:
        raise UsageError(f"{', '.join(given)} with a lock ({args.plan}): a lock runs exactly "
                         "what was planned; re-plan with these options: "
                         "`runner plan PLAN [options] --out FILE`")


def _locked_spec(job: Job, server: Server, inv: Inventory, bench: Mapping[str, Any],
                 plan_dir: str) -> JobSpec:
    return JobSpec(job, server, slo_for(job.params, bench.get("slo") or {}),
                   bench.get("retries", 0),
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
