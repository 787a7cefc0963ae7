"""A capacity record (manifest `capacity`) seen as a job: what the results index, `history`
and `compare` read, so capacity is tracked like a metric (name `capacity`, higher is better)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

CAPACITY = "capacity"  # the metric's name in job-like rows and the results index
CAPACITY_SLUG = "capacity-"  # how a capacity row's slug starts (it has no job file)


def capacity_job(record: Mapping[str, Any]) -> dict[str, Any]:
    """{id, slug, benchmark, model, point, params, status, metrics: {capacity}}: the search's id
    (`bench/model[/point]`) with `#capacity`, status ok when a capacity was found (None when even
    search.from missed the SLO: failed)."""
    ident = f"{record.get('id')}#{CAPACITY}"
    slug = CAPACITY_SLUG + hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    value = record.get(CAPACITY)
    return {"id": ident, "slug": slug, "benchmark": record.get("benchmark"),
            "model": record.get("model"), "point": dict(record.get("point") or {}),
            "params": {"over": record.get("over"), "unit": record.get("unit"),
                       "search": record.get("search")},
            "status": "ok" if value is not None else "failed",
            "metrics": {CAPACITY: value, "validity": _validity(record)}, "unit": record.get("unit")}


def _validity(record: Mapping[str, Any]) -> dict[str, Any]:
    """valid when the search ended on its own terms; degraded when it was cut short (an
    invalid or failed trial, an interruption): compare then sets it aside from the gate."""
    ended = record.get("stopped_reason") in ("precision", "bound", "max_jobs", "from_failed")
    return {"verdict": "valid" if ended else "degraded", "reasons": []}


def capacity_jobs(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every capacity record of a run's manifest as a job-like row."""
    records: Sequence[Any] = manifest.get(CAPACITY) or []
    return [capacity_job(r) for r in records if isinstance(r, Mapping)]
