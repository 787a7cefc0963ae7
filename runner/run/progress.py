"""What `runner apply` shows while it runs (CLI layer: the only non-command module that prints).

On a terminal a live status line; in CI or when piped, one plain line per job start and end."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from runner.load.records import RequestRecord
from runner.printable import printable, printable_lines
from runner.run.executor import JobSpec
from runner.run.recap import job_line, number
from runner.run.repetitions import repeat_count


class Plain:
    """One line when each job starts and ends."""

    def __init__(self, total: int, out: TextIO, quiet: bool = False,
                 verbose: bool = False) -> None:
        self.total, self.out, self.quiet, self.verbose = total, out, quiet, verbose
        self.done = 0

    def note(self, text: str) -> None:
        """A line of progress; its untrusted parts were made printable, and so is the rest."""
        if not self.quiet:
            self.write(printable_lines(text) + "\n")

    def write(self, text: str) -> None:
        """Write and flush; a reader that went away (a cancelled CI job's log) silences the
        progress, never the benchmark."""
        try:
            self.out.write(text)
            self.out.flush()
        except OSError:  # BrokenPipeError among them
            self.quiet = True

    def job_started(self, spec: JobSpec, attempt: int) -> None:
        retry = f" (attempt {attempt})" if attempt > 1 else ""
        self.note(f"[{self.done + 1}/{self.total}] start {printable(spec.job.id)}{retry}")

    def request_done(self, spec: JobSpec, record: RequestRecord) -> None:
        return None

    def job_finished(self, spec: JobSpec, summary: Mapping[str, Any]) -> None:
        self.done += 1
        self.note(f"[{self.done}/{self.total}] {job_line(summary)}")
        if self.verbose:
            for line in details(summary):
                self.note(f"    {line}")


def details(summary: Mapping[str, Any]) -> list[str]:
    """-v: the error breakdown, SLO checks and client health behind a job's line."""
    metrics = summary.get("metrics") or {}
    lines = []
    if metrics.get("errors"):
        lines.append("errors: " + ", ".join(f"{k}={v}" for k, v in metrics["errors"].items()))
    for check in (metrics.get("slo") or {}).get("checks", []):
        stat = f" {check['stat']}" if check.get("stat") else ""
        verdict = "ok" if check["passed"] else "MISSED"
        if check.get("value") is None:
            verdict = "NO DATA"  # not a pass: nothing showed the bound held
        shown = "no data" if check.get("value") is None else number(check["value"])
        lines.append(f"slo {check['metric']}{stat}: {shown} vs {check['limit']} {verdict}")
    client = metrics.get("client") or {}
    if client.get("client_bound"):
        lines.append(f"client_bound: {client.get('reason')}")
    return lines


class Live(Plain):
    """A status line rewritten in place: jobs done/total, the running job's requests,
    tokens/s and errors."""

    def __init__(self, total: int, out: TextIO, verbose: bool = False) -> None:
        super().__init__(total, out, verbose=verbose)
        self.started = 0.0
        self.requests = self.failed = self.tokens = 0
        self.shown = 0.0
        self.goal = 0

    def job_started(self, spec: JobSpec, attempt: int) -> None:
        self.started = time.monotonic()
        self.requests = self.failed = self.tokens = 0
        # a repeated job (load.repeat) sends its requests once per repetition
        self.goal = int(spec.job.params.get("requests") or 0) * repeat_count(spec.job.params)
        self._show(spec, force=True)

    def request_done(self, spec: JobSpec, record: RequestRecord) -> None:
        if record.warmup:
            return
        self.requests += 1
        self.failed += 0 if record.ok else 1
        self.tokens += record.output_tokens or 0
        self._show(spec)

    def job_finished(self, spec: JobSpec, summary: Mapping[str, Any]) -> None:
        if not self.quiet:
            self.write("\r\x1b[2K")
        super().job_finished(spec, summary)

    def _show(self, spec: JobSpec, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and now - self.shown < 0.1):
            return
        self.shown = now
        rate = self.tokens / max(now - self.started, 1e-9)
        goal = f"/{self.goal}" if self.goal else ""
        job = printable(spec.job.id)
        text = (f"[{self.done + 1}/{self.total}] {job}  {self.requests}{goal} req  "
                f"{rate:,.0f} tok/s  {self.failed} errors")
        try:
            columns = os.get_terminal_size(self.out.fileno()).columns or 80  # 0: size unknown
        except OSError:  # the terminal went away
            columns = 80
        width = max(columns - 1, 20)
        self.write("\r\x1b[2K" + text[:width])


def reporter_for(args: argparse.Namespace, total: int, out: TextIO | None = None) -> Plain:
    """Live on a terminal (unless CI or --quiet), plain lines otherwise."""
    stream = out or sys.stderr
    if args.quiet:
        return Plain(total, stream, quiet=True)
    if stream.isatty() and os.environ.get("CI", "").lower() not in ("true", "1"):
        return Live(total, stream, verbose=args.verbose)
    return Plain(total, stream, verbose=args.verbose)
