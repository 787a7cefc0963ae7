"""A plan's trace replays (issue 14 §5), checked at load time: `workload.trace` and
`load.replay` come together, and each trace file reads as its format says, so `validate`, `plan`
and `apply` refuse a bad trace line (file:line, the field) before anything is sent."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from runner.errors import InputError, Problem
from runner.load.replay import replay_speed
from runner.load.trace import FORMATS, Trace, load_trace
from runner.plan.openloop import _matrix_keys
from runner.plan.rules import replay_unpaired
from runner.plural import counted
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
        if _readable(workload.get("trace")) and "trace_format" not in axes and \
                workload.get("trace_format", FORMATS[0]) in FORMATS:
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


def describe_replay(params: Mapping[str, Any], plan_dir: str) -> str:
    """A replay job's load in words, from its trace: `replay t.jsonl (mooncake) at speed 2:
    3 requests over 0.15 s (0.3 s recorded), 1,536 input tokens, at most 24 output tokens`.
    Lines given as text count no input tokens (said so); lines without an output length
    count the job's max_tokens."""
    from runner.plan.selection import number_text  # selection loads plans: after them

    trace = load_trace(params, plan_dir)
    assert trace is not None  # a replay job has a trace (validated)
    speed = replay_speed(params)
    totals = trace_totals(trace, int(params.get("max_tokens") or 0))
    texts = sum(r.input_tokens is None for r in trace.requests)
    inputs = f"{totals['input_tokens']:,} input tokens" + (
        f" (+{counted(texts, 'text prompt')})" if texts else "")
    load = (f"replay {params['trace']} ({trace.format}) at speed {number_text(speed)}: "
            f"{counted(len(trace.requests), 'request')} over "
            f"{number_text(round(trace.duration_s / speed, 3))} s"
            + (f" ({number_text(round(trace.duration_s, 3))} s recorded)" if speed != 1 else "")
            + f", {inputs}, at most {totals['output_tokens']:,} output tokens")
    most = params.get("max_concurrency")
    return load + (f" (at most {most} in flight)" if most else "")


def trace_totals(trace: Trace, max_tokens: int) -> dict[str, int]:
    """Input tokens of the lines that give a length, and the most output tokens the trace can
    ask for (a line's output length, else `max_tokens`)."""
    return {"input_tokens": sum(r.input_tokens or 0 for r in trace.requests),
            "output_tokens": sum(r.output_tokens if r.output_tokens is not None else max_tokens
                                 for r in trace.requests)}


def longest_request(params: Mapping[str, Any],
                    plan_dir: str | None) -> tuple[str, dict[str, int]] | None:
    """A trace job's longest request (input + output tokens; a line without an output length
    counts the job's max_tokens) as (`trace line N`, its input_tokens and max_tokens), for the
    model-limit check (runner.plan.limits); None without a trace (or `plan_dir`)."""
    if plan_dir is None or not params.get("trace"):
        return None
    trace = load_trace(params, plan_dir)
    assert trace is not None
    asked = int(params.get("max_tokens") or 0)

    def output(r: Any) -> int:
        return int(r.output_tokens) if r.output_tokens is not None else asked

    best = max(trace.requests, key=lambda r: (r.input_tokens or 0) + output(r))
    lengths = {"max_tokens": output(best)}
    if best.input_tokens is not None:
        lengths["input_tokens"] = best.input_tokens
    return f"trace line {best.line}", lengths
