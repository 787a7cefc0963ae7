from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from runner.errors import InputError
from runner.results.index import (
    SCHEMA_VERSION,
    RunRow,
    flatten_metrics,
    open_index,
    replace_jobs,
    upsert_job,
    upsert_run,
)

RUN = RunRow("20261125T001627Z-ab12", "smoke", "plans/smoke.yaml", "ab" * 32,
             "2026-11-25T00:16:27Z", None, "running", "live", "smoke/20261125T001627Z-ab12")


def job(n: int, status: str = "pending", **extra: Any) -> dict[str, Any]:
    return {"id": f"chat/m{n}", "slug": f"chat_m{n}", "benchmark": "chat", "model": f"m{n}",
            "params": {"n": n, "c": 1}, "status": status, **extra}


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize(
    ("manifest", "row"),
    [
        ({"run_id": "r1", "status": "ok", "started_at": "t0", "finished_at": "t1",
          "plan": {"path": "p.yaml", "sha256": "ff"}, "inventory": {"source": "live"}},
         RunRow("r1", "smoke", "p.yaml", "ff", "t0", "t1", "ok", "live", "smoke/r1")),
        ({"run_id": "r2", "status": "running", "inventory_snapshot": {"source": "cache"}},
         RunRow("r2", "smoke", None, None, None, None, "running", "cache", "smoke/r2")),
        ({"run_id": "r3", "status": "running", "plan": "not a mapping"},
         RunRow("r3", "smoke", None, None, None, None, "running", None, "smoke/r3")),
    ],
)
def test_run_row_from_manifest(manifest: dict[str, Any], row: RunRow) -> None:
    assert RunRow.from_manifest("smoke", manifest) == row


def test_open_index_creates_the_schema_in_wal_mode(tmp_path: Path) -> None:
    with closing(open_index(str(tmp_path / "index.sqlite"))) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert sorted(tables) == [("jobs",), ("metrics",), ("runs",)]


def test_open_index_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match=f"version {SCHEMA_VERSION + 1} is newer"):
        open_index(str(path))


def test_upserts_write_the_run_jobs_and_metrics(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    replace_jobs(str(path), RUN, [job(1), job(2)])
    upsert_job(str(path), RUN, job(1, "ok", metrics={"ttft_ms": {"p50": 5}, "note": "x"}))
    upsert_run(str(path), RunRow(**{**vars(RUN), "status": "ok"}))
    assert query(path, "SELECT run_id, status FROM runs") == [(RUN.run_id, "ok")]
    assert query(path, "SELECT job_id, status, params_json FROM jobs ORDER BY job_id") == [
        ("chat/m1", "ok", '{"c":1,"n":1}'), ("chat/m2", "pending", '{"c":1,"n":2}')]
    assert query(path, "SELECT job_id, name, value FROM metrics") == [
        ("chat/m1", "ttft_ms.p50", 5.0)]


def test_replace_jobs_drops_the_runs_old_jobs_and_metrics_only(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    other = RunRow(**{**vars(RUN), "run_id": "other", "run_dir": "smoke/other"})
    for run in (RUN, other):
        replace_jobs(str(path), run, [job(1, "ok", metrics={"a": 1}), job(2)])
    replace_jobs(str(path), RUN, [job(3)])
    assert query(path, "SELECT run_id, job_id FROM jobs ORDER BY run_id, job_id") == [
        ("20261125T001627Z-ab12", "chat/m3"), ("other", "chat/m1"), ("other", "chat/m2")]
    assert query(path, "SELECT run_id, name FROM metrics") == [("other", "a")]


def test_a_corrupt_index_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    path.write_text("not a database, just text " * 100)
    with pytest.raises(InputError, match="cannot update the results index"):
        upsert_run(str(path), RUN)


def test_flatten_metrics_keeps_finite_numbers_only() -> None:
    metrics = {"a": {"b": {"c": 1}}, "nan": float("nan"), "inf": float("inf"), "ok": True,
               "n": None, "s": "x", "l": [1]}
    assert list(flatten_metrics(metrics)) == [("a.b.c", 1.0)]
    assert list(flatten_metrics(None)) == []
