"""A metric over time per job, read from the results index (results/index.sqlite, or
PostgreSQL)."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner.errors import InputError, InventoryError
from runner.plan.patterns import resolve
from runner.report.compare import Metric, worsening
from runner.results.capacityjobs import CAPACITY_SLUG, capacity_jobs
from runner.results.index import INDEX_FILE, IndexReader, is_postgres, read_index
from runner.results.jobfiles import JOBS_DIR
from runner.run.validity import UNKNOWN, stored_verdict

BARS = "▁▂▃▄▅▆▇█"
@dataclass(frozen=True)
class Point:
    """One run's value of the metric for one job."""

    run_id: str
    plan: str
    started_at: str | None
    status: str
    value: float
    validity: str = UNKNOWN  # valid, degraded, invalid; unknown when stored before verdicts

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "plan": self.plan, "started_at": self.started_at,
                "value": self.value, "status": self.status, "validity": self.validity}


@dataclass(frozen=True)
class Series:
    """A job's values over time, oldest first; the job is its id (benchmark/model/point)."""

    job_id: str
    benchmark: str | None
    model: str | None
    params: Any  # of the newest point
    points: tuple[Point, ...]

    @property
    def values(self) -> list[float]:
        return [p.value for p in self.points]

    def change(self, metric: Metric) -> float | None:
        """last vs first: relative, or absolute for absolute metrics (error_rate)."""
        first, last = self.values[0], self.values[-1]
        if metric.absolute:
            return last - first
        return (last - first) / first if first else None

    def to_json(self, metric: Metric) -> dict[str, Any]:
        values = self.values
        return {"job_id": self.job_id, "benchmark": self.benchmark, "model": self.model,
                "params": self.params, "first": values[0], "last": values[-1],
                "min": min(values), "max": max(values), "change": self.change(metric),
                "worsening": worsening(metric, values[0], values[-1]),
                "points": [p.to_json() for p in self.points]}


def load_history(
    results_dir: str, metric: Metric, *, plan: str | None = None, benchmark: str | None = None,
    model: str | None = None, last: int = 20, index: str | None = None,
) -> list[Series]:
    """The metric per job over the last `last` runs that have it, sorted by job id. `index`
    is where the results index is (results.index.choose_index), else
    results_dir/index.sqlite; each point's validity is read from results_dir's run files."""
    if last < 1:
        raise InputError(f"--last must be at least 1, not {last}")
    location = index or os.path.join(results_dir, INDEX_FILE)
    if not is_postgres(location) and not os.path.isfile(location):
        raise InputError(f"no runs are stored yet: {location} does not exist; run `runner "
                         "apply PLAN` first, or point --results at the folder that holds the runs")
    with read_index(location) as reader:
        _check_name(reader, "plan", plan)
        _check_name(reader, "benchmark", benchmark)
        models = _models(reader, model)
        rows = reader.history_rows(metric.index_name, plan, benchmark)
    rows = [row for row in rows if models is None or row[7] in models]
    runs = list(dict.fromkeys(row[0] for row in rows))[-last:]
    return _series([(*row[:9], _validity(results_dir, row[9], row[10]))
                    for row in rows if row[0] in set(runs)])


def _validity(results_dir: str, run_dir: str, slug: str) -> str:
    """The stored job's verdict, read from its summary file (the index holds numbers only), or
    for a capacity from its record in the run's manifest (degraded when the search was cut
    short); unknown when the job was stored before verdicts or its file is gone."""
    if slug.startswith(CAPACITY_SLUG):
        return _capacity_validity(os.path.join(results_dir, run_dir, "manifest.json"), slug)
    path = os.path.join(results_dir, run_dir, JOBS_DIR, f"{slug}.json")
    try:
        with open(path, encoding="utf-8") as fh:
            summary = json.load(fh)
    except (OSError, ValueError):
        return UNKNOWN
    return (stored_verdict(summary) or UNKNOWN) if isinstance(summary, dict) else UNKNOWN


def _capacity_validity(manifest_path: str, slug: str) -> str:
    try:
        with open(manifest_path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        return UNKNOWN
    found = [j for j in capacity_jobs(manifest if isinstance(manifest, dict) else {})
             if j["slug"] == slug]
    return (stored_verdict(found[0]) or UNKNOWN) if found else UNKNOWN


def sparkline(values: Sequence[float]) -> str:
    """One bar per value, scaled between the values' min and max (flat: mid-height bars)."""
    low, high = min(values, default=0.0), max(values, default=0.0)
    if high == low:
        return BARS[3] * len(values)
    top = len(BARS) - 1
    return "".join(BARS[round((v - low) / (high - low) * top)] for v in values)


def _series(rows: Sequence[tuple[Any, ...]]) -> list[Series]:
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    units: dict[str, set[Any]] = {}
    for row in rows:
        units.setdefault(row[5], set()).add(_unit(row[8]))
    for row in rows:  # a search over another parameter (req/s vs streams): a series of its own
        many = len(units[row[5]]) > 1
        grouped.setdefault(f"{row[5]} ({_unit(row[8])})" if many else row[5], []).append(row)
    return [Series(job_id, group[-1][6], group[-1][7], _params(group[-1][8]),
                   tuple(Point(row[0], row[1], row[2], row[3], row[4], row[9])
                         for row in group))
            for job_id, group in sorted(grouped.items(), key=lambda item: job_order(item[0]))]


_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")


def job_order(job_id: str) -> tuple[tuple[int, float, str], ...]:
    """A sort key that reads numbers as numbers: `concurrency=4` before `concurrency=16`,
    `Qwen3-8B` before `Qwen3-30B`; text compares as text."""
    parts = _NUMBER.split(job_id)
    return tuple((0, float(part), "") if i % 2 else (1, 0.0, part)
                 for i, part in enumerate(parts))


def _unit(text: str | None) -> Any:
    """A capacity row's unit (its params' `unit`: req/s or streams); None for other jobs."""
    params = _params(text)
    return params.get("unit") if isinstance(params, dict) else None


def _params(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _check_name(reader: IndexReader, what: str, name: str | None) -> None:
    if name is None:
        return
    known = sorted(reader.names(what))
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=3)
    listed = ", ".join(known) or "none"
    hint = f"did you mean {' or '.join(close)}?" if close else f"known: {listed}"
    raise InputError(f"no {what} '{name}' in the results index; {hint}")


def _models(reader: IndexReader, pattern: str | None) -> set[str] | None:
    if pattern is None:
        return None
    ids = [name for name in reader.names("model") if name]
    selection = resolve(pattern, sorted(ids))
    if not selection.models:
        why = "; ".join(selection.warnings()) or "the terms exclude every model"
        raise InventoryError(f"--model {pattern} matches no model in the results index: {why}")
    return set(selection.models)
