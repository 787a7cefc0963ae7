"""`runner apply PLAN|LOCK`: run every job, keep every result on disk, print a RECAP."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, suppress
from typing import TYPE_CHECKING, Any

from runner import __version__, interrupts
from runner.atomicfile import check_output
from runner.commands.calibrating import calibrate_sources
from runner.commands.conclusion import conclude, rerun_options, stopped_by_disk, tell
from runner.commands.preparation import Prepared, prepare, prompt_sources
from runner.errors import (
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_JOBS_FAILED,
    EXIT_OK,
    StorageError,
    UsageError,
)
from runner.filelock import Holder
from runner.inventory.config import api_key
from runner.inventory.workspace import Workspace, describe_source
from runner.plan.expand import Job
from runner.plan.lock import is_lock
from runner.plan.searchplan import trial_jobs
from runner.printable import printable
from runner.report import junit
from runner.run import recap
from runner.run.capacity import is_search
from runner.run.executor import Context, JobSpec, execute
from runner.run.progress import reporter_for
from runner.run.resume import as_recorded, check_resume, prompt_nonce
from runner.run.serverlock import lock_servers

if TYPE_CHECKING:  # imported where it is used, as before
    from runner.results.store import RunStore


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.junit and args.junit != "-":  # refused now, not after the run
        check_output(args.junit, "the JUnit report", make_folder=True)
    with prepare(args, env) as (ws, prepared):
        check_workers(getattr(args, "workers", 1), prepared.specs)
        for warning in prepared.warnings:
            tell(f"WARNING: {printable(warning)}", sys.stderr)
        return _run(args, env, ws, prepared)


def check_workers(asked: int | str, specs: Sequence[JobSpec]) -> None:
    """Refuse `--workers N` (N > 1) for a plan with multi-turn sessions, which one process
    sends (`auto` gives those jobs one worker).

    Raises:
        UsageError: the first such job, and what to do."""
    if not isinstance(asked, int) or asked == 1:
        return
    for spec in specs:
        if spec.job.params.get("session"):
            raise UsageError(f"--workers {asked}: job {spec.job.id} runs multi-turn sessions "
                             "(workload.session), which one process sends; use --workers 1, "
                             "or --workers auto, which gives such jobs one worker")


def _run(args: argparse.Namespace, env: Mapping[str, str], ws: Workspace,
         prepared: Prepared) -> int:
    """Lock, record, run, report. Until the run's files are first written, a signal stops at
    once (exit 130); from then on it only stops the run, which still ends cleanly."""
    from runner.results.index import check_index, choose_index
    from runner.results.store import RunStore

    signals = interrupts.active()
    prompts = prompt_sources(prepared)
    for server in {spec.server.name: spec.server for spec in prepared.specs}.values():
        api_key(server, env)  # a key no header can carry stops here, before any run is made
    index = choose_index(args.results, env, ws.servers.index_url)
    check_index(index)  # a bad URL, password or database server: stop before a run exists
    # as the probe, before the run exists: a signal meanwhile stops at once
    prompts = calibrate_sources(prepared.specs, prompts, env, not getattr(args, "no_probe", False))
    command = f"runner apply {args.plan}"
    with ExitStack() as stack:
        resumed = _open_resumed(args, prepared, command, stack, index) if args.resume else None
        lock_servers(stack, _shared_servers(prepared.specs), env,
                     timeout_s=args.lock_timeout, command=command, on_wait=_waiting(args))
        args.ray_cluster = _join_cluster(args, env, stack)
        signals.hold()
        if resumed is None:
            store = RunStore.create(args.results, prepared.plan["name"],
                                    _manifest(args, prepared), command=command,
                                    index_location=index)
            stack.callback(store.close)
            specs = prepared.specs
        else:
            store, chosen = resumed
            specs = as_recorded([s for s in prepared.specs if s.job.id in chosen],
                                store.manifest)
        try:
            _record_jobs(store, specs, None if resumed is None else _resume_note(args, prepared))
        except StorageError as exc:
            raise stopped_by_disk(exc, store, args) from None
        return _run_jobs(args, env, ws, prepared, store, specs,
                         _salted(prompts, prompt_nonce(store.manifest)))


def _salted(prompts: Mapping[str, Any], nonce: str | None) -> Callable[[JobSpec], Any]:
    """Each job's prompt source, its synthetic prompts made its own and the run's by the run's
    nonce, as the job's `prompt_reuse` says (a --resume uses the nonce the run recorded)."""
    from runner.load.workload import prompt_salt

    def source(spec: JobSpec) -> Any:
        salt = prompt_salt(spec.job.params, spec.job.id, nonce)
        return prompts[spec.search_id or spec.job.id].salted(salt)
    return source


def _record_jobs(store: RunStore, specs: Sequence[JobSpec],
                 resume_note: dict[str, Any] | None) -> None:
    """The jobs this apply runs, recorded pending in the run (a new one, or the one resumed).
    A capacity search or sweep is recorded as itself until its first trial takes its place
    (store.add_job), so one an interrupt kept from starting stays pending for --resume; a
    resumed one that has trials is known by them (runner.run.resume)."""
    if resume_note is None:
        store.set_jobs([_job_entry(spec.job) for spec in specs])
        return
    recorded = {e.get("id") for e in store.manifest["jobs"]}
    store.resume_jobs([_job_entry(spec.job) for spec in specs
                       if spec.job.id in recorded or not is_search(spec.job)], resume_note)


def _shared_servers(specs: Sequence[JobSpec]) -> list[tuple[str, str]]:
    """(name, url) of the servers other processes may benchmark too: not an embedded
    simulator, which this process started for itself on a port of its own."""
    return [(s.server.name, s.server.url) for s in specs if s.server.kind != "mock"]


def _open_resumed(args: argparse.Namespace, prepared: Prepared, command: str,
                  stack: ExitStack, index: str) -> tuple[RunStore, frozenset[str]]:
    """The run to resume, locked, and the ids of the selected jobs that belong to it."""
    from runner.results.store import RunStore

    store = RunStore.resume(args.resume, command=command, index_location=index)
    stack.callback(store.close)
    found = check_resume(args.resume, store.manifest, prepared.plan,
                         [_job_entry(spec.job) for spec in prepared.specs], args.force)
    for warning in found.warnings:
        tell(f"WARNING: {printable(warning)}", sys.stderr)
    return store, found.job_ids


def _resume_note(args: argparse.Namespace, prepared: Prepared) -> dict[str, Any]:
    """What a --resume ran with, kept in the manifest's `resumes`."""
    return {"plan_sha256": prepared.plan.get("sha256"), "limit": getattr(args, "limit", None),
            "tags": getattr(args, "tags", None), "force": bool(args.force),
            "inventory": prepared.inventory.summary()} | (
                {"inventories": [inv.summary() for inv in prepared.inventories]}
                if prepared.several else {})


def _join_cluster(args: argparse.Namespace, env: Mapping[str, str], stack: ExitStack) -> Any:
    """`--executor ray`: this process joins the Ray cluster (left when the run ends) and says
    so; the cluster (raycluster.Cluster), or None for the local executor."""
    if getattr(args, "executor", "local") != "ray":
        return None
    from runner.run import raycluster

    address = raycluster.ray_address(getattr(args, "ray_address", None), env)
    cluster = raycluster.connect(address)
    stack.callback(raycluster.disconnect)
    workers = getattr(args, "workers", 1)
    if isinstance(workers, int) and workers > cluster.cpus:  # each actor takes one Ray CPU
        raise UsageError(f"--workers {workers}: the Ray cluster at {printable(address)} has "
                         f"{cluster.cpus} CPUs, one per worker; ask for at most {cluster.cpus}, "
                         "or --workers auto")
    tell(f"executor: Ray cluster at {printable(address)}, {cluster.cpus} CPUs", sys.stderr)
    return cluster


def _waiting(args: argparse.Namespace) -> Callable[[str, Holder], None]:
    def say(what: str, holder: Holder) -> None:
        tell(f"waiting up to {args.lock_timeout:g} s for {what}, locked by "
             f"{holder.describe()}", sys.stderr)
    return say


def _run_jobs(args: argparse.Namespace, env: Mapping[str, str], ws: Workspace,
              prepared: Prepared, store: RunStore, specs: list[JobSpec],
              prompts: Callable[[JobSpec], Any]) -> int:
    signals = interrupts.active()
    reporter = reporter_for(args, sum(trial_jobs(s.job.params) for s in specs))  # at most
    lines = [describe_source(inv, ws.models.path)
             for inv in prepared.inventories or (prepared.inventory,)]
    for line in lines:
        reporter.note(printable(line))
    source_line = "\n".join(map(printable, lines))
    try:
        summaries = _execute(specs, store, reporter, env, prompts, args, signals)
    except StorageError as exc:
        raise stopped_by_disk(exc, store, args) from None
    except BaseException:
        with suppress(Exception):  # a crash: keep the run resumable, then report the crash
            store.finish("interrupted")
        raise
    status, report = conclude(args, prepared, store, summaries, signals)
    statuses = {job["id"]: job["status"] for job in store.manifest["jobs"]}
    facts = recap.RunFacts(store.run_dir, status, args.plan, prepared.plan["name"], source_line,
                           prepared.totals, report, statuses, rerun_options(args),
                           store.manifest.get("capacity", ()))
    tell(recap.render(summaries, facts), sys.stdout)
    if status == "partial":
        tell(f"NOTE: run {store.run_dir} is partial: {len(store.undone_jobs())} of its "
             f"{len(store.manifest['jobs'])} jobs have not run; the resume command below "
             "runs them", sys.stderr)
    return _exit_code(status, summaries, args.gate or bool(prepared.plan.get("gate")))


def _exit_code(status: str, summaries: Sequence[Mapping[str, Any]], gate: bool) -> int:
    """130 interrupted, else 1 when a job failed, else 4 when a gated SLO was missed."""
    if status == "interrupted":
        return EXIT_INTERRUPTED
    if status == "failed":
        return EXIT_JOBS_FAILED
    failures = junit.gate_failures(summaries) if gate else []
    for line in failures:
        tell(f"GATE: {line}", sys.stderr)
    return EXIT_GATE if failures else EXIT_OK



def _manifest(args: argparse.Namespace, prepared: Prepared) -> dict[str, Any]:
    return {
        "plan": prepared.plan,
        "runner_version": __version__,
        "inventory": prepared.inventory.to_json(),
        **({"inventories": [inv.to_json() for inv in prepared.inventories]}
           if prepared.several else {}),
        "prompt_nonce": secrets.token_hex(8),  # see _salted
        **_probe_blocks(prepared),
        "options": {"source": args.source, **prepared.selection, "forks": args.forks,
                    "workers": getattr(args, "workers", 1),
                    "executor": getattr(args, "executor", "local"),
                    "fail_fast": args.fail_fast, "lock": is_lock(args.plan)},
    }


def _probe_blocks(prepared: Prepared) -> dict[str, Any]:
    """The manifest's `probe` (model id -> verdict) and `key_limits`, when the run probed."""
    if prepared.probed is None:
        return {}
    return {"probe": prepared.probed.to_json(),
            "key_limits": dict(prepared.probed.report.key_limits)}


def _job_entry(job: Job) -> dict[str, Any]:
    return {"id": job.id, "slug": job.slug, "benchmark": job.benchmark, "model": job.model,
            "params": dict(job.params)} | ({"server": job.server} if job.server else {})


def _execute(specs: list[JobSpec], store: RunStore, reporter: Any, env: Mapping[str, str],
             prompts: Callable[[JobSpec], Any], args: argparse.Namespace,
             signals: interrupts.Interrupts) -> list[dict[str, Any]]:
    """Run the jobs on an event loop that hears of signals through two events: `stop` (the
    first: send nothing more, finish cleanly) and `hurry` (a second: cancel in-flight requests
    now instead of after their grace period)."""
    async def main() -> list[dict[str, Any]]:
        stop, hurry = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def sync() -> None:
            if signals.requested:
                stop.set()
            if signals.hurried:
                hurry.set()

        def wake() -> None:
            loop.call_soon_threadsafe(sync)

        signals.wake = wake
        try:
            sync()
            ctx = Context(store, reporter, env, prompts, stop,
                          hurry=hurry, fail_fast=args.fail_fast, resume=bool(args.resume),
                          workers=getattr(args, "workers", 1),
                          cluster=getattr(args, "ray_cluster", None))
            return await execute(specs, ctx, forks=args.forks)
        finally:
            signals.wake = None

    return asyncio.run(main())

