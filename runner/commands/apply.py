"""`runner apply PLAN|LOCK`: run every job, keep every result on disk, print a RECAP."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from runner import __version__
from runner.atomicfile import write_atomic
from runner.commands.plan import load_checked, options_from
from runner.errors import (
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_JOBS_FAILED,
    EXIT_OK,
    InputError,
    InventoryError,
    Problem,
    UsageError,
)
from runner.inventory.listing import Inventory
from runner.inventory.workspace import Workspace, describe_source, fetch, open_workspace, serving
from runner.plan.expand import Job
from runner.plan.lock import check_fresh, is_lock, locked_jobs, read_lock
from runner.plan.selection import select, totals, unknown_tags
from runner.report import junit
from runner.run import recap
from runner.run.executor import Context, JobSpec, execute
from runner.run.progress import reporter_for


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


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    with _prepared(args, env) as (ws, prepared):
        for warning in prepared.warnings:
            print(f"WARNING: {warning}", file=sys.stderr)
        return _run(args, env, ws, prepared)


@contextmanager
def _prepared(args: argparse.Namespace,
              env: Mapping[str, str]) -> Iterator[tuple[Workspace, Prepared]]:
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
        chosen = select(plan, inv.ids(), ws.models.groups, options)
        specs = [JobSpec(job, live.server, s.benchmark.slo, s.benchmark.retries,
                         s.benchmark.max_error_rate) for s in chosen for job in s.jobs]
        warnings = unknown_tags(plan, options)
        warnings += [f"{s.benchmark.name}: {w}" for s in chosen for w in s.warnings]
        selection = {"limit": args.limit, "tags": args.tags, "skip_tags": args.skip_tags}
        yield live, Prepared(plan.to_json(), plan.variables, inv, specs, warnings, selection,
                             totals(chosen))


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
        specs = [_locked_spec(job, live, settings[job.benchmark])
                 for job in jobs if job.model in served]
        if not specs:
            raise InventoryError(f"{args.plan}: none of the locked jobs can run; "
                                 "re-plan with `runner plan PLAN --out FILE`")
        options = lock.get("options") or {}
        selection = {k: options.get(k) for k in ("limit", "tags", "skip_tags")}
        yield live, Prepared(lock["plan"], lock.get("variables", {}), inv, specs, warnings,
                             selection, lock.get("totals") or {})


_SELECTION_FLAGS = (("limit", "--limit"), ("tags", "--tags"), ("skip_tags", "--skip-tags"),
                    ("extra_vars", "-e/--extra-vars"), ("max_jobs", "--max-jobs"))


def _refuse_selection_options(args: argparse.Namespace) -> None:
    """A lock's jobs and variables are fixed: options that would change them are exit 2."""
    given = [flag for name, flag in _SELECTION_FLAGS if getattr(args, name, None)]
    if given:
        raise UsageError(f"{', '.join(given)} with a lock ({args.plan}): a lock runs exactly "
                         "what was planned; re-plan with these options: "
                         "`runner plan PLAN [options] --out FILE`")


def _locked_spec(job: Job, ws: Workspace, bench: Mapping[str, Any]) -> JobSpec:
    return JobSpec(job, ws.server, bench.get("slo", {}), bench.get("retries", 0),
                   bench.get("max_error_rate", 0))


def _run(args: argparse.Namespace, env: Mapping[str, str], ws: Workspace,
         prepared: Prepared) -> int:
    from runner.results.store import RunStore

    prompts = _prompt_sources(prepared)
    store = (RunStore.open(args.resume) if args.resume
             else RunStore.create(args.results, prepared.plan["name"], _manifest(args, prepared)))
    store.set_jobs([_job_entry(spec.job) for spec in prepared.specs])
    reporter = reporter_for(args, len(prepared.specs))
    source_line = describe_source(prepared.inventory, ws.models.path)
    reporter.note(source_line)
    summaries, interrupted = _execute(prepared, store, reporter, env, prompts, args)
    status = _run_status(summaries, interrupted)
    store.finish(status)
    gate = args.gate or bool(prepared.plan.get("gate"))
    if args.junit:
        save_text(args.junit, junit.render(prepared.plan["name"], summaries, gate=gate))
    report = None if args.no_report else _write_reports(store.run_dir)
    statuses = {job["id"]: job["status"] for job in store.manifest["jobs"]}
    facts = recap.RunFacts(store.run_dir, status, args.plan, prepared.plan["name"], source_line,
                           prepared.totals, report, statuses)
    print(recap.render(summaries, facts))
    return _exit_code(status, summaries, gate)


def _write_reports(run_dir: str) -> str | None:
    """report.html and summary.md; a report that cannot be written never changes the outcome.
    Returns the HTML report's path, or None when it could not be written."""
    from runner.report.render import write_reports

    try:
        return write_reports(run_dir)[0]
    except (InputError, OSError) as exc:
        print(f"WARNING: could not write the reports: {exc}", file=sys.stderr)
        return None


def _exit_code(status: str, summaries: Sequence[Mapping[str, Any]], gate: bool) -> int:
    """130 interrupted, else 1 when a job failed, else 4 when a gated SLO was missed."""
    if status == "interrupted":
        return EXIT_INTERRUPTED
    if status == "failed":
        return EXIT_JOBS_FAILED
    failures = junit.gate_failures(summaries) if gate else []
    for line in failures:
        print(f"GATE: {line}", file=sys.stderr)
    return EXIT_GATE if failures else EXIT_OK


def save_text(path: str, text: str) -> None:
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_atomic(path, text)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None


def _prompt_sources(prepared: Prepared) -> dict[str, Any]:
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
                  "seed")


def _prompt_source(spec: JobSpec, plan_dir: str, prepared: Prepared) -> Any:
    from runner.load.workload import prompt_source

    try:
        return prompt_source(spec.job.params, plan_dir, prepared.variables)
    except InputError as exc:
        where = f"{prepared.plan['path']}: benchmark '{spec.job.benchmark}'"
        raise InputError.many([Problem(f"{where}: {p.render()}") for p in exc.problems]) from None


def _manifest(args: argparse.Namespace, prepared: Prepared) -> dict[str, Any]:
    return {
        "plan": prepared.plan,
        "runner_version": __version__,
        "inventory": prepared.inventory.to_json(),
        "options": {"source": args.source, **prepared.selection, "forks": args.forks,
                    "fail_fast": args.fail_fast, "lock": is_lock(args.plan)},
    }


def _job_entry(job: Job) -> dict[str, Any]:
    return {"id": job.id, "slug": job.slug, "benchmark": job.benchmark, "model": job.model,
            "params": dict(job.params)}


def _execute(prepared: Prepared, store: Any, reporter: Any, env: Mapping[str, str],
             prompts: Mapping[str, Any], args: argparse.Namespace,
             ) -> tuple[list[dict[str, Any]], bool]:
    async def main() -> tuple[list[dict[str, Any]], bool]:
        stop = asyncio.Event()
        _install_signals(stop, asyncio.current_task())
        ctx = Context(store, reporter, env, lambda spec: prompts[spec.job.id], stop,
                      fail_fast=args.fail_fast, resume=bool(args.resume))
        summaries = await execute(prepared.specs, ctx, forks=args.forks)
        return summaries, stop.is_set()

    return asyncio.run(main())


def _install_signals(stop: asyncio.Event, task: asyncio.Task[Any] | None) -> None:
    """First SIGINT/SIGTERM: stop sending and finish cleanly; a second one: cancel now."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


def _run_status(summaries: Sequence[Mapping[str, Any]], interrupted: bool) -> str:
    if interrupted or any(s["status"] == "interrupted" for s in summaries):
        return "interrupted"
    if any(s["status"] == "failed" for s in summaries):
        return "failed"
    return "ok"
