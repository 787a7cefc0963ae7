"""`runner report RUN`: render a stored run as HTML, Markdown, CSV or JSON.

HTML goes to stdout only when stdout is piped or `-o -` asks for it; on a terminal the HTML file
is written into the run directory and its path printed."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from runner.atomicfile import check_output, write_output
from runner.errors import EXIT_OK, cannot_write
from runner.printable import printable_lines
from runner.report.render import REPORT_FILES, render_report
from runner.results.runs import resolve_run

STDOUT = "-"


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    run_dir = resolve_run(args.run, args.results, args.plan)
    target = output_path(args.output, args.format, run_dir, sys.stdout.isatty())
    if target != STDOUT:  # refused before rendering, which reads every request of the run
        check_output(target, "the report")
    text = render_report(run_dir, args.format)
    if target == STDOUT:
        if args.format in ("md", "csv"):  # model ids and server messages, for a terminal or log
            text = printable_lines(text)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return EXIT_OK
    try:
        write_output(target, text)
    except OSError as exc:  # a full disk is exit 74, like every write that finds no space
        raise cannot_write(target, exc, "the report") from None
    # Asked for a file: a note on stderr. Chosen for the terminal: the path is the output.
    print(f"wrote {args.format} report of {run_dir} to {target}",
          file=sys.stderr if args.output else sys.stdout)
    return EXIT_OK


def output_path(output: str | None, fmt: str, run_dir: str, terminal: bool) -> str:
    """Where the report goes: `-o FILE`, stdout (`-`), or, for HTML on a terminal, the run's
    own report file (a page of markup is no use on a screen)."""
    if output:
        return output
    if fmt == "html" and terminal:
        return os.path.join(run_dir, dict(REPORT_FILES)["html"])
    return STDOUT
