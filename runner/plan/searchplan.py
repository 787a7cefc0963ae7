"""A benchmark's capacity search (`load.search`) or sweep (`load.sweep`) in a plan: the checks
beyond its schema, and the job params that carry it (see runner.run.search and .sweep)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner import defaults
from runner.errors import Problem
from runner.plan.endpointrules import embeddings_slo
from runner.schema import load_schema
from runner.yamlfile import Document, Path

LOAD_KEYS = ("concurrency", "rate")  # what a search sets itself
UNITS = {"rate": "req/s", "concurrency": "streams"}
GROWTH = 2  # each growth trial doubles the last passing point, capped at `to`


@dataclass(frozen=True)
class Search:
    """`load.search` of a plan: over `rate` (req/s, open loop) or `concurrency` (streams,
    closed loop, integers), from `start` to `stop`; `precision` is relative: bisection ends
    when first fail - last pass <= precision x last pass (and, for concurrency, when they are
    neighbours); at most `max_jobs` trials."""

    over: str
    start: float
    stop: float
    precision: float
    max_jobs: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Search:
        """From the plan's or lock's (schema-checked) mapping {over, from, to, precision,
        max_jobs}; precision and max_jobs default (a lock written by hand may lack them)."""
        data = {**defaults.SEARCH, **data}
        return cls(data["over"], data["from"], data["to"], data["precision"], data["max_jobs"])

    @property
    def unit(self) -> str:
        return UNITS[self.over]

    def point(self, value: float) -> float | int:
        """`value` as the searched parameter takes it: an int for concurrency, else a float
        rounded to 6 significant digits (so a job id stays readable)."""
        if self.over == "concurrency":
            return int(value)
        return float(f"{value:.6g}")


def worst_case_trials(search: Search) -> int:
    """The most trials a search can run: growth steps to `to`, then bisection of the widest
    bracket (last pass, 2 x last pass) down to the precision; capped by max_jobs."""
    growth = 1 + max(0, math.ceil(math.log2(search.stop / search.start)))
    halvings = max(1, math.ceil(math.log2(1 / search.precision)))
    if search.over == "concurrency":
        halvings = min(halvings, max(1, math.ceil(math.log2(max(search.stop / 2, 1)))))
    return min(search.max_jobs, growth + halvings)



def trial_jobs(params: Mapping[str, Any]) -> int:
    """How many jobs a planned job runs: 1, a capacity search's worst-case trials, or a sweep's
    two measuring jobs and its rates."""
    sweep = params.get("sweep")
    if isinstance(sweep, Mapping):
        return 2 + int(sweep["rates"])
    found = params.get("search")
    return worst_case_trials(Search.from_json(found)) if isinstance(found, Mapping) else 1


def search_problems(doc: Document, merged: Sequence[Any]) -> list[Problem]:
    """For each benchmark (merged over the plan's defaults) with a load.search: `to` above
    `from`, whole numbers for a concurrency search, an `slo` to search for, and no matrix key
    that sets the load."""
    problems: list[Problem] = []
    for i, bench in enumerate(merged):
        problems += _matrix_problems(doc, i, bench) + _sweep_problems(doc, i, bench)
        search = _get(bench, "load", "search")
        if not isinstance(search, Mapping):
            continue
        own = isinstance(_get(doc.data, "benchmarks", i, "load", "search"), Mapping)
        at: Path = ("benchmarks", i, "load", "search") if own else ("defaults", "load", "search")
        whose = "" if own else f" (benchmark {bench.get('name')!r} takes it from defaults)"
        problems += search_bounds(doc, search, at, None) + [
            Problem(p.message + whose, p.where) for p in streams_problems(
                doc, search.get("to") if search.get("over") == "concurrency" else None,
                _requests(bench), (*at, "to"), "search.to")]
        if not embeddings_slo(bench):  # an embeddings search: its defaults' ttft_ms is none
            problems.append(Problem(
                f"a capacity search needs the benchmark's slo, the target it searches for{whose}"
                ": add e.g. slo: {ttft_ms: {p95: 500}} (an embeddings job: e2e_ms)",
                doc.where(at)))
    return list(dict.fromkeys(problems))  # a search in defaults: its bounds said once


def _sweep_problems(doc: Document, i: int, bench: Any) -> list[Problem]:
    """A sweep whose throughput job has more streams than the requests it sends."""
    sweep = _get(bench, "load", "sweep")
    if not isinstance(sweep, Mapping):
        return []
    own = isinstance(_get(doc.data, "benchmarks", i, "load", "sweep"), Mapping)
    at: Path = ("benchmarks", i, "load", "sweep") if own else ("defaults", "load", "sweep")
    streams = sweep.get("concurrency", defaults.SWEEP["concurrency"])
    whose = "" if own else f" (benchmark {bench.get('name')!r} takes it from defaults)"
    return [Problem(p.message + whose, p.where) for p in streams_problems(
        doc, streams, _requests(bench), (*at, "concurrency") if "concurrency" in sweep else at,
        "sweep.concurrency")]


def _matrix_problems(doc: Document, i: int, bench: Any) -> list[Problem]:
    """A matrix key that sets the load of a benchmark whose search or sweep sets it."""
    kind = next((k for k in ("search", "sweep") if isinstance(_get(bench, "load", k), Mapping)),
                None)
    matrix = _get(bench, "matrix")
    if kind is None or not isinstance(matrix, Mapping):
        return []
    what = "a capacity search" if kind == "search" else "a sweep"
    at: Path = ("benchmarks", i, "matrix")
    include = matrix.get("include")
    places: list[tuple[Path, Any]] = [(at, matrix)] + [
        ((*at, "include", j), entry) for j, entry in
        enumerate(include if isinstance(include, list) else []) if isinstance(entry, Mapping)]
    return [Problem(f"matrix key {key!r}: {what} sets the load itself; drop it from the matrix",
                    doc.where((*path, key), key=True))
            for path, entries in places for key in LOAD_KEYS if key in entries]


def search_bounds(doc: Document, search: Mapping[str, Any], at: Path,
                  requests: int | None = None) -> list[Problem]:
    """A search's (at `at`) `to` above `from`, and whole numbers of streams within
    load.concurrency's range for a concurrency search, and no more than the `requests` a
    trial sends (None: bounded by time only)."""
    start, stop = search.get("from"), search.get("to")
    if not _number(start) or not _number(stop):
        return []  # the schema says so
    assert isinstance(start, int | float) and isinstance(stop, int | float)
    problems = []
    if stop <= start:
        problems.append(Problem(f"search.to ({stop:g}) must be above search.from ({start:g})",
                                doc.where((*at, "to"))))
    if search.get("over") == "concurrency":
        most = load_schema("plan")["$defs"]["param_concurrency"]["maximum"]
        for key, value in (("from", start), ("to", stop)):
            if value != int(value):
                problems.append(Problem(
                    f"search.{key} must be a whole number of streams for a concurrency "
                    f"search, got {value:g}", doc.where((*at, key))))
            elif value > most:  # a trial's concurrency is a load.concurrency
                problems.append(Problem(
                    f"search.{key} ({value:.15g}) is above the most streams load.concurrency "
                    f"allows ({most:g}) for a concurrency search: lower it", doc.where((*at, key))))
        problems += streams_problems(doc, stop, requests, (*at, "to"), "search.to")
    return problems


def streams_problems(doc: Document, streams: Any, requests: int | None, at: Path,
                     what: str) -> list[Problem]:
    """A closed loop of `streams` (a concurrency search's `to`, a sweep's throughput job) that
    sends `requests` requests in all: above them, the streams are never all in flight, and the
    trial measures `requests` streams under the name of more (the search's capacity with it)."""
    if requests is None or not _number(streams) or streams <= requests:
        return []
    return [Problem(f"{what} ({streams:g} streams) is above the {requests} requests a job "
                    f"sends: no more than {requests} streams are ever in flight; raise "
                    f"load.requests to at least {streams:g} (several times it for a steady "
                    f"state), or lower {what}", doc.where(at))]


def _requests(bench: Any) -> int | None:
    """The fewest requests a job of the (merged) benchmark sends (its load's, the matrix's
    smallest, or the default when neither requests nor duration_s is given); None when only
    duration_s bounds it."""
    load, matrix = _get(bench, "load") or {}, _get(bench, "matrix") or {}
    if not isinstance(load, Mapping) or not isinstance(matrix, Mapping):
        return None
    listed = matrix.get("requests")
    counts = [v for v in ([load.get("requests")] + (listed if isinstance(listed, list) else []))
              if isinstance(v, int) and not isinstance(v, bool)]
    if counts:
        return min(counts)
    timed = "duration_s" in load or "duration_s" in matrix
    return None if timed or "requests" in matrix else defaults.REQUESTS


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sweep_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """A job's `sweep` with its defaults (a lock written by hand may lack concurrency)."""
    return {**defaults.SWEEP, **params["sweep"]}


def search_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` with its search completed by the defaults and the searched parameter set to
    `from` (a job planned with a search runs its first trial there); a sweep's with
    concurrency 1."""
    sweep = params.get("sweep")
    if isinstance(sweep, Mapping):  # its first job is the synchronous one
        rest = {k: v for k, v in params.items() if k not in LOAD_KEYS}
        return {**rest, "sweep": {**defaults.SWEEP, **sweep}, "concurrency": 1}
    found = params.get("search")
    if not isinstance(found, Mapping):
        return dict(params)
    search = {**defaults.SEARCH, **found}
    start = search["from"]
    value = int(start) if search["over"] == "concurrency" else float(start)
    rest = {k: v for k, v in params.items() if k not in LOAD_KEYS}
    return {**rest, "search": search, search["over"]: value}


def _get(data: Any, *path: str | int) -> Any:
    for part in path:
        if isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            data = data[part]
        elif isinstance(part, str) and isinstance(data, Mapping):
            data = data.get(part)
        else:
            return None
    return data
