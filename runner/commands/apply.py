"""`runner apply PLAN|LOCK`: run every job, keep every result on disk, print a RECAP."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from runner import __version__, interrupts
from runner.atomicfile import check_output, write_output
from runner.commands.plan import load_checked, options_from
from runner.errors import (
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_JOBS_FAILED,
    EXIT_OK,
    InputError,
    InventoryError,
    Problem,
    RunnerError,
    StorageError,
    UsageError,
    cannot_write,
)
from runner.filelock import Holder
from runner.inventory.config import api_key
from runner.inventory.listing import Inventory
from runner.inventory.workspace import Workspace, describe_source, fetch, open_workspace, serving
from runner.plan.expand import Job
from runner.plan.lock import check_fresh, is_lock, locked_jobs, read_lock
from runner.plan.selection import select, totals, unknown_tags
from runner.printable import printable, printable_lines
from runner.report import junit
from runner.run import recap
from runner.run.executor import Context, JobSpec, execute
from runner.run.progress import reporter_for
from runner.run.resume import as_recorded, check_resume
from runner.run.serverlock import lock_servers

if TYPE_CHECKING:  # imported where it is used, as before
    from runner.results.store import RunStore


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
    if args.junit and args.junit != "-":  # refused now, not after the run
        check_output(args.junit, "the JUnit report", make_folder=True)
    with _prepared(args, env) as (ws, prepared):
        for warning in prepared.warnings:
            tell(f"WARNING: {printable(warning)}", sys.stderr)
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
    """Lock, record, run, report. Until the run's files are first written, a signal stops at
    once (exit 130); from then on it only stops the run, which still ends cleanly."""
    from runner.results.store import RunStore

    signals = interrupts.active()
    prompts = _prompt_sources(prepared)
    for server in {spec.server.name: spec.server for spec in prepared.specs}.values():
        api_key(server, env)  # a key no header can carry stops here, before any run is made
    command = f"runner apply {args.plan}"
    with ExitStack() as stack:
        resumed = _open_resumed(args, prepared, command, stack) if args.resume else None
        lock_servers(stack, _shared_servers(prepared.specs), env,
                     timeout_s=args.lock_timeout, command=command, on_wait=_waiting(args))
        signals.hold()
        if resumed is None:
            store = RunStore.create(args.results, prepared.plan["name"],
                                    _manifest(args, prepared), command=command)
            stack.callback(store.close)
            specs = prepared.specs
        else:
            store, chosen = resumed
            specs = as_recorded([s for s in prepared.specs if s.job.id in chosen],
                                store.manifest)
        try:
            _record_jobs(store, specs, None if resumed is None else _resume_note(args, prepared))
        except StorageError as exc:
            raise _stopped_by_disk(exc, store, args) from None
        return _run_jobs(args, env, ws, prepared, store, specs, prompts)


def _record_jobs(store: RunStore, specs: Sequence[JobSpec],
                 resume_note: dict[str, Any] | None) -> None:
    """The jobs this apply runs, recorded pending in the run (a new one, or the one resumed)."""
    entries = [_job_entry(spec.job) for spec in specs]
    if resume_note is None:
        store.set_jobs(entries)
    else:
        store.resume_jobs(entries, resume_note)


def _shared_servers(specs: Sequence[JobSpec]) -> list[tuple[str, str]]:
    """(name, url) of the servers other processes may benchmark too: not an embedded
    simulator, which this process started for itself on a port of its own."""
    return [(s.server.name, s.server.url) for s in specs if s.server.kind != "mock"]


def _open_resumed(args: argparse.Namespace, prepared: Prepared, command: str,
                  stack: ExitStack) -> tuple[RunStore, frozenset[str]]:
    """The run to resume, locked, and the ids of the selected jobs that belong to it."""
    from runner.results.store import RunStore

    store = RunStore.resume(args.resume, command=command)
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
            "inventory": prepared.inventory.summary()}


def _waiting(args: argparse.Namespace) -> Callable[[str, Holder], None]:
    def say(what: str, holder: Holder) -> None:
        tell(f"waiting up to {args.lock_timeout:g} s for {what}, locked by "
             f"{holder.describe()}", sys.stderr)
    return say


def _run_jobs(args: argparse.Namespace, env: Mapping[str, str], ws: Workspace,
              prepared: Prepared, store: RunStore, specs: list[JobSpec],
              prompts: Mapping[str, Any]) -> int:
    signals = interrupts.active()
    reporter = reporter_for(args, len(specs))
    source_line = describe_source(prepared.inventory, ws.models.path)
    reporter.note(printable(source_line))
    try:
        summaries = _execute(specs, store, reporter, env, prompts, args, signals)
    except StorageError as exc:
        raise _stopped_by_disk(exc, store, args) from None
    except BaseException:
        with suppress(Exception):  # a crash: keep the run resumable, then report the crash
            store.finish("interrupted")
        raise
    status, report = _conclude(args, prepared, store, summaries, signals)
    statuses = {job["id"]: job["status"] for job in store.manifest["jobs"]}
    facts = recap.RunFacts(store.run_dir, status, args.plan, prepared.plan["name"], source_line,
                           prepared.totals, report, statuses, _rerun_options(args))
    tell(recap.render(summaries, facts), sys.stdout)
    if status == "partial":
        tell(f"NOTE: run {store.run_dir} is partial: {len(store.undone_jobs())} of its "
             f"{len(store.manifest['jobs'])} jobs have not run; the resume command below "
             "runs them", sys.stderr)
    return _exit_code(status, summaries, args.gate or bool(prepared.plan.get("gate")))


def _stopped_by_disk(exc: StorageError, store: RunStore,
                     args: argparse.Namespace) -> StorageError:
    """The disk refused the run's files: the run is marked interrupted if it still can be (the
    store gives back the space it held for this), and the one line says how to finish it."""
    try:
        store.finish("interrupted")
        state = f"run {store.run_dir} is marked interrupted"
    except (RunnerError, OSError):
        state = f"run {store.run_dir} could not even be marked interrupted"
    resume = shlex.join(["runner", "apply", args.plan, *_rerun_options(args),
                         "--resume", store.run_dir])
    return StorageError(exc.failed, f"{state}: free some space, then finish it with: {resume}")


def _rerun_options(args: argparse.Namespace) -> tuple[str, ...]:
    """The options a resume (or a run again) of this apply needs to reach the same server,
    configs and results: without them the hint would run against the default server."""
    given = (("--server", args.server), ("--config-dir", args.config_dir),
             ("--results", None if args.results == "results" else args.results),
             ("--source", None if args.source == "auto" else args.source))
    return tuple(part for option, value in given if value for part in (option, value))


def _conclude(args: argparse.Namespace, prepared: Prepared, store: RunStore,
              summaries: list[dict[str, Any]],
              signals: interrupts.Interrupts) -> tuple[str, str | None]:
    """The run's final status, stamped, and the HTML report's path (None when none was
    written); JUnit and reports are written, but not after a second signal. A signal that
    arrives meanwhile still makes the run interrupted."""
    status = _run_status(summaries, signals.requested, store.undone_jobs())
    try:
        store.finish(status)
    except StorageError as exc:
        raise _stopped_by_disk(exc, store, args) from None
    gate = args.gate or bool(prepared.plan.get("gate"))
    if args.junit:
        _save_junit(args.junit, junit.render(prepared.plan["name"], summaries, gate=gate),
                    signals)
    report = None
    if not args.no_report and not signals.hurried:
        report = _write_reports(store.run_dir)
    if signals.requested and status != "interrupted":
        status = "interrupted"
        store.finish(status)
    return status, report


def _save_junit(path: str, text: str, signals: interrupts.Interrupts) -> None:
    """Write the JUnit report; a signal cuts a wait for a FIFO's reader short (the run then
    ends interrupted, without the file)."""
    written = False
    with signals.cut_short():
        # A signal that came before the block would not cut the FIFO's wait: do not start it.
        if not (signals.requested and _is_fifo(path)):
            save_text(path, text)
            written = True
    if not written:
        tell(f"WARNING: interrupted before the JUnit report was written to {path}", sys.stderr)


def _is_fifo(path: str) -> bool:
    with suppress(OSError):
        return stat.S_ISFIFO(os.stat(path).st_mode)
    return False


def _write_reports(run_dir: str) -> str | None:
    """report.html and summary.md; a report that cannot be written never changes the outcome.
    Returns the HTML report's path, or None when it could not be written."""
    from runner.report.render import write_reports

    try:
        return write_reports(run_dir)[0]
    except InputError as exc:
        tell(f"WARNING: could not write the reports: {printable(exc)}", sys.stderr)
    except OSError as exc:
        tell(f"WARNING: could not write the reports into {run_dir} "
             f"({exc.strerror or exc}); the results are complete: `runner report "
             f"{shlex.quote(run_dir)}` writes report.html once there is room", sys.stderr)
    return None


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


def tell(text: str, stream: TextIO) -> None:
    """Print a line (its untrusted parts made printable by the caller; any control character
    left is escaped here); a reader that went away (a cancelled CI job's log) never changes how
    the run ends: the stream goes to /dev/null and the exit code stays what the run decided."""
    try:
        print(printable_lines(text), file=stream, flush=True)
    except BrokenPipeError:
        with suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)


def save_text(path: str, text: str) -> None:
    """Write an output the user named (`--junit FILE`; `-` is stdout) without replacing what is
    there: see atomicfile.write_output."""
    if path == "-":
        tell(text.rstrip("\n"), sys.stdout)
        return
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_output(path, text)
    except OSError as exc:
        raise cannot_write(path, exc, "the JUnit report") from None


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


def _execute(specs: list[JobSpec], store: RunStore, reporter: Any, env: Mapping[str, str],
             prompts: Mapping[str, Any], args: argparse.Namespace,
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
            ctx = Context(store, reporter, env, lambda spec: prompts[spec.job.id], stop,
                          hurry=hurry, fail_fast=args.fail_fast, resume=bool(args.resume))
            return await execute(specs, ctx, forks=args.forks)
        finally:
            signals.wake = None

    return asyncio.run(main())


def _run_status(summaries: Sequence[Mapping[str, Any]], interrupted: bool,
                undone: Sequence[str]) -> str:
    """interrupted, else failed (a job of this apply failed), else partial (jobs of the run's
    record are still to run: a narrower --resume), else ok."""
    if interrupted or any(s["status"] == "interrupted" for s in summaries):
        return "interrupted"
    if any(s["status"] == "failed" for s in summaries):
        return "failed"
    return "partial" if undone else "ok"
