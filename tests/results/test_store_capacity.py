"""A run's capacity records: in the manifest and in the results index, where a job recorded
later (the next search's trial) must not wipe them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from runner.results.store import RunStore

RECORD: dict[str, Any] = {"id": "knee/a", "benchmark": "knee", "model": "a", "point": {},
                          "over": "rate", "unit": "req/s", "capacity": 12.5}


def _entry(model: str) -> dict[str, Any]:
    return {"id": f"knee/{model}/rate=1.0", "slug": f"knee_{model}_rate-1", "benchmark": "knee",
            "model": model, "params": {"rate": 1.0}}


def test_capacity_stays_in_the_index_when_more_jobs_are_recorded(tmp_path: Path) -> None:
    store = RunStore.create(str(tmp_path), "cap", {"plan": {"name": "cap"}})
    store.set_jobs([])
    store.add_job(_entry("a"))
    store.write_capacity(RECORD)
    store.add_job(_entry("b"))  # the next model's search begins
    assert store.manifest["capacity"] == [RECORD]
    assert [j["id"] for j in store.manifest["jobs"]] == ["knee/a/rate=1.0", "knee/b/rate=1.0"]
    assert all(j["status"] == "pending" for j in store.manifest["jobs"])
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        rows = db.execute("select job_id, name, value from metrics").fetchall()
    assert rows == [("knee/a#capacity", "capacity", 12.5)]
    store.close()
