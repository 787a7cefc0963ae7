"""The results index's logical schema, shared by both backends (SQLite, PostgreSQL): its
version, its migrations' purpose, and the rows a run and its jobs become."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Tables (the same on both backends):
#   runs(run_id PK, plan, plan_path, plan_sha256, started_at, finished_at, status,
#        inventory_source, run_dir)     run_dir is relative to the results directory
#   jobs(run_id, job_id, slug, benchmark, model, params_json, status, started_at, finished_at,
#        PK(run_id, job_id))            params_json is canonical JSON (sorted keys, no spaces)
#   metrics(run_id, job_id, name, value, PK(run_id, job_id, name))
#                                       the summary's numeric metrics, dotted: "ttft_ms.p50"
# Times are UTC ISO 8601 text ("2026-11-25T00:16:27Z"), so they sort as strings.
# Versions: 1 the tables; 2 an index on metrics(name), which every history query filters by.
# A reader needs version 1 or later (2 changed no table); a writer upgrades older indexes.
SCHEMA_VERSION = 2
METRICS_BY_NAME = "CREATE INDEX IF NOT EXISTS metrics_by_name ON metrics (name, run_id, job_id)"
HISTORY_STATUSES = ("ok", "failed")  # complete jobs: an interrupted one covers part of its load
NAME_QUERIES = {"plan": "SELECT DISTINCT plan FROM runs",
                "benchmark": "SELECT DISTINCT benchmark FROM jobs",
                "model": "SELECT DISTINCT model FROM jobs"}


@dataclass(frozen=True)
class RunRow:
    """A run's row in the `runs` table; the fields are its columns, in order."""

    run_id: str
    plan: str
    plan_path: str | None
    plan_sha256: str | None
    started_at: str | None
    finished_at: str | None
    status: str | None
    inventory_source: str | None
    run_dir: str

    @classmethod
    def from_manifest(cls, plan: str, manifest: Mapping[str, Any]) -> RunRow:
        """The row of the run with this manifest.json, stored under results/<plan>/."""
        m = manifest
        source = _dig(m, "inventory", "source") or _dig(m, "inventory_snapshot", "source")
        every = m.get("inventories")
        if isinstance(every, list) and any(isinstance(i, Mapping) and i.get("source")
                                           == "fallback" for i in every):
            source = "fallback"  # a run of several servers: any one's fallback
        return cls(m["run_id"], plan, _dig(m, "plan", "path"), _dig(m, "plan", "sha256"),
                   m.get("started_at"), m.get("finished_at"), m.get("status"), source,
                   f"{plan}/{m['run_id']}")


def newer_message(where: str, version: int) -> str:
    """The one line for an index written by a newer runner than this one."""
    return (f"{where}: index schema version {version} is newer than this runner's "
            f"({SCHEMA_VERSION}); upgrade runner")


def job_row(run_id: str, job: Mapping[str, Any]) -> tuple[Any, ...]:
    """The `jobs` row of a manifest entry or a job summary, its columns in order."""
    return (run_id, job["id"], job["slug"], job.get("benchmark"), job.get("model"),
            json.dumps(job.get("params"), sort_keys=True, separators=(",", ":")),
            job["status"], job.get("started_at"), job.get("finished_at"))


def metric_rows(run_id: str, job: Mapping[str, Any]) -> list[tuple[str, str, str, float]]:
    """The job's `metrics` rows: (run_id, job_id, dotted name, value)."""
    key = (run_id, job["id"])
    return ([(*key, name, value) for name, value in flatten_metrics(job.get("metrics"))]
            + [(*key, name, value) for name, value in _server_metrics(job)])


def flatten_metrics(metrics: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """The finite numbers of a nested metrics dict, under dotted names."""
    if not isinstance(metrics, Mapping):
        return
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten_metrics(value, f"{name}.")
        elif _is_number(value):
            yield name, float(value)


def _server_metrics(job: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """The server's summarised figures (issue 11), as `server_metrics.series.<name>.<stat>`."""
    block = job.get("server_metrics")
    if isinstance(block, Mapping):
        wanted = {k: block.get(k) for k in ("series", "generation_tokens_per_s")}
        yield from flatten_metrics(wanted, "server_metrics.")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data
