"""How `runner apply` ends a run: its final status, the JUnit file and the reports, what a
full disk leaves to do; and `tell`, its lines to a terminal whose reader may be gone."""

from __future__ import annotations

import argparse
import os
import shlex
import stat
import sys
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TextIO

from runner import interrupts
from runner.atomicfile import write_output
from runner.commands.preparation import Prepared
from runner.errors import (
    InputError,
    RunnerError,
    StorageError,
    UnreachableIndexError,
    cannot_write,
)
from runner.printable import printable, printable_lines
from runner.report import junit
from runner.run.gateway import run_gateway

if TYPE_CHECKING:  # imported where it is used, as before
    from runner.results.store import RunStore


def stopped_by_disk(exc: StorageError, store: RunStore,
                    args: argparse.Namespace) -> StorageError:
    """The disk refused the run's files, or the results index could not be reached: the run
    is marked interrupted if it still can be (the store gives back the space it held for
    this), and the one line says how to finish it."""
    try:
        store.finish("interrupted")
        state = f"run {store.run_dir} is marked interrupted"
    except UnreachableIndexError:  # raised after the manifest was written
        state = (f"run {store.run_dir} is marked interrupted in its manifest (the resume "
                 "brings the index up to date)")
    except (RunnerError, OSError):
        state = f"run {store.run_dir} could not even be marked interrupted"
    resume = shlex.join(["runner", "apply", args.plan, *rerun_options(args),
                         "--resume", store.run_dir])
    return type(exc)(exc.failed, f"{state}: {exc.fix}, then finish it with: {resume}")


def rerun_options(args: argparse.Namespace) -> tuple[str, ...]:
    """The options a resume (or a run again) of this apply needs to reach the same server,
    configs and results: without them the hint would run against the default server."""
    given = (("--server", args.server), ("--config-dir", args.config_dir),
             ("--results", None if args.results == "results" else args.results),
             ("--source", None if args.source == "auto" else args.source))
    return tuple(part for option, value in given if value for part in (option, value))


def conclude(args: argparse.Namespace, prepared: Prepared, store: RunStore,
             summaries: list[dict[str, Any]],
             signals: interrupts.Interrupts) -> tuple[str, str | None]:
    """The run's final status, stamped, and the HTML report's path (None when none was
    written); JUnit and reports are written, but not after a second signal. A signal that
    arrives meanwhile still makes the run interrupted."""
    status = _run_status(summaries, signals.requested, store.undone_jobs())
    store.manifest["gateway"] = run_gateway(summaries)  # saved by finish
    try:
        store.finish(status)
    except StorageError as exc:
        raise stopped_by_disk(exc, store, args) from None
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


def _run_status(summaries: Sequence[Mapping[str, Any]], interrupted: bool,
                undone: Sequence[str]) -> str:
    """interrupted, else failed (a job of this apply failed), else partial (jobs of the run's
    record are still to run: a narrower --resume), else ok."""
    if interrupted or any(s["status"] == "interrupted" for s in summaries):
        return "interrupted"
    if any(s["status"] == "failed" for s in summaries):
        return "failed"
    return "partial" if undone else "ok"
