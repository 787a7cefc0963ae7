"""A plan's servers, each serving and resolved: its inventory fetched once (live or fallback, per
server) and the benchmarks that run on it resolved against that inventory."""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

from runner.commands.probing import Probed, merge_probed, probe_selection
from runner.errors import InputError, InventoryError, RunnerError
from runner.inventory import config
from runner.inventory.config import Server
from runner.inventory.listing import Inventory
from runner.inventory.workspace import Workspace, fetch, open_workspace, serving
from runner.load.traceplan import longest_request
from runner.plan import patterns
from runner.plan.expand import enforce_max_jobs
from runner.plan.limits import with_limit_warnings
from runner.plan.planfile import Plan
from runner.plan.searchplan import trial_jobs
from runner.plan.selection import Options, Selected, for_server, nothing_left, select
from runner.plan.servers import (
    Targets,
    names_servers,
    on_server,
    plan_targets,
    unknown_server_problems,
)


@dataclass(frozen=True)
class Target:
    """One server of a plan, reachable, with its inventory and what the plan selects on it."""

    server: Server
    inventory: Inventory
    chosen: list[Selected]
    notes: tuple[str, ...] = ()  # warnings about this server's selection as a whole


def plan_workspace(plan: Plan, args: argparse.Namespace,
                   env: Mapping[str, str]) -> tuple[Workspace, Targets]:
    """The configs and the plan's servers. A plan that names none chooses one as always
    (--server > $RUNNER_SERVER > inventory.server > servers.yaml's default); one that names
    them (inventory.servers, a benchmark's server/servers) is checked against servers.yaml
    (InputError at each unknown name) and --server picks one of them."""
    if not names_servers(plan):
        ws = open_workspace(args.config_dir, args.server, env, plan.server, near=args.plan,
                            plan_where=plan.where.get("server"))
        return ws, Targets((ws.server.name,), {b.name: (ws.server.name,)
                                                 for b in plan.benchmarks}, False)
    found = config.find_config_dir(args.config_dir, env, args.plan)
    servers = config.load_servers(found)
    problems = unknown_server_problems(plan, servers.servers, servers.path)
    if problems:
        raise InputError.many(problems)
    needs_default = plan.servers is None and any(not b.servers for b in plan.benchmarks)
    default = config.choose_server(servers, None, {}, plan.server, plan.where.get("server")) \
        if needs_default else None
    targets = plan_targets(plan, default.name if default else "", args.server)
    if args.server and (unknown := config.unknown_server(servers, args.server, "--server")):
        raise InputError(unknown)
    first = servers.servers[targets.names[0]]
    return Workspace(found.path, servers, config.load_models(found, env), first), targets


def resolve_targets(plan: Plan, ws: Workspace, targets: Targets, options: Options,
                    args: argparse.Namespace, env: Mapping[str, str],
                    stack: ExitStack) -> list[Target]:
    """Each server serving (a simulator started for the duration of `stack`), its inventory
    fetched and its benchmarks resolved. Errors about one server of several name it; a
    selection that leaves no job on any server is an InventoryError (exit 3)."""
    found = []
    for name in targets.names:
        server = ws.servers.servers.get(name, ws.server)
        live = stack.enter_context(serving(replace(ws, server=server)))
        sub = replace(plan, benchmarks=tuple(b for b in plan.benchmarks
                                             if name in targets.benchmarks[b.name]))
        try:
            inv = fetch(live, env, args.source, allow_fallback=plan.fallback)
            found.append(_resolve(sub, live, inv, options, targets.several))
        except RunnerError as exc:
            raise (on_server(exc, name) if targets.several else exc) from None
    if targets.several and not any(s.jobs for t in found for s in t.chosen):
        _no_job_anywhere(plan, found, options)
    if targets.several:  # --max-jobs bounds the run, not each server's part of it
        jobs = [job for t in found for s in t.chosen for job in s.jobs]
        enforce_max_jobs(len(jobs), options.max_jobs)
        enforce_max_jobs(sum(trial_jobs(job.params) for job in jobs), options.max_jobs,
                         "at most ")
    return found


def _resolve(plan: Plan, live: Workspace, inv: Inventory, options: Options,
             several: bool) -> Target:
    if not several:
        return Target(live.server, inv, select(plan, inv.ids(), live.models.groups, options, inv))
    if options.limit and not patterns.resolve(options.limit, inv.ids(), live.models.groups).models:
        note = f"--limit '{options.limit}' matches no model of server '{live.server.name}'"
        return Target(live.server, inv, [], (f"{note}: none of its jobs run",))
    chosen = select(plan, inv.ids(), live.models.groups, options, inv, allow_empty=True)
    return Target(live.server, inv, for_server(chosen, live.server.name))


def _no_job_anywhere(plan: Plan, found: Sequence[Target], options: Options) -> None:
    """Raise the reason no server has a job: an unmatched --limit, else the selection's."""
    if options.limit and all(t.notes for t in found):
        raise InventoryError(f"--limit '{options.limit}' matches no model on any of the plan's "
                             "servers; see `runner inventory --server NAME` for the model ids")
    raise nothing_left(plan, [s for t in found for s in t.chosen], options)


def source_lines(found: Sequence[Target], models_path: str) -> list[str]:
    """One line per server saying where its models came from (live, or the fallback file
    with the reason)."""
    from runner.inventory.workspace import describe_source

    return [describe_source(t.inventory, models_path) for t in found]


def trace_lengths(plan: Plan) -> Any:
    """A job's trace's longest request (runner.plan.limits.model_limits `longest_of`)."""
    return functools.partial(longest_request, plan_dir=os.path.dirname(plan.path))


def with_warnings(found: Sequence[Target], plan: Plan) -> list[Target]:
    """Each server's selection with the lengths its models take checked (plan.limits)."""
    return [replace(t, chosen=with_limit_warnings(t.chosen, t.inventory, trace_lengths(plan)))
            for t in found]


def probe_targets(found: Sequence[Target], env: Mapping[str, str], several: bool,
                  plan_dir: str = ".") -> tuple[list[Target], Probed]:
    """Each server's models probed on that server (its key's limits fetched from it, a
    replay's demand from its trace under `plan_dir`), the dropped ones' jobs left out; the
    probes merged into one (a server with no job is not probed). An error about one server
    of several names it."""
    probes, kept = [], []
    for t in found:
        if not any(s.jobs for s in t.chosen):
            kept.append(t)
            continue
        try:
            probed = probe_selection(t.chosen, t.inventory, t.server, env, plan_dir)
        except RunnerError as exc:
            raise (on_server(exc, t.server.name) if several else exc) from None
        probes.append(probed)
        kept.append(replace(t, chosen=probed.chosen))
    return kept, merge_probed(probes)


def chosen_of(found: Sequence[Target]) -> list[Selected]:
    """Every server's selection, server after server."""
    return [s for t in found for s in t.chosen]
