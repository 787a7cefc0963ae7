"""A plan's trace replays (issue 14 §5), checked at load time: `workload.trace` and
`load.replay` come together, and each trace file exists (its lines are read by
runner.load.traceplan, which `validate`, `plan` and `apply` call before anything is sent)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from runner import defaults
from runner.errors import Problem
from runner.inputfile import input_problem
from runner.plan.openloop import _matrix_keys
from runner.plan.rules import replay_unpaired
from runner.yamlfile import Document, Path


def replay_problems(doc: Document, merged: Sequence[Any], plan_path: str) -> list[Problem]:
    """For each benchmark (merged over the defaults): a trace without replay, a replay or a
    trace_format without a trace (neither set by the matrix), and a trace file that is missing
    or not a regular file."""
    problems: list[Problem] = []
    for i, bench in enumerate(merged):
        if not isinstance(bench, Mapping):
            continue
        workload, load = _section(bench, "workload"), _section(bench, "load")
        axes = _matrix_keys(bench.get("matrix"))
        trace, replay = "trace" in workload or "trace" in axes, "replay" in load or \
            "replay" in axes
        if trace and not replay and "trace" in workload:
            problems.append(Problem(str(replay_unpaired({"trace": True})),
                                    _where(doc, i, ("workload", "trace"))))
        if replay and not trace and "replay" in load:
            problems.append(Problem(str(replay_unpaired({"replay": {}})),
                                    _where(doc, i, ("load", "replay"))))
        if "trace_format" in workload and not trace:
            problems.append(Problem("trace_format says how workload.trace is written: set "
                                    "trace beside it, or remove trace_format",
                                    _where(doc, i, ("workload", "trace_format"))))
        if _readable(workload.get("trace")):
            problems += _file_problems(doc, i, str(workload["trace"]), plan_path)
    return problems


def _file_problems(doc: Document, i: int, trace: str, plan_path: str) -> list[Problem]:
    """A missing trace file, or one runner does not read (not a regular file, too large)."""
    full = os.path.join(os.path.dirname(plan_path), trace)
    try:
        problem = input_problem(full, f"the trace {full}", defaults.MAX_DATASET_BYTES)
    except OSError:
        problem = f"trace file not found: {full}"
    return [Problem(problem, _where(doc, i, ("workload", "trace")))] if problem else []


def _section(bench: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    found = bench.get(name)
    return found if isinstance(found, Mapping) else {}


def _readable(path: Any) -> bool:
    """A path the schema takes (a non-empty string without control characters): else the
    schema's problem is the one to show."""
    return isinstance(path, str) and bool(path) and not any(
        ord(c) < 32 or ord(c) == 127 for c in path)


def _where(doc: Document, i: int, tail: Path) -> Any:
    """The benchmark's own key, else the defaults' one."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    benches = data.get("benchmarks")
    bench = benches[i] if isinstance(benches, list) and i < len(benches) else {}
    section = bench.get(tail[0]) if isinstance(bench, Mapping) else None
    own = isinstance(section, Mapping) and tail[1] in section
    return doc.where(("benchmarks", i, *tail) if own else ("defaults", *tail))

