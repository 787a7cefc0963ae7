"""The open-loop modifiers of a plan's load (arrival, burstiness, max_concurrency) where they
would shape nothing: beside a closed-loop load, a concurrency search or a sweep (whose rate jobs
are constant), and burstiness without gamma arrivals. Checked on each benchmark merged over the
plan's defaults, at the place the key is written, so `validate` refuses what a lock (see
rules.param_problems) would refuse and what a run would silently ignore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.errors import Problem
from runner.plan.rules import LOAD_MODES
from runner.yamlfile import Document, Path

MODIFIERS = LOAD_MODES[1][1:]  # arrival, max_concurrency, burstiness: they modify rate
CLOSED = "closed loop (concurrency)"


def open_loop_problems(doc: Document, merged: Sequence[Any]) -> list[Problem]:
    """For each benchmark (merged over the defaults): each open-loop modifier in a load that
    has no rate to modify (and no matrix key `rate` to give it one), and burstiness whose
    arrival is not gamma (unless the matrix sets arrival)."""
    problems: list[Problem] = []
    for i, bench in enumerate(merged):
        load = bench.get("load") if isinstance(bench, Mapping) else None
        if not isinstance(load, Mapping):
            continue
        matrix = _matrix_keys(bench.get("matrix"))
        closed = _closed_loop(load)
        for key in MODIFIERS:
            if key not in load:
                continue
            at = _where(doc, i, key)
            if closed and "rate" not in matrix:
                instead = ", or use load.rate in place of concurrency" \
                    if closed == CLOSED else ""
                problems.append(Problem(f"{key} shapes open-loop (rate) jobs, and this load "
                                        f"is {closed}: remove {key}{instead}", at))
            elif key == "burstiness" and load.get("arrival") != "gamma" \
                    and "arrival" not in matrix:
                problems.append(Problem("burstiness shapes gamma arrivals only: set arrival: "
                                        "gamma beside it, or remove burstiness", at))
    return problems


def _closed_loop(load: Mapping[str, Any]) -> str | None:
    """How a load without rate is run, in words; None when it is open loop (or unsaid)."""
    search, sweep = load.get("search"), load.get("sweep")
    if isinstance(sweep, Mapping):
        return "a sweep (its rate jobs run at constant rates)"
    if isinstance(search, Mapping):
        return "a concurrency search" if search.get("over") == "concurrency" else None
    if "rate" in load:
        return None
    return CLOSED


def _matrix_keys(matrix: Any) -> set[str]:
    """Every parameter a matrix may set: its keys and those of its include entries."""
    if not isinstance(matrix, Mapping):
        return set()
    keys = {k for k in matrix if k not in ("include", "exclude")}
    include = matrix.get("include")
    for entry in include if isinstance(include, list) else []:
        keys |= set(entry) if isinstance(entry, Mapping) else set()
    return keys


def _where(doc: Document, i: int, key: str) -> Any:
    own: Path = ("benchmarks", i, "load", key)
    data = doc.data if isinstance(doc.data, Mapping) else {}
    benches = data.get("benchmarks")
    bench = benches[i] if isinstance(benches, list) and i < len(benches) else {}
    load = bench.get("load") if isinstance(bench, Mapping) else None
    return doc.where(own if isinstance(load, Mapping) and key in load
                     else ("defaults", "load", key))
