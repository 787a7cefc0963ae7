"""`runner plan PLAN`: the dry run that shows exactly which models and jobs would run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from runner import defaults
from runner.atomicfile import check_output
from runner.commands.probing import Probed
from runner.commands.targeting import (
    Target,
    chosen_of,
    plan_workspace,
    probe_targets,
    resolve_targets,
    with_warnings,
)
from runner.commands.validate import pattern_problems
from runner.errors import EXIT_OK, InputError
from runner.inventory.listing import Inventory
from runner.inventory.workspace import Workspace, describe_source
from runner.load.prefixes import priming_requests
from runner.load.traceplan import describe_replay, replay_plan, replay_sending_s, trace_problems
from runner.plan.lock import build_lock, lock_text, save_lock
from runner.plan.planfile import Plan, load_plan, parse_extra_vars
from runner.plan.searchplan import Search, sweep_settings, worst_case_trials
from runner.plan.selection import (
    Options,
    Selected,
    inventory_notes,
    split_tags,
    unknown_tags,
)
from runner.plan.servers import Targets
from runner.plan.sessions import describe_requests
from runner.plan.totals import duration_text, number_text, sending_s, totals, totals_text
from runner.printable import printable


def load_checked(args: argparse.Namespace,
                 env: Mapping[str, str]) -> tuple[Plan, Workspace, Targets]:
    """The plan, its workspace and its servers, with pattern syntax checked before any network
    call."""
    plan = load_plan(args.plan, parse_extra_vars(args.extra_vars))
    ws, targets = plan_workspace(plan, args, env)
    problems = pattern_problems(plan, ws.models) + trace_problems(plan)
    if problems:
        raise InputError.many(problems)
    return plan, ws, targets


STDOUT = "-"


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.out and args.out != STDOUT:  # refused now, not after asking the inventory
        check_output(args.out, "the plan lock", make_folder=True)
    plan, ws, targets = load_checked(args, env)
    with ExitStack() as stack:  # each server's inventory; no job left: says why
        found = resolve_targets(plan, ws, targets, options_from(args), args, env, stack)
        found = with_warnings(found, plan)
        probed = None
        if args.probe:  # plan stays offline-cheap without it (apply probes by default)
            found, probed = probe_targets(found, env, targets.several,
                                          os.path.dirname(plan.path))
    for line in unknown_tags(plan, options_from(args)):
        print(f"WARNING: {printable(line)}", file=sys.stderr)
    for line in (probed.over_limits if probed is not None else []):
        print(f"WARNING: {printable(line)}; apply refuses this plan unless --force",
              file=sys.stderr)
    report = to_json(plan, found)
    if probed is not None:
        report["probe"] = probed.to_json()
        report["key_limits"] = dict(probed.report.key_limits)
    # A lock holds the jobs left after the probe, not its verdicts (lock.schema.json)
    locked = {k: v for k, v in report.items() if k not in ("probe", "key_limits")}
    lock = lock_of(locked, found, plan, args) if args.out else None
    if lock is not None and args.out != STDOUT:
        save_lock(args.out, lock)
    _show(args, report, as_text(plan, found, ws.models.path), probed,
          [t.inventory for t in found], ws.models.path)
    if lock is not None and args.out == STDOUT:
        sys.stdout.write(lock_text(STDOUT, lock))
    elif lock is not None:
        print(f"saved plan lock to {args.out}", file=sys.stderr)
    return EXIT_OK


def _show(args: argparse.Namespace, report: Mapping[str, Any], text: str, probed: Probed | None,
          inventories: Sequence[Inventory], models_path: str) -> None:
    """The plan view: JSON (the fallback warnings on stderr) or text, on stdout, or on stderr
    when stdout holds the lock."""
    view = sys.stderr if args.out == STDOUT else sys.stdout
    if args.json:
        for inv in inventories:
            if inv.source != "live":
                print(printable(describe_source(inv, models_path)), file=sys.stderr)
        print(json.dumps(report, separators=(",", ":")), file=view)
    else:
        probe_text = "" if probed is None else "\n\n" + "\n".join(map(printable, probed.lines()))
        print(text + probe_text, file=view)


def options_from(args: argparse.Namespace) -> Options:
    max_jobs = args.max_jobs if args.max_jobs is not None else defaults.MAX_JOBS
    if max_jobs < 1:
        raise InputError("--max-jobs must be at least 1")
    return Options(args.limit, split_tags(args.tags), split_tags(args.skip_tags), max_jobs)


def to_json(plan: Plan, found: Sequence[Target]) -> dict[str, Any]:
    """The machine-readable plan view (also the body of a plan lock); a plan with several
    servers adds `inventories` (one per server; `inventory` is the first's)."""
    chosen = chosen_of(found)
    several = {"inventories": [t.inventory.summary() for t in found]} if len(found) > 1 else {}
    plan_dir = os.path.dirname(plan.path)
    return {
        "plan": plan.to_json(),
        "inventory": found[0].inventory.summary(),
        **several,
        "benchmarks": [s.to_json() for s in chosen],
        "jobs": [_job_json(job.to_json(), plan_dir) for s in chosen for job in s.jobs],
        "totals": totals(chosen, replay_sending_s(plan_dir)),
    }


def _job_json(job: dict[str, Any], plan_dir: str) -> dict[str, Any]:
    """A job of the plan view; a replay's adds its trace's figures (`replay`)."""
    found = replay_plan(job["params"], plan_dir)
    return job if found is None else {**job, "replay": found}


def lock_of(report: Mapping[str, Any], found: Sequence[Target], plan: Plan,
            args: argparse.Namespace) -> dict[str, Any]:
    """The lock `--out` saves: the plan view with each server's inventory snapshot."""
    first = found[0].inventory
    options = {"server": first.server, "source": args.source, "limit": args.limit,
               "tags": args.tags, "skip_tags": args.skip_tags}
    lock = build_lock({k: v for k, v in report.items() if k != "inventories"}, first,
                      plan.variables, options)
    if len(found) > 1:
        lock["servers"] = [{"name": t.inventory.server, "inventory": t.inventory.summary(),
                            "inventory_snapshot": t.inventory.to_json()} for t in found]
    return lock


def as_text(plan: Plan, found: Sequence[Target], models_path: str) -> str:
    """The human view, in the spirit of `ansible-playbook --list-hosts`; a plan with several
    servers is grouped by server, each with where its models came from."""
    lines = [printable(f"plan: {plan.name} ({plan.path}, sha256 {plan.sha256[:12]})")]
    several = len(found) > 1 or any(s.server for t in found for s in t.chosen)
    for t in found:
        if several:
            lines += ["", printable(f"server: {t.server.name}")]
        lines.append(printable(describe_source(t.inventory, models_path)))
        lines += [f"WARNING: {printable(note)}" for note in t.notes]
        for s in t.chosen:
            lines += ["", *_benchmark_lines(s, os.path.dirname(plan.path))]
    totaled = totals(chosen_of(found), replay_sending_s(os.path.dirname(plan.path)))
    lines += ["", f"TOTAL: {totals_text(totaled)}"]
    return "\n".join(lines)


def describe_load(params: Mapping[str, Any], plan_dir: str = ".") -> str:
    """A job's load in words: `concurrency 4, 20 requests (+2 warm-up)`, or
    `rate 2/s poisson (at most 8 in flight), 60 s`; a repeated job adds `, ×3 (10 s apart)`."""
    if isinstance(params.get("sweep"), Mapping):
        sweep = sweep_settings(params)
        load = (f"sweep: concurrency 1, concurrency {sweep['concurrency']}, then "
                f"{sweep['rates']} constant rates between their rates, each job")
    elif isinstance(params.get("search"), Mapping):
        load = _describe_search(params["search"]) + _in_flight(params)
    elif "replay" in params:
        load = describe_replay(params, plan_dir)
    elif "rate" in params:
        load = f"rate {number_text(params['rate'])}/s {params.get('arrival', '')}".rstrip()
        load += _in_flight(params)
    else:
        load = f"concurrency {params.get('concurrency', defaults.CONCURRENCY)}"
    ramp = params.get("ramp_up")
    if isinstance(ramp, Mapping):
        load += f", ramp-up {ramp.get('shape', 'linear')} over {number_text(ramp['duration_s'])} s"
    requests, duration = params.get("requests"), params.get("duration_s")
    stop = [describe_requests(params)] if requests else []
    stop += [f"{number_text(duration)} s"] if duration else []
    text = f"{load}, {' or '.join(stop)}{', whichever comes first' if len(stop) > 1 else ''}" \
        if stop else load
    text += _sending_text(params)
    warmup = params.get("warmup_requests", 0)
    text += f" (+{warmup} warm-up)" if warmup else ""
    text += f" (+{primed} priming)" if (primed := priming_requests(params)) else ""
    repeat = params.get("repeat") or defaults.REPEAT
    pause = params.get("repeat_pause_s")
    return text + (f", ×{repeat}" + (f" ({number_text(pause)} s apart)" if pause else "")
                   if repeat > 1 else "")


def _in_flight(params: Mapping[str, Any]) -> str:
    """` (at most 8 in flight)` for an open loop with max_concurrency."""
    most = params.get("max_concurrency")
    return f" (at most {most} in flight)" if most else ""


def _sending_text(params: Mapping[str, Any]) -> str:
    """` (about 20 s)` for an open loop that stops after a number of requests (requests / rate),
    ` (at most 20 s)` for a rate search's trial; nothing where the plan does not say."""
    seconds = sending_s(params)
    if seconds is None or "requests" not in params or seconds == params.get("duration_s"):
        return ""
    bound = "at most" if "search" in params or "ramp_up" in params else "about"
    return f" ({bound} {duration_text(seconds)})"


def _describe_search(search: Mapping[str, Any]) -> str:
    """`capacity search over concurrency 1..32 streams (precision 10%, at most 7 trials)`."""
    found = Search.from_json(search)
    return (f"capacity search over {found.over} {number_text(found.start)}.."
            f"{number_text(found.stop)} {found.unit} (precision {found.precision * 100:.3g}%, "
            f"at most {worst_case_trials(found)} trials), each trial")


def _benchmark_lines(s: Selected, plan_dir: str) -> list[str]:
    """A benchmark's lines; names, patterns, model ids and job ids come from files and servers,
    so each is made printable on its own line."""
    tags = f"  [tags: {', '.join(s.benchmark.tags)}]" if s.benchmark.tags else ""
    head = printable(f"benchmark: {s.benchmark.name}{tags}")
    lines = [head + (f"  SKIPPED ({printable(s.skipped)})" if s.skipped else ""),
             printable(f"  pattern: {', '.join(s.patterns)}")]
    lines += [f"  WARNING: {printable(w)}" for w in s.warnings]
    lines += [f"  {printable(line)}" for line in inventory_notes(s)]
    if s.skipped and not s.models:
        return lines
    lines.append(f"  models ({len(s.models)}):")
    lines += [f"    {printable(m)}" for m in s.models]
    lines.append(f"  jobs ({len(s.jobs)}):")
    ids = [printable(job.id) for job in s.jobs]
    width = max(map(len, ids), default=0)
    lines += [f"    {shown.ljust(width)}  {printable(describe_load(job.params, plan_dir))}"
              for shown, job in zip(ids, s.jobs, strict=True)]
    return lines
