"""The open-loop modifiers of a plan's load (arrival, burstiness, max_concurrency) where they
would shape nothing: beside a closed-loop load, a concurrency search or a sweep (whose rate jobs
are constant), and burstiness without gamma arrivals. Checked on each benchmark merged over the
plan's defaults, at the place the key is written, so `validate` refuses what a lock (see
rules.param_problems) would refuse and what a run would silently ignore. Also a benchmark's own
repeat_pause_s without repeats, and its own saturation watch on a load with no rate."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from runner import defaults
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
            if closed and not {"rate", "replay"} & matrix:
                instead = ", or use load.rate in place of concurrency" \
                    if closed == CLOSED else ""
                problems.append(Problem(f"{key} shapes open-loop (rate) jobs, and this load "
                                        f"is {closed}: remove {key}{instead}", at))
            elif key == "burstiness" and load.get("arrival") != "gamma" \
                    and "arrival" not in matrix:
                problems.append(Problem("burstiness shapes gamma arrivals only: set arrival: "
                                        "gamma beside it, or remove burstiness", at))
        problems += _idle_settings(doc, i, load, matrix, closed) + _ramp_problems(
            doc, i, load, matrix)
    return problems


def _ramp_problems(doc: Document, i: int, load: Mapping[str, Any],
                   matrix: set[str]) -> list[Problem]:
    """A ramp_up the job ends before it reaches its target: not shorter than duration_s, or
    (open loop at a fixed rate, or a rate search's largest trial) sending every request of
    the job while it ramps (its SLO would hold for a load the server never got)."""
    ramp = load.get("ramp_up")
    if not isinstance(ramp, Mapping) or not _positive(ramp.get("duration_s")) \
            or matrix & {"ramp_up", "duration_s", "requests", "rate"}:
        return []
    ramp_s = float(ramp["duration_s"])
    at = _where(doc, i, "ramp_up")
    duration, requests = load.get("duration_s"), load.get("requests")
    search = load.get("search")  # a rate search's largest trial ramps longest
    rate = search.get("to") if isinstance(search, Mapping) and search.get("over") == "rate" \
        else load.get("rate")
    if isinstance(duration, int | float) and _positive(duration) and ramp_s >= duration:
        return [Problem(f"ramp_up.duration_s ({ramp_s:g} s) is not below duration_s "
                        f"({duration:g} s): the job ends before its load reaches the target; "
                        "shorten the ramp or lengthen duration_s", at)]
    if not isinstance(rate, int | float) or not isinstance(requests, int) \
            or not _positive(rate) or duration is not None:
        return []
    sent = ramp_s * mean_ramp_rate(ramp, float(rate))
    if sent < requests:
        return []
    trial = "the search's trial at search.to: " if isinstance(search, Mapping) else ""
    return [Problem(f"{trial}ramp_up sends about {sent:.0f} requests over its {ramp_s:g} s, and "
                    f"the job stops after {requests}: its rate never reaches {rate:g}/s; raise "
                    "load.requests or shorten the ramp", at)]


def mean_ramp_rate(ramp: Mapping[str, Any], target: float) -> float:
    """The ramp's mean arrival rate over its duration (req/s): (start + target) / 2 linear,
    (target - start) / ln(target / start) exponential (the curves of
    runner.load.arrivals.ramp_rate, from `start` or a tenth of the target)."""
    given = ramp.get("start")
    start = min(float(given) if given else target * defaults.RAMP_START_FRACTION, target)
    if start >= target:
        return target
    if ramp.get("shape", "linear") == "exponential":
        return (target - start) / math.log(target / start)
    return (start + target) / 2


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _idle_settings(doc: Document, i: int, load: Mapping[str, Any], matrix: set[str],
                   closed: str | None) -> list[Problem]:
    """Settings a benchmark writes in its own load that would do nothing there: a pause
    between repetitions of a job that runs once, and a saturation watch on a load that has
    no target rate to fall short of. (In `defaults` they may serve other benchmarks.)"""
    own = _own_load(doc, i)
    found = []
    repeat = load.get("repeat")
    if "repeat_pause_s" in own and (repeat is None or repeat == 1) and "repeat" not in matrix:
        found.append(Problem("repeat_pause_s is the pause between repetitions, and this job "
                             "runs once: set load.repeat above 1, or remove repeat_pause_s",
                             doc.where(("benchmarks", i, "load", "repeat_pause_s"))))
    stop = own.get("early_stop")
    if isinstance(stop, Mapping) and stop.get("saturation") is True and closed \
            and "rate" not in matrix:
        found.append(Problem(f"early_stop.saturation watches open-loop (rate) jobs, and this "
                             f"load is {closed}: remove saturation",
                             doc.where(("benchmarks", i, "load", "early_stop", "saturation"))))
    return found


def _own_load(doc: Document, i: int) -> Mapping[str, Any]:
    data = doc.data if isinstance(doc.data, Mapping) else {}
    benches = data.get("benchmarks")
    bench = benches[i] if isinstance(benches, list) and i < len(benches) else {}
    load = bench.get("load") if isinstance(bench, Mapping) else None
    return load if isinstance(load, Mapping) else {}


def _closed_loop(load: Mapping[str, Any]) -> str | None:
    """How a load without rate is run, in words; None when it is open loop (or unsaid)."""
    search, sweep = load.get("search"), load.get("sweep")
    if isinstance(sweep, Mapping):
        return "a sweep (its rate jobs run at constant rates)"
    if isinstance(search, Mapping):
        return "a concurrency search" if search.get("over") == "concurrency" else None
    if "rate" in load or "replay" in load:  # a replay is an open loop too (max_concurrency)
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
    return doc.where(own if key in _own_load(doc, i) else ("defaults", "load", key))
