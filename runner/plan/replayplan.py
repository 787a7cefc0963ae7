"""A plan's trace replays (issue 14 §5), checked at load time: `workload.trace` and
`load.replay` come together, and each trace file reads as its format says, so `validate`, `plan`
and `apply` refuse a bad trace line (file:line, the field) before anything is sent."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from runner.errors import InputError, Problem
from runner.load.trace import load_trace
from runner.plan.openloop import _matrix_keys
from runner.plan.rules import replay_unpaired
from runner.yamlfile import Document, Path


def replay_problems(doc: Document, merged: Sequence[Any], plan_path: str) -> list[Problem]:
    """For each benchmark (merged over the defaults): a trace without replay or a replay
    without a trace (neither set by the matrix), and the problems of its trace files."""
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
        if isinstance(workload.get("trace"), str) and "trace_format" not in axes:
            problems += _file_problems(doc, i, workload, plan_path)
    return problems


def _file_problems(doc: Document, i: int, workload: Mapping[str, Any],
                   plan_path: str) -> list[Problem]:
    """The trace's first problem (its own file:line), or a missing file at the plan's key."""
    params = {k: workload[k] for k in ("trace", "trace_format", "endpoint") if k in workload}
    try:
        load_trace(params, os.path.dirname(plan_path))
    except InputError as exc:
        at = _where(doc, i, ("workload", "trace"))
        return [p if p.where.line else Problem(f"{p.where.file}: {p.message}", at)
                for p in exc.problems]
    return []


def _section(bench: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    found = bench.get(name)
    return found if isinstance(found, Mapping) else {}


def _where(doc: Document, i: int, tail: Path) -> Any:
    """The benchmark's own key, else the defaults' one."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    benches = data.get("benchmarks")
    bench = benches[i] if isinstance(benches, list) and i < len(benches) else {}
    section = bench.get(tail[0]) if isinstance(bench, Mapping) else None
    own = isinstance(section, Mapping) and tail[1] in section
    return doc.where(("benchmarks", i, *tail) if own else ("defaults", *tail))
