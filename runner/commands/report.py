"""`runner report RUN`: render a stored run as HTML, Markdown, CSV or JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from runner.atomicfile import write_atomic
from runner.errors import EXIT_OK, InputError
from runner.report.render import render_report
from runner.results.runs import resolve_run


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    run_dir = resolve_run(args.run, args.results, args.plan)
    text = render_report(run_dir, args.format)
    if not args.output:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return EXIT_OK
    try:
        write_atomic(args.output, text)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"{args.output}: cannot write the report ({reason})") from None
    print(f"wrote {args.format} report of {run_dir} to {args.output}", file=sys.stderr)
    return EXIT_OK
