from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from disk_helpers import read_only_view

from runner.errors import InputError
from runner.results.index import (
    SCHEMA_VERSION,
    RunRow,
    flatten_metrics,
    open_index,
    read_index,
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


# --- reading, on a read-only results tree ------------------------------------------------------

# A writer killed after committing: its transaction is only in index.sqlite-wal (and -shm).
KILLED_WRITER = """\
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint = 0")
conn.execute("INSERT INTO runs (run_id, plan, status, run_dir) VALUES ('late', 'smoke', 'ok', 'x')")
os._exit(0)
"""


def indexed_runs(path: Path) -> list[str]:
    with read_index(str(path)) as reader:
        return [row[0] for row in reader.conn.execute(  # type: ignore[attr-defined]
            "SELECT run_id FROM runs ORDER BY run_id")]


def test_read_index_writes_nothing_beside_a_writable_index(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    upsert_run(str(path), RUN)
    assert indexed_runs(path) == [RUN.run_id]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.sqlite"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no runs are indexed in it yet"),
    ("not a database, just text " * 100, "cannot read the results index"),
])
def test_read_index_refuses_an_index_it_cannot_use(tmp_path: Path, content: str | None,
                                                    message: str) -> None:
    path = tmp_path / "index.sqlite"
    if content is None:
        sqlite3.connect(path).close()
    else:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        indexed_runs(path)


@pytest.mark.parametrize("left_behind", ["nothing", "wal and shm", "wal only"])
def test_read_index_on_a_read_only_mount(tmp_path: Path, left_behind: str) -> None:
    """SQLite cannot create index.sqlite-shm there; a killed writer's -wal is still read."""
    tree = tmp_path / "results"
    tree.mkdir()
    path = tree / "index.sqlite"
    upsert_run(str(path), RUN)
    expected = [RUN.run_id]
    if left_behind != "nothing":
        subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], check=True, timeout=60)
        assert (tree / "index.sqlite-wal").stat().st_size > 0
        expected = [RUN.run_id, "late"]
    if left_behind == "wal only":
        (tree / "index.sqlite-shm").unlink()
    before = sorted(p.name for p in tree.iterdir())
    with read_only_view(tree, tmp_path / "ro") as ro:
        assert indexed_runs(ro / "index.sqlite") == expected
    assert sorted(p.name for p in tree.iterdir()) == before
