"""The results index: every run and job summary in results/index.sqlite, for history and compare."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import astuple, dataclass
from typing import Any

from runner.errors import InputError, StorageError

# results/index.sqlite is shared by every plan; its schema version is PRAGMA user_version.
#   runs(run_id PK, plan, plan_path, plan_sha256, started_at, finished_at, status,
#        inventory_source, run_dir)     run_dir is relative to the results directory
#   jobs(run_id, job_id, slug, benchmark, model, params_json, status, started_at, finished_at,
#        PK(run_id, job_id))            params_json is canonical JSON (sorted keys, no spaces)
#   metrics(run_id, job_id, name, value, PK(run_id, job_id, name))
#                                       the summary's numeric metrics, dotted: "ttft_ms.p50"
# Times are UTC ISO 8601 text ("2026-11-25T00:16:27Z"), so they sort as strings. Every write is
# one short transaction on its own connection, in WAL mode, so a crash leaves the index readable.
SCHEMA_VERSION = 1
_SCHEMA = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, plan TEXT NOT NULL, plan_path TEXT, plan_sha256 TEXT,
    started_at TEXT, finished_at TEXT, status TEXT NOT NULL, inventory_source TEXT,
    run_dir TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    run_id TEXT NOT NULL, job_id TEXT NOT NULL, slug TEXT NOT NULL, benchmark TEXT, model TEXT,
    params_json TEXT, status TEXT NOT NULL, started_at TEXT, finished_at TEXT,
    PRIMARY KEY (run_id, job_id));
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, job_id TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (run_id, job_id, name));
CREATE INDEX IF NOT EXISTS runs_by_plan ON runs (plan, started_at);
CREATE INDEX IF NOT EXISTS jobs_by_model ON jobs (benchmark, model);
PRAGMA user_version = {SCHEMA_VERSION};
COMMIT;
"""

INDEX_FILE = "index.sqlite"
_STORAGE_CODES = (10, 13)  # SQLITE_IOERR, SQLITE_FULL (primary codes): the disk, not the index
BUSY_TIMEOUT_S = 30.0


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


def open_index(path: str) -> sqlite3.Connection:
    """A connection to the index at `path` in WAL mode, its schema created if missing.

    InputError if the index was written by a newer runner; sqlite3 errors pass through.
    """
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise InputError(f"{path}: index schema version {version} is newer than this "
                             f"runner's ({SCHEMA_VERSION}); upgrade runner")
        if version < SCHEMA_VERSION:
            conn.executescript(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def read_index(path: str) -> Iterator[sqlite3.Connection]:
    """A connection for reading the index at `path`, closed after the block; it writes nothing,
    so it works on a read-only results tree too (a read-only mount, a CI artifact).

    SQLite's WAL mode needs `index.sqlite-shm` beside the file: in a folder that cannot take
    it, the index is opened `immutable`, or, when a `-wal` left by a killed writer holds
    transactions, read from a private copy that SQLite may recover. InputError for an
    unreadable index, one of a newer runner, or one without runner's tables."""
    try:
        with _reading(path) as conn:
            yield _check_readable(conn, path)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: cannot read the results index ({exc})") from None


@contextmanager
def _reading(path: str) -> Iterator[sqlite3.Connection]:
    wal = f"{path}-wal"
    if os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
        with closing(_connect(path, "mode=rw")) as conn:  # closing it removes -wal and -shm
            yield conn
    elif os.path.exists(f"{path}-shm"):
        with closing(_connect(path, "mode=ro")) as conn:
            yield conn
    elif os.path.isfile(wal) and os.path.getsize(wal) > 0:
        with tempfile.TemporaryDirectory(prefix="runner-index-") as tmp:
            copy = os.path.join(tmp, INDEX_FILE)
            shutil.copyfile(path, copy)
            shutil.copyfile(wal, f"{copy}-wal")
            with closing(_connect(copy, "mode=rw")) as conn:
                yield conn
    else:
        with closing(_connect(path, "immutable=1")) as conn:
            yield conn


def _connect(path: str, mode: str) -> sqlite3.Connection:
    uri = f"file:{_uri_path(os.path.abspath(path))}?{mode}"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)


def _uri_path(path: str) -> str:
    """`path` with the characters a SQLite URI gives a meaning to escaped."""
    return "".join(f"%{ord(c):02X}" if c in "%?#" else c for c in path)


def _check_readable(conn: sqlite3.Connection, path: str) -> sqlite3.Connection:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise InputError(f"{path}: index schema version {version} is newer than this "
                         f"runner's ({SCHEMA_VERSION}); upgrade runner")
    if version < SCHEMA_VERSION:
        raise InputError(f"{path}: no runs are indexed in it yet; run `runner apply PLAN` "
                         "first, or point --results at the folder that holds the runs")
    return conn


def upsert_run(index_path: str, run: RunRow) -> None:
    """Insert or update the run's row."""
    _write(index_path, run, ())


def replace_jobs(index_path: str, run: RunRow, jobs: Sequence[Mapping[str, Any]]) -> None:
    """The run's row, and `jobs` (manifest entries or summaries) in place of all it had."""
    _write(index_path, run, jobs, replace=True)


def upsert_job(index_path: str, run: RunRow, job: Mapping[str, Any]) -> None:
    """The run's row, and one job's row and numeric metrics from its summary."""
    _write(index_path, run, [job])


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


def _write(
    index_path: str, run: RunRow, jobs: Sequence[Mapping[str, Any]], *, replace: bool = False
) -> None:
    """One short transaction: the run's row, then the jobs' rows and metrics."""
    try:
        with closing(open_index(index_path)) as conn, conn:
            _upsert_run(conn, run)
            if replace:
                conn.execute("DELETE FROM jobs WHERE run_id = ?", (run.run_id,))
                conn.execute("DELETE FROM metrics WHERE run_id = ?", (run.run_id,))
            for job in jobs:
                _upsert_job(conn, run.run_id, job)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.ProgrammingError | sqlite3.IntegrityError):
            raise
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _STORAGE_CODES:
            raise StorageError(f"{index_path}: cannot write the results index "
                               f"({exc}{_full(index_path, str(exc))})") from None
        raise InputError(f"{index_path}: cannot update the results index ({exc})") from None


def _full(path: str, said: str) -> str:
    """SQLite may say "disk I/O error" where the disk is merely full: say so."""
    if "full" in said:
        return ""
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
        return ""
    return ": the disk is full" if free < 1024 * 1024 else ""


def _upsert_run(conn: sqlite3.Connection, run: RunRow) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO runs (run_id, plan, plan_path, plan_sha256, started_at,"
        " finished_at, status, inventory_source, run_dir) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        astuple(run),
    )


def _upsert_job(conn: sqlite3.Connection, run_id: str, job: Mapping[str, Any]) -> None:
    key = (run_id, job["id"])
    conn.execute(
        "INSERT OR REPLACE INTO jobs (run_id, job_id, slug, benchmark, model, params_json,"
        " status, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*key, job["slug"], job.get("benchmark"), job.get("model"),
         json.dumps(job.get("params"), sort_keys=True, separators=(",", ":")),
         job["status"], job.get("started_at"), job.get("finished_at")),
    )
    conn.execute("DELETE FROM metrics WHERE run_id = ? AND job_id = ?", key)
    conn.executemany(
        "INSERT OR REPLACE INTO metrics (run_id, job_id, name, value) VALUES (?, ?, ?, ?)",
        [(*key, name, value) for name, value in flatten_metrics(job.get("metrics"))]
        + [(*key, name, value) for name, value in _server_metrics(job)],
    )


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
