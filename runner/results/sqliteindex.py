"""The results index in SQLite (results/index.sqlite), the embedded default: its schema
version in PRAGMA user_version, WAL mode, one short transaction per write."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import astuple
from typing import Any

from runner.errors import InputError, StorageError
from runner.results.indexrows import (
    HISTORY_STATUSES,
    METRICS_BY_NAME,
    NAME_QUERIES,
    SCHEMA_VERSION,
    RunRow,
    job_row,
    metric_rows,
    newer_message,
)

# Each version's statements, run in one write transaction by the runner that finds the index
# older (re-read under the lock: a second runner starting meanwhile finds nothing to do).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("""CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, plan TEXT NOT NULL, plan_path TEXT, plan_sha256 TEXT,
        started_at TEXT, finished_at TEXT, status TEXT NOT NULL, inventory_source TEXT,
        run_dir TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS jobs (
        run_id TEXT NOT NULL, job_id TEXT NOT NULL, slug TEXT NOT NULL, benchmark TEXT,
        model TEXT, params_json TEXT, status TEXT NOT NULL, started_at TEXT, finished_at TEXT,
        PRIMARY KEY (run_id, job_id))""",
        """CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL, job_id TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
        PRIMARY KEY (run_id, job_id, name))""",
        "CREATE INDEX IF NOT EXISTS runs_by_plan ON runs (plan, started_at)",
        "CREATE INDEX IF NOT EXISTS jobs_by_model ON jobs (benchmark, model)"),
    2: (METRICS_BY_NAME,),
}
# Runs of one second are ordered by when they were stored: rowid (INSERT OR REPLACE gives a
# replaced row a new one, so it is the order of each run's last write).
_HISTORY = f"""
SELECT r.run_id, r.plan, r.started_at, j.status, m.value, j.job_id, j.benchmark, j.model,
       j.params_json, r.run_dir, j.slug
FROM metrics m
JOIN jobs j ON j.run_id = m.run_id AND j.job_id = m.job_id
JOIN runs r ON r.run_id = m.run_id
WHERE m.name = :metric AND j.status IN {HISTORY_STATUSES}
  AND (:plan IS NULL OR r.plan = :plan) AND (:benchmark IS NULL OR j.benchmark = :benchmark)
ORDER BY r.started_at, r.rowid
"""
INDEX_FILE = "index.sqlite"
_STORAGE_CODES = (10, 13)  # SQLITE_IOERR, SQLITE_FULL (primary codes): the disk, not the index
BUSY_TIMEOUT_S = 30.0


def open_index(path: str) -> sqlite3.Connection:
    """A connection to the index at `path` in WAL mode, its schema created or upgraded in place.

    InputError if the index was written by a newer runner; sqlite3 errors pass through.
    """
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        version = _version(conn)
        if version > SCHEMA_VERSION:
            raise InputError(newer_message(path, version))
        if version < SCHEMA_VERSION:
            _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Every missing version's statements and the new user_version, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)
        if version > SCHEMA_VERSION:
            raise InputError(newer_message(path, version))
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for sql in MIGRATIONS[step]:
                conn.execute(sql)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


class SqliteReader:
    """The queries history runs, on an open SQLite index (`conn`, for tests)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def names(self, what: str) -> list[str]:
        """The distinct plans, benchmarks or models (`what`) in the index, None left out."""
        return [str(row[0]) for row in self.conn.execute(NAME_QUERIES[what])
                if row[0] is not None]

    def history_rows(self, metric: str, plan: str | None,
                     benchmark: str | None) -> list[tuple[Any, ...]]:
        """(run_id, plan, started_at, status, value, job_id, benchmark, model, params_json,
        run_dir, slug) of every complete job with `metric`, oldest run first."""
        params = {"metric": metric, "plan": plan, "benchmark": benchmark}
        return [tuple(row) for row in self.conn.execute(_HISTORY, params).fetchall()]


@contextmanager
def read_index(path: str) -> Iterator[SqliteReader]:
    """A reader of the index at `path`, closed after the block; it writes nothing, so it works
    on a read-only results tree too (a read-only mount, a CI artifact).

    SQLite's WAL mode needs `index.sqlite-shm` beside the file: in a folder that cannot take
    it, the index is opened `immutable`, or, when a `-wal` left by a killed writer holds
    transactions, read from a private copy that SQLite may recover. InputError for an
    unreadable index, one of a newer runner, or one without runner's tables."""
    try:
        with _reading(path) as conn:
            yield SqliteReader(_check_readable(conn, path))
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
    version = _version(conn)
    if version > SCHEMA_VERSION:
        raise InputError(newer_message(path, version))
    if version < 1:
        raise InputError(f"{path}: no runs are indexed in it yet; run `runner apply PLAN` "
                         "first, or point --results at the folder that holds the runs")
    return conn


def write(path: str, run: RunRow, jobs: Sequence[Any], *, replace: bool = False) -> None:
    """One short transaction: the run's row, then the jobs' rows and metrics (all of the run's
    old jobs dropped first when `replace`). StorageError when the disk refuses it, InputError
    when the index cannot be used; sqlite3 programming and integrity errors pass through."""
    try:
        with closing(open_index(path)) as conn, conn:
            conn.execute("INSERT OR REPLACE INTO runs (run_id, plan, plan_path, plan_sha256,"
                         " started_at, finished_at, status, inventory_source, run_dir)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", astuple(run))
            if replace:
                conn.execute("DELETE FROM jobs WHERE run_id = ?", (run.run_id,))
                conn.execute("DELETE FROM metrics WHERE run_id = ?", (run.run_id,))
            for job in jobs:
                _write_job(conn, run.run_id, job)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.ProgrammingError | sqlite3.IntegrityError):
            raise
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _STORAGE_CODES:
            raise StorageError(f"{path}: cannot write the results index "
                               f"({exc}{_full(path, str(exc))})") from None
        raise InputError(f"{path}: cannot update the results index ({exc})") from None


def _write_job(conn: sqlite3.Connection, run_id: str, job: Any) -> None:
    row = job_row(run_id, job)
    conn.execute("INSERT OR REPLACE INTO jobs (run_id, job_id, slug, benchmark, model,"
                 " params_json, status, started_at, finished_at)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    conn.execute("DELETE FROM metrics WHERE run_id = ? AND job_id = ?", row[:2])
    conn.executemany("INSERT OR REPLACE INTO metrics (run_id, job_id, name, value)"
                     " VALUES (?, ?, ?, ?)", metric_rows(run_id, job))


def _full(path: str, said: str) -> str:
    """SQLite may say "disk I/O error" where the disk is merely full: say so."""
    if "full" in said:
        return ""
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
        return ""
    return ": the disk is full" if free < 1024 * 1024 else ""
