"""A job's token accounting: where counts came from, tokens per chunk, lengths vs the plan's."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from operator import attrgetter
from typing import Any

from runner.load.prefixes import prefix_tokens
from runner.load.records import RequestRecord
from runner.load.replay import TracePrompts


@dataclass(frozen=True)
class Expectation:
    """What a job asked of the lengths: `max_tokens` (output tokens requested; None for a
    trace, whose lines may each ask their own), `fixed_output` (ignore_eos true, or min_tokens
    >= max_tokens, in extra_body: every answer should reach max_tokens), `input_tokens` (the
    synthetic prompt target; None for datasets, templates and traces);
    and `rate`: an open loop's arrival rate (requests/s), None for a closed loop.
    A trace job's `targets`: each trace line's fixed output length (the line's output length,
    else the plan's; None where it is not fixed), by line; its measured request i (after
    `warmups`) sends line i (cycled). Its `input_targets`: each line's input length (tokens;
    None for a line of text); an embeddings request sends `batch` lines, and its target is
    their sum."""

    max_tokens: int | None = None
    fixed_output: bool = False
    input_tokens: int | None = None
    rate: float | None = None
    targets: tuple[int | None, ...] | None = None
    warmups: int = 0
    input_targets: tuple[int | None, ...] | None = None
    batch: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, Any], prompts: Any = None) -> Expectation:
        """The expectation of a job's params (extra_body's max_tokens and
        max_completion_tokens override the plan's max_tokens, as they do in the request);
        `prompts`: its prompt source, whose trace (TracePrompts) gives each line's length."""
        extra = params.get("extra_body") or {}
        asked = extra.get("max_tokens", params.get("max_tokens"))
        asked = extra.get("max_completion_tokens", asked)
        max_tokens = asked if type(asked) is int and not params.get("trace") else None
        least = extra.get("min_tokens")
        fixed = extra.get("ignore_eos") is True or (
            type(least) is int and max_tokens is not None and least >= max_tokens)
        synthetic = not params.get("dataset") and not params.get("template")
        target = params.get("input_tokens") if synthetic else None
        target = target + prefix_tokens(params) if type(target) is int else target
        if type(target) is int and params.get("endpoint") == "embeddings":
            target *= int(params.get("batch_size") or 1)  # one request's prompt tokens: a batch
        rate = params.get("rate")
        found = cls(max_tokens, fixed, target if type(target) is int else None,
                    None if rate is None else float(rate))
        if params.get("trace") and isinstance(prompts, TracePrompts):
            targets = trace_targets(params, prompts)
            batch = int(params.get("batch_size") or 1) \
                if params.get("endpoint") == "embeddings" else 1
            found = replace(found, fixed_output=any(t is not None for t in targets),
                            targets=targets, warmups=int(params.get("warmup_requests") or 0),
                            input_targets=tuple(r.input_tokens for r in prompts.trace.requests),
                            batch=batch)
        return found


def trace_targets(params: Mapping[str, Any], prompts: TracePrompts) -> tuple[int | None, ...]:
    """Each trace line's fixed output length: what its request asks (extra_body's
    max_completion_tokens, else the line's output length, else extra_body's or the plan's
    max_tokens), when extra_body makes it fixed: ignore_eos true, or min_tokens at least that
    length; None for a line whose answer may stop earlier."""
    extra = params.get("extra_body") or {}
    plan = extra.get("max_tokens", params.get("max_tokens"))
    newer, least = extra.get("max_completion_tokens"), extra.get("min_tokens")
    found: list[int | None] = []
    for line in prompts.trace.requests:
        asked = newer if type(newer) is int else (
            line.output_tokens if line.output_tokens is not None else plan)
        fixed = extra.get("ignore_eos") is True or (type(least) is int and type(asked) is int
                                                    and least >= asked)
        found.append(asked if fixed and type(asked) is int else None)
    return tuple(found)


def token_metrics(ok: Sequence[RequestRecord], expect: Expectation | None,
                  distribution: Any) -> dict[str, Any]:
    """The summary keys of token accounting (schemas/result.schema.json) over ok records."""
    return {
        "output_tokens_source": sources(ok),
        "tokens_per_chunk": distribution(per_chunk(ok)),
        "lengths": lengths(ok, expect or Expectation()),
        "ttft_first_chunk_ms": distribution(
            [v for v in map(attrgetter("ttft_first_chunk_ms"), ok) if v is not None]),
        "itl_chunks_ms": distribution(list(chain.from_iterable(
            map(attrgetter("itl_chunks_ms"), ok)))),
    }


def sources(ok: Sequence[RequestRecord]) -> dict[str, int]:
    """Ok requests by the source of their output_tokens, and how many had usage below chunks
    (counted in chunks too: that is where their count came from)."""
    counts = Counter(r.output_tokens_source for r in ok)
    return {"usage": counts["usage"], "chunks": counts["chunks"],
            "usage_inconsistent": sum(r.usage_inconsistent for r in ok)}


def per_chunk(ok: Sequence[RequestRecord]) -> list[float]:
    """output_tokens / content_chunks of each streamed ok request counted by usage (a
    streamed request has ttft_first_chunk_ms)."""
    return [r.output_tokens / r.content_chunks for r in ok
            if r.output_tokens_source == "usage" and r.content_chunks
            and r.output_tokens is not None and r.ttft_first_chunk_ms is not None]


def lengths(ok: Sequence[RequestRecord], expect: Expectation) -> dict[str, Any]:
    """Achieved mean output and prompt tokens against max_tokens and the input target."""
    output = _mean([r.output_tokens for r in ok if r.output_tokens is not None])
    # A session's later turns hold the conversation so far: only turn 1 is the synthetic prompt.
    prompt = _mean([r.prompt_tokens for r in ok if r.prompt_tokens is not None
                    and (r.turn or 1) == 1])
    return {
        "output": {"requested": expect.max_tokens, "fixed": expect.fixed_output,
                   "achieved_mean": output, "ratio": _ratio(output, expect.max_tokens),
                   **_own_lengths(ok, expect)},
        "input": {"target": expect.input_tokens, "achieved_mean": prompt,
                  "ratio": _ratio(prompt, expect.input_tokens), **_own_inputs(ok, expect)},
    }


def _own_lengths(ok: Sequence[RequestRecord], expect: Expectation) -> dict[str, Any]:
    """A trace job's output against each request's own fixed length (Expectation.targets):
    `requested_mean`, the mean of those lengths, and `ratio`, Σ output / Σ length, over the ok
    requests with a fixed length and a known output; {} for a job without a trace."""
    if expect.targets is None:
        return {}
    lines = expect.targets
    pairs = [(r.output_tokens, own) for r in ok if r.output_tokens is not None
             and (own := lines[(r.index - expect.warmups) % len(lines)]) is not None]
    asked = sum(own for _, own in pairs)
    return {"requested_mean": asked / len(pairs) if pairs else None,
            "ratio": sum(out for out, _ in pairs) / asked if asked else None}


def _own_inputs(ok: Sequence[RequestRecord], expect: Expectation) -> dict[str, Any]:
    """A trace job's prompts against each request's own input length (Expectation.input_targets):
    `requested_mean`, the mean of those lengths (tokens), and `ratio`, Σ prompt_tokens / Σ
    length, over the ok requests whose lines all give a length and whose server counted the
    prompt; {} for a job without a trace."""
    if expect.input_targets is None:
        return {}
    pairs = [(r.prompt_tokens, own) for r in ok if r.prompt_tokens is not None
             and (own := _input_target(expect, r.index - expect.warmups)) is not None]
    asked = sum(own for _, own in pairs)
    return {"requested_mean": asked / len(pairs) if pairs else None,
            "ratio": sum(got for got, _ in pairs) / asked if asked else None}


def _input_target(expect: Expectation, request: int) -> int | None:
    """The input length (tokens) measured request `request` asked for: its line's, or the sum
    over an embeddings batch's lines; None when a line is text."""
    lines = expect.input_targets or ()
    first = request * expect.batch
    own = [lines[i % len(lines)] for i in range(first, first + expect.batch)] if lines else [None]
    return None if None in own else sum(int(n or 0) for n in own)


def _mean(values: Sequence[int]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _ratio(achieved: float | None, asked: int | None) -> float | None:
    return achieved / asked if achieved is not None and asked else None
