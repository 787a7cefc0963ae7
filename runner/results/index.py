"""The results index: every run and job summary, for history. It lives in results/index.sqlite
(SQLite, the embedded default) or, for a team's shared history, in PostgreSQL
(`RUNNER_INDEX_URL=postgresql://…`); both hold the same tables (indexrows)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from runner.errors import InputError
from runner.results import sqliteindex
from runner.results.indexrows import SCHEMA_VERSION, RunRow, flatten_metrics
from runner.results.pgurl import check_url, is_postgres, shown
from runner.results.sqliteindex import BUSY_TIMEOUT_S, INDEX_FILE, open_index

URL_ENV = "RUNNER_INDEX_URL"

__all__ = ["BUSY_TIMEOUT_S", "INDEX_FILE", "SCHEMA_VERSION", "URL_ENV", "IndexReader",
           "RunRow", "check_index", "choose_index", "flatten_metrics", "is_postgres",
           "open_index", "read_index", "replace_jobs", "upsert_job", "upsert_run"]


class IndexReader(Protocol):
    """The queries history runs, whichever the backend."""

    def names(self, what: str) -> list[str]:
        """The distinct `plan`s, `benchmark`s or `model`s in the index."""

    def history_rows(self, metric: str, plan: str | None,
                     benchmark: str | None) -> list[tuple[Any, ...]]:
        """(run_id, plan, started_at, status, value, job_id, benchmark, model, params_json,
        run_dir, slug) of every complete job with the dotted `metric`, oldest run first."""


def choose_index(results_dir: str, env: Mapping[str, str], configured: str | None = None) -> str:
    """Where the index is: $RUNNER_INDEX_URL, else `configured` (servers.yaml's
    `results.index_url`), else results_dir/index.sqlite. InputError for a URL that is not
    postgresql://, with its password hidden."""
    url = env.get(URL_ENV) or configured
    if not url:
        return os.path.join(results_dir, INDEX_FILE)
    check_url(url)
    return url


def check_index(location: str) -> None:
    """For a PostgreSQL index: connect, and create or upgrade its tables now, so a bad URL,
    password or server stops an apply before its run exists. Nothing for SQLite (its file is
    made with the run's first row)."""
    if is_postgres(location):
        _postgres(location).check(location)


def read_index(location: str) -> AbstractContextManager[IndexReader]:
    """A reader of the index, closed after the block; it writes nothing. InputError for an
    unreadable index, one of a newer runner, or one without runs yet; for PostgreSQL also
    UnreachableIndexError (exit 74) when the server cannot be used."""
    if is_postgres(location):
        reader: AbstractContextManager[IndexReader] = _postgres(location).read_index(location)
        return reader
    return _sqlite_reader(location)


@contextmanager
def _sqlite_reader(path: str) -> Iterator[IndexReader]:
    with sqliteindex.read_index(path) as reader:
        yield reader


def upsert_run(location: str, run: RunRow) -> None:
    """Insert or update the run's row."""
    _write(location, run, ())


def replace_jobs(location: str, run: RunRow, jobs: Sequence[Mapping[str, Any]]) -> None:
    """The run's row, and `jobs` (manifest entries or summaries) in place of all it had."""
    _write(location, run, jobs, replace=True)


def upsert_job(location: str, run: RunRow, job: Mapping[str, Any]) -> None:
    """The run's row, and one job's row and numeric metrics from its summary."""
    _write(location, run, [job])


def _write(location: str, run: RunRow, jobs: Sequence[Mapping[str, Any]],
           *, replace: bool = False) -> None:
    """One short transaction. StorageError (exit 74) when the disk refuses it or the server
    cannot be reached (UnreachableIndexError); InputError when the index cannot be used."""
    if is_postgres(location):
        _postgres(location).write(location, run, jobs, replace=replace)
    else:
        sqliteindex.write(location, run, jobs, replace=replace)


def _postgres(url: str) -> Any:
    """runner.results.pgindex, imported only now: psycopg is an optional extra."""
    try:
        from runner.results import pgindex
    except ImportError as exc:
        if exc.name not in ("psycopg", "psycopg_binary", "psycopg_c"):
            raise
        raise InputError(f"{shown(url)}: a PostgreSQL results index needs psycopg, which is "
                         "not installed: pip install 'runner[postgres]'") from None
    return pgindex
