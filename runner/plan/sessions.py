"""A plan's multi-turn sessions (`workload.session`, issue 14 §2) seen from the plan: what a
session job sends in all, how it reads in `plan`, and what a job's params may not combine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner import defaults
from runner.errors import Problem
from runner.plural import counted
from runner.yamlfile import Document

CHAT_ONLY = ("workload.session needs endpoint chat (a conversation is a list of chat "
             "messages): set endpoint: chat, or remove session")
NOT_A_TRACE = ("workload.session runs conversations of its own prompts, and a trace replays "
               "single requests at their recorded times: remove session, or give the "
               "conversations as workload.dataset")


def turns_of(params: Mapping[str, Any]) -> int:
    """Requests per measured unit of a job: a session's `turns`, 1 for a job without sessions."""
    session = params.get("session")
    return int(session["turns"]) if isinstance(session, Mapping) else 1


def think_time_s(params: Mapping[str, Any]) -> float:
    """Seconds between a turn's end and the next turn's send (0 when unset)."""
    session = params.get("session")
    value = session.get("think_time_s") if isinstance(session, Mapping) else None
    return float(value) if value is not None else defaults.SESSION_THINK_TIME_S


def user_tokens(params: Mapping[str, Any]) -> int:
    """Words of each synthetic user message after the first turn: session.user_tokens, else
    the job's input_tokens, else defaults.INPUT_TOKENS."""
    session = params.get("session")
    value = session.get("user_tokens") if isinstance(session, Mapping) else None
    return int(value or params.get("input_tokens") or defaults.INPUT_TOKENS)


def session_problem(params: Mapping[str, Any]) -> str | None:
    """Why a job's params cannot run sessions (None: they can, or have none): another endpoint
    than chat, or a trace (a replay)."""
    if not isinstance(params.get("session"), Mapping):
        return None
    if params.get("endpoint", "chat") != "chat":
        return CHAT_ONLY
    return NOT_A_TRACE if params.get("trace") or "replay" in params else None


def session_place_problems(doc: Document, merged: Sequence[Any]) -> list[Problem]:
    """Each benchmark (merged over the defaults) whose workload has a session on an endpoint
    other than chat, or beside a trace, at its session key (a matrix that sets the endpoint
    is checked per job, by session_problem, in complete_params)."""
    problems = []
    for i, bench in enumerate(merged):
        workload = bench.get("workload") if isinstance(bench, Mapping) else None
        matrix = bench.get("matrix") if isinstance(bench, Mapping) else None
        if isinstance(matrix, Mapping) and "endpoint" in matrix:
            continue
        if isinstance(workload, Mapping) and (problem := session_problem(workload)):
            where = doc.where(("benchmarks", i, "workload", "session"), key=True)
            problems.append(Problem(problem, where))
    return problems


def describe_requests(params: Mapping[str, Any]) -> str:
    """`20 requests`, or for sessions `5 sessions x 4 turns = 20 requests (think 1 s)`."""
    requests, turns = int(params["requests"]), turns_of(params)
    if turns == 1:
        return counted(requests, "request")
    think = think_time_s(params)
    return (f"{counted(requests, 'session')} x {turns} turns = "
            f"{counted(requests * turns, 'request')}" + (f" (think {think:g} s)" if think else ""))
