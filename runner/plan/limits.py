"""Whether a job's lengths fit what the inventory says its model takes (pure).

Once a 4,000-token prompt with max_tokens 200 and ignore_eos went to a model of 4,096 tokens:
the engine returned 84 tokens (finish_reason length), the job was ok, and `runner plan` had
said nothing although the inventory knew the model's max_input_tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from runner.inventory.listing import Inventory, Model
from runner.plan.expand import Job
from runner.plan.selection import Selected

Longest = Callable[[Mapping[str, Any]], "tuple[str, dict[str, int]] | None"]


def model_limits(params: Mapping[str, Any], model: Model | None,
                 longest_of: Longest | None = None) -> dict[str, Any]:
    """A job's `model_limits` (schemas/result.schema.json): the model's max_input_tokens and
    max_output_tokens (tokens, None when the inventory does not say) and whether the job's
    lengths exceed them, with the figures in `detail`. The input limit is taken as the
    model's context, which holds the prompt and the answer (vLLM's max_model_len): exceeded
    when input_tokens + max_tokens is above it; dataset and template prompts have no known
    length, so only max_tokens is held against it then. A trace is held against it by its
    longest request: `longest_of(params)` gives its place and lengths (None: no trace; see
    runner.load.traceplan.longest_request)."""
    longest = longest_of(params) if longest_of is not None else None
    if longest is not None:
        params = {**params, **longest[1]}
    max_in = model.max_input_tokens if model is not None else None
    max_out = model.max_output_tokens if model is not None else None
    # vLLM's /v1/models gives max_model_len, the context itself, when nothing gives an input limit.
    name = "max_input_tokens"
    if max_in is None and model is not None and model.max_model_len is not None:
        max_in, name = model.max_model_len, "max_model_len"
    problems = [*_input_problem(params, max_in, name), *_output_problem(params, max_out)]
    problems = [f"{longest[0]}: {p}" for p in problems] if longest else problems
    return {"max_input_tokens": max_in, "max_output_tokens": max_out,
            "exceeded": bool(problems), "detail": "; ".join(problems) or None}


def _input_problem(params: Mapping[str, Any], max_in: int | None, name: str) -> list[str]:
    out, given = int(params.get("max_tokens") or 0), params.get("input_tokens")
    if max_in is None:
        return []
    if given is None:
        return [f"max_tokens {out} > {name} {max_in}"] if out > max_in else []
    prefix = params.get("prefix")  # a shared prefix comes before input_tokens (issue 14)
    shared = int(prefix["tokens"]) if isinstance(prefix, Mapping) else 0
    need = int(given) + shared + out
    terms = f"input_tokens {given}" + (f" + prefix.tokens {shared}" if shared else "")
    return [f"{terms} + max_tokens {out} = {need} > {name} {max_in}"] if need > max_in else []


def _output_problem(params: Mapping[str, Any], max_out: int | None) -> list[str]:
    out = int(params.get("max_tokens") or 0)
    return [f"max_tokens {out} > max_output_tokens {max_out}"] \
        if max_out is not None and out > max_out else []


def limit_warning(job: Job, limits: Mapping[str, Any] | None) -> str | None:
    """One line naming the job, the model, the figures and what to do; None when they fit
    (or `limits` is None: unknown)."""
    if not limits or not limits["exceeded"]:
        return None
    return (f"job {job.id}: model {job.model} takes less than asked ({limits['detail']}, as "
            "the inventory says): the server will cut answers short or refuse them; lower "
            f"input_tokens or max_tokens, or leave the model out with !{job.model}")


def with_limit_warnings(chosen: Iterable[Selected], inv: Inventory,
                        longest_of: Longest | None = None) -> list[Selected]:
    """`chosen` with a warning for each job whose lengths exceed its model's limits (a trace's
    longest request from `longest_of`, see model_limits)."""
    models = {m.id: m for m in inv.models}
    out = []
    for s in chosen:
        lines = [limit_warning(job, model_limits(job.params, models.get(job.model), longest_of))
                 for job in s.jobs]
        out.append(replace(s, warnings=(*s.warnings, *(w for w in lines if w))))
    return out
