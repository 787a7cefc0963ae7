"""The results index on both backends (SQLite, a real PostgreSQL): the same rows and queries,
migrations of an older index in place, a newer index refused, and PostgreSQL's errors as one
line each without the password."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from runner.errors import EXIT_INVALID, EXIT_STORAGE, InputError, RunnerError, StorageError
from runner.redaction import url_password
from runner.results import pgindex, sqliteindex
from runner.results.index import (
    SCHEMA_VERSION,
    RunRow,
    check_index,
    choose_index,
    read_index,
    replace_jobs,
    upsert_job,
    upsert_run,
)

RUN = RunRow("20261125T001627Z-ab12", "smoke", "plans/smoke.yaml", "ab" * 32,
             "2026-11-25T00:16:27Z", None, "running", "live", "smoke/20261125T001627Z-ab12")
REPO = Path(__file__).resolve().parents[2]


def job(n: int, status: str = "pending", **extra: Any) -> dict[str, Any]:
    return {"id": f"chat/m{n}", "slug": f"chat_m{n}", "benchmark": "chat", "model": f"m{n}",
            "params": {"n": n}, "status": status, **extra}


@pytest.fixture
def where(index_location: str | None, tmp_path: Path) -> str:
    """The index of the test: a file on SQLite, a new database on PostgreSQL."""
    return index_location or str(tmp_path / "index.sqlite")


def execute(where: str, *sql: str) -> list[tuple[Any, ...]]:
    """Run statements on the index directly (autocommit); the last one's rows."""
    rows: list[tuple[Any, ...]] = []
    if where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(where, autocommit=True) as conn:
            for statement in sql:
                cur = conn.execute(statement)
                rows = list(cur.fetchall()) if cur.description else []
        return rows
    with closing(sqlite3.connect(where, isolation_level=None)) as conn:
        for statement in sql:
            rows = conn.execute(statement).fetchall()
    return rows


def version(where: str) -> int:
    if where.startswith("postgresql://"):
        return int(execute(where, "SELECT max(version) FROM schema_version")[0][0])
    return int(execute(where, "PRAGMA user_version")[0][0])


def test_rows_and_queries_are_the_same_on_both_backends(where: str) -> None:
    replace_jobs(where, RUN, [job(1), job(2), job(3)])
    upsert_job(where, RUN, job(1, "ok", metrics={"ttft_ms": {"p95": 5}, "note": "x"}))
    upsert_job(where, RUN, job(2, "interrupted", metrics={"ttft_ms": {"p95": 7}}))
    replace_jobs(where, RUN, [job(1, "ok", metrics={"ttft_ms": {"p95": 6}}), job(3)])
    upsert_run(where, RunRow(**{**vars(RUN), "status": "ok"}))
    with read_index(where) as reader:
        assert reader.names("plan") == ["smoke"]
        assert sorted(reader.names("model")) == ["m1", "m3"]  # m2 was replaced away
        assert reader.history_rows("ttft_ms.p95", None, None) == [
            (RUN.run_id, "smoke", RUN.started_at, "ok", 6.0, "chat/m1", "chat", "m1", '{"n":1}',
             RUN.run_dir, "chat_m1")]
        assert reader.history_rows("ttft_ms.p95", "other", None) == []
        assert reader.history_rows("ttft_ms.p95", None, "chat") != []
    assert version(where) == SCHEMA_VERSION


def _make_version_1(where: str) -> None:
    """An index as runner wrote it before version 2, holding one run with one job."""
    steps = (pgindex if where.startswith("postgresql://") else sqliteindex).MIGRATIONS[1]
    mark = ("CREATE TABLE schema_version (version INTEGER NOT NULL)",
            "INSERT INTO schema_version VALUES (1)") if where.startswith("postgresql://") \
        else ("PRAGMA user_version = 1",)
    execute(where, *steps, *mark,
            "INSERT INTO runs (run_id, plan, status, run_dir, started_at)"
            " VALUES ('old', 'smoke', 'ok', 'smoke/old', '2026-01-01T00:00:00Z')",
            "INSERT INTO jobs (run_id, job_id, slug, status) VALUES ('old', 'j', 'j', 'ok')",
            "INSERT INTO metrics VALUES ('old', 'j', 'ttft_ms.p95', 4.5)")


def _has_metrics_index(where: str) -> bool:
    if where.startswith("postgresql://"):
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'metrics'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'metrics'"
    return ("metrics_by_name",) in execute(where, sql)


def test_an_older_index_is_read_as_it_is_and_upgraded_in_place_by_a_writer(where: str) -> None:
    _make_version_1(where)
    with read_index(where) as reader:  # a reader changes nothing (it may be read-only)
        assert [row[0] for row in reader.history_rows("ttft_ms.p95", None, None)] == ["old"]
    assert (version(where), _has_metrics_index(where)) == (1, False)
    upsert_job(where, RUN, job(1, "ok", metrics={"ttft_ms": {"p95": 5}}))
    assert (version(where), _has_metrics_index(where)) == (SCHEMA_VERSION, True)
    with read_index(where) as reader:
        assert [row[0] for row in reader.history_rows("ttft_ms.p95", None, None)] == [
            "old", RUN.run_id]


def test_an_index_of_a_newer_runner_is_refused_by_readers_and_writers(where: str) -> None:
    upsert_run(where, RUN)
    newer = SCHEMA_VERSION + 1
    execute(where, f"UPDATE schema_version SET version = {newer}"
            if where.startswith("postgresql://") else f"PRAGMA user_version = {newer}")
    for attempt in (lambda: upsert_run(where, RUN), lambda: read_index(where).__enter__()):
        with pytest.raises(InputError, match=f"version {newer} is newer") as caught:
            attempt()
        assert caught.value.exit_code == EXIT_INVALID
        secret = url_password(where)
        assert secret is None or secret not in str(caught.value)


MIGRATE = """\
import sys
from runner.results.index import check_index, upsert_run, RunRow
sys.stdin.readline()  # every process starts at once
check_index(sys.argv[1])
upsert_run(sys.argv[1], RunRow(sys.argv[2], "p", None, None, None, None, "ok", None, "p/x"))
"""


def test_runners_starting_at_once_create_the_schema_once(where: str) -> None:
    """On PostgreSQL without the advisory lock, concurrent CREATE TABLE IF NOT EXISTS collide
    (a unique violation in pg_type) and a runner fails (3 times in 4, measured)."""
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, where, f"run{n}"], cwd=REPO,
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(4)]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    if where.startswith("postgresql://"):
        assert execute(where, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    assert version(where) == SCHEMA_VERSION
    assert execute(where, "SELECT count(*) FROM runs") == [(4,)]


# --- PostgreSQL's errors: one line, the password hidden, a documented exit code -------------

SECRET = "s3cret-Pa55word"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def _error(location: str) -> RunnerError:
    with pytest.raises(RunnerError) as caught:
        check_index(choose_index("results", {"RUNNER_INDEX_URL": location}))
    return caught.value


@pytest.mark.parametrize(("url", "code", "said"), [
    (f"postgresql://u:{SECRET}@127.0.0.1:port/db", EXIT_INVALID, "Port could not be cast"),
    (f"postgresql://u:{SECRET}@127.0.0.1:5432/db?bogus=1", EXIT_INVALID,
     "not a usable PostgreSQL URL"),
    (f"mysql://u:{SECRET}@127.0.0.1/db", EXIT_INVALID, "not a PostgreSQL URL"),
    (f"postgresql://u:{SECRET}@[::1/db", EXIT_INVALID, "not a usable PostgreSQL URL"),
    (f"postgresql://u:{SECRET}@127.0.0.1:1/db?sslmode=bogus", EXIT_INVALID,
     'not a usable PostgreSQL URL (connection is bad: invalid sslmode value: "bogus")'),
    (f"postgresql://u:{SECRET}@127.0.0.1:1/db?target_session_attrs=x", EXIT_INVALID,
     "not a usable PostgreSQL URL"),
])
def test_a_bad_url_is_one_line_without_the_password(url: str, code: int, said: str) -> None:
    error = _error(url)
    assert (error.exit_code, len(error.lines())) == (code, 1)
    assert said in str(error) and SECRET not in str(error) and "u:***@" in str(error)


def test_a_server_that_is_not_there(dead_url: str) -> None:
    port = dead_url.rsplit(":", 1)[1]
    error = _error(f"postgresql://u:{SECRET}@127.0.0.1:{port}/db")
    assert isinstance(error, StorageError) and error.exit_code == EXIT_STORAGE
    assert "cannot use the results index" in str(error) and "Connection refused" in str(error)
    assert SECRET not in str(error) and "\n" not in str(error)


def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    started = time.monotonic()
    error = _error(f"postgresql://u:{SECRET}@127.0.0.1:{silent_port}/db?connect_timeout=2")
    assert time.monotonic() - started < 30
    assert error.exit_code == EXIT_STORAGE and "did not answer in time" in str(error)
    assert SECRET not in str(error)


def test_a_wrong_password_or_database(postgres: Any) -> None:
    wrong = postgres.url("postgres", password=SECRET)
    error = _error(wrong)
    assert error.exit_code == EXIT_INVALID and "refused the connection" in str(error)
    assert "password authentication failed" in str(error) and SECRET not in str(error)
    error = _error(postgres.url("no_such_database"))
    assert error.exit_code == EXIT_INVALID and "does not exist" in str(error)
    assert postgres.password not in str(error)


# --- choosing the index: $RUNNER_INDEX_URL, servers.yaml, psycopg only when needed ----------

HISTORY = """\
import sys
{before}
from runner.main import main
code = main(["history", "--results", sys.argv[1]])
print("psycopg imported" if "psycopg" in sys.modules else "psycopg not imported")
sys.exit(code)
"""


def _history(tmp_path: Path, env: dict[str, str],
             before: str = "") -> subprocess.CompletedProcess[str]:
    script = HISTORY.format(before=before)
    return subprocess.run([sys.executable, "-c", script, str(tmp_path / "results")], cwd=REPO,
                          env={**_clean_env(), **env}, capture_output=True, text=True,
                          timeout=120)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RUNNER_INDEX_URL"}


def test_without_a_url_psycopg_is_never_imported(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    upsert_run(str(tmp_path / "results" / "index.sqlite"), RUN)
    done = _history(tmp_path, {})
    assert (done.returncode, done.stdout.splitlines()[-1]) == (0, "psycopg not imported")


def test_a_url_without_psycopg_installed_says_what_to_install(tmp_path: Path) -> None:
    url = f"postgresql://u:{SECRET}@127.0.0.1:5432/db"
    done = _history(tmp_path, {"RUNNER_INDEX_URL": url}, "sys.modules['psycopg'] = None")
    assert done.returncode == EXIT_INVALID
    assert done.stderr == ("error: postgresql://u:***@127.0.0.1:5432/db: a PostgreSQL results "
                           "index needs psycopg, which is not installed: pip install "
                           "'runner[postgres]'\n")


def test_servers_yaml_names_the_index_and_the_password_comes_from_libpq(
    tmp_path: Path, pg_url: str, postgres: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from runner.main import main

    without = pg_url.replace(f":{postgres.password}@", "@")
    upsert_job(pg_url, RUN, job(1, "ok", metrics={"ttft_ms": {"p95": 5.0}}))
    configs = tmp_path / "configs"
    configs.mkdir()
    servers = f"servers:\n  s: {{url: 'http://127.0.0.1:1'}}\nresults:\n  index_url: {without}\n"
    (configs / "servers.yaml").write_text(servers)
    monkeypatch.delenv("RUNNER_INDEX_URL", raising=False)
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    argv = ["history", "--config-dir", str(configs), "--results", str(tmp_path / "r")]
    assert main(argv) == 0
    assert "chat/m1" in capsys.readouterr().out
    (configs / "servers.yaml").write_text(servers.replace(without, pg_url))
    assert main(argv) == EXIT_INVALID
    err = capsys.readouterr().err
    assert err.startswith(f"error: {configs / 'servers.yaml'}:4:14: results.index_url holds a "
                          "password: remove it") and postgres.password not in err


def test_a_unix_socket_url(postgres: Any) -> None:
    database = postgres.create_database().rsplit("/", 1)[1]
    url = f"postgresql://runner_admin@/{database}?host={postgres.home}&port={postgres.port}"
    upsert_job(url, RUN, job(1, "ok", metrics={"ttft_ms": {"p95": 5.0}}))
    with read_index(url) as reader:
        assert reader.names("model") == ["m1"]
