"""What the plan view and checks say of a replay's trace (issue 14 §5): the trace's problems
for every job (file:line, the field), the replay in words, and its longest request for the
model-limit check. Read by the CLI before anything is sent; the plan stage stays pure."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runner.errors import InputError, Problem
from runner.load.replay import replay_speed
from runner.load.trace import Trace, load_trace
from runner.plan.expand import expand_matrix
from runner.plan.planfile import Plan, complete_params
from runner.plan.totals import number_text
from runner.plural import counted


def trace_problems(plan: Plan) -> list[Problem]:
    """Each distinct trace of the plan's jobs read as its job reads it: its first problem at
    its file:line (a broken matrix has no jobs here: its own check reports it)."""
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    for bench in plan.benchmarks:
        try:
            jobs = [complete_params(bench.params, p) for p in expand_matrix(bench.matrix)]
        except (InputError, ValueError):
            continue
        for params in jobs:
            key = tuple(params.get(k) for k in ("trace", "trace_format", "endpoint"))
            if params.get("trace") and key not in seen:
                seen.add(key)
                try:
                    load_trace(params, os.path.dirname(plan.path))
                except InputError as exc:
                    problems += exc.problems
    return problems


def describe_replay(params: Mapping[str, Any], plan_dir: str) -> str:
    """A replay job's load in words, from its trace: `replay t.jsonl (mooncake) at speed 2:
    3 requests over 0.15 s (0.3 s recorded), 1,536 input tokens, at most 24 output tokens`.
    Lines given as text count no input tokens (said so); lines without an output length
    count the job's max_tokens."""
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


def replay_plan(params: Mapping[str, Any], plan_dir: str) -> dict[str, Any] | None:
    """A replay job's trace in figures, for `plan --json` (each job's `replay`): `trace`,
    `format`, `speed`, `requests` (its lines), `recorded_s` (first to last send, as recorded),
    `duration_s` (the same at the speed), `sending_s` (how long the job sends: to its last
    line, or to the line `requests` stops at, at most `duration_s`), `input_tokens_mean` (of
    the lines that give a length; None when none does), `text_prompts` (lines given as text),
    `output_tokens_mean` (each line's output length, else the job's max_tokens: a maximum;
    None when neither says). None for a job that is not a replay."""
    trace = load_trace(params, plan_dir) if params.get("replay") is not None else None
    if trace is None:
        return None
    speed = replay_speed(params)
    lines = trace.requests
    sent = min(len(lines), int(params.get("requests") or len(lines)))
    sending = lines[sent - 1].offset_ms / 1000 / speed
    if params.get("duration_s") is not None:
        sending = min(sending, float(params["duration_s"]))
    given = [r.input_tokens for r in lines if r.input_tokens is not None]
    asked = params.get("max_tokens")
    outs = [n for r in lines if (n := r.output_tokens if r.output_tokens is not None
                                 else asked) is not None]
    return {"trace": params["trace"], "format": trace.format, "speed": speed,
            "requests": len(lines), "recorded_s": trace.duration_s,
            "duration_s": trace.duration_s / speed, "sending_s": sending,
            "input_tokens_mean": _mean(given), "text_prompts": len(lines) - len(given),
            "output_tokens_mean": _mean(outs)}


def replay_sending_s(plan_dir: str) -> Callable[[Mapping[str, Any]], float | None]:
    """For runner.plan.totals: a replay job's sending seconds (replay_plan `sending_s`)."""
    def seconds(params: Mapping[str, Any]) -> float | None:
        found = replay_plan(params, plan_dir)
        return None if found is None else float(found["sending_s"])
    return seconds


def _mean(values: Sequence[int]) -> float | None:
    return sum(values) / len(values) if values else None


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
