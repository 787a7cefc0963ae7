"""`runner apply` with its results index on a real PostgreSQL: two applies at once (two
processes, two machines' results folders) write one index; an index that cannot be reached
stops an apply before its run exists, or, lost mid-run, leaves the run's files to resume."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from apply_helpers import apply_process, manifest, run_dirs, wait_for
from postgres_server import PostgresServer, start_postgres

from runner.errors import EXIT_OK, EXIT_STORAGE
from runner.main import main

SERVERS = """\
servers:
  sim: {kind: mock, models: [m1, m2], ttft_ms: 5, itl_ms: 2, output_tokens: 16}
"""
PLAN = """\
version: 1
name: p
inventory: {server: sim, fallback: false}
benchmarks:
  - name: b
    models: all
    workload: {synthetic: {input_tokens: 16}, max_tokens: 16}
    load: {concurrency: 2, requests: %d}
    matrix: {seed: [1, 2]}
"""
JOBS = 4  # 2 models x 2 seeds


def project(tmp_path: Path, requests: int = 8) -> dict[str, str]:
    (tmp_path / "configs").mkdir(exist_ok=True)
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "p.yaml").write_text(PLAN % requests)
    return {"RUNNER_CONFIG_DIR": str(tmp_path / "configs")}


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_two_applies_at_once_write_one_index(tmp_path: Path, pg_url: str) -> None:
    env = {**project(tmp_path), "RUNNER_INDEX_URL": pg_url}
    procs = [apply_process("p.yaml", "--no-report", "--results", f"results-{n}",
                           cwd=tmp_path, env=env) for n in (1, 2)]
    for proc in procs:
        assert finish(proc)[0] == EXIT_OK
    runs = rows(pg_url, "SELECT run_id, status, run_dir FROM runs ORDER BY run_id")
    assert len(runs) == 2 and {r[1] for r in runs} == {"ok"}
    for run_id, _, run_dir in runs:
        jobs = rows(pg_url, f"SELECT status FROM jobs WHERE run_id = '{run_id}'")
        assert jobs == [("ok",)] * JOBS
        [(count,)] = rows(pg_url, "SELECT count(DISTINCT job_id) FROM metrics WHERE "
                                  f"run_id = '{run_id}' AND name = 'ttft_ms.p95'")
        assert count == JOBS
        assert any((tmp_path / f"results-{n}" / run_dir).is_dir() for n in (1, 2))


def test_history_of_both_applies(tmp_path: Path, pg_url: str,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    env = {**project(tmp_path), "RUNNER_INDEX_URL": pg_url}
    for n in (1, 2):
        assert finish(apply_process("p.yaml", "--no-report", "--results", f"results-{n}",
                                    cwd=tmp_path, env=env))[0] == EXIT_OK
    monkeypatch.setenv("RUNNER_INDEX_URL", pg_url)
    assert main(["history", "--results", str(tmp_path / "results-1"), "--format",
                 "json"]) == EXIT_OK
    series = json.loads(capsys.readouterr().out)["series"]
    assert len(series) == JOBS and all(len(s["points"]) == 2 for s in series)


def test_an_unreachable_index_stops_apply_before_its_run(tmp_path: Path, dead_url: str) -> None:
    port = dead_url.rsplit(":", 1)[1]
    env = {**project(tmp_path), "RUNNER_INDEX_URL": f"postgresql://u:hunter22@127.0.0.1:{port}/x"}
    code, err = finish(apply_process("p.yaml", "--no-report", cwd=tmp_path, env=env))
    assert code == EXIT_STORAGE and err.count("\n") == 1, err
    assert err.startswith("error: postgresql://u:***@127.0.0.1:") and "hunter22" not in err
    assert not (tmp_path / "results").exists()


@pytest.fixture
def own_postgres() -> Any:
    """A cluster of the test's own, to stop mid-run."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def test_an_index_lost_mid_run_keeps_the_runs_files_to_resume(
    tmp_path: Path, own_postgres: PostgresServer,
) -> None:
    url = own_postgres.create_database()
    env = {**project(tmp_path, requests=40), "RUNNER_INDEX_URL": url}
    proc = apply_process("p.yaml", "--no-report", cwd=tmp_path, env=env)
    jobs = tmp_path / "results" / "p"
    wait_for(lambda: any(jobs.glob("*/jobs/*[0-9].json")), 120, "the first job's summary")
    own_postgres.halt()
    code, err = finish(proc)
    [run] = run_dirs(tmp_path / "results", "p")
    assert code == EXIT_STORAGE, err
    err = err.splitlines()[-1]  # above it: the progress lines of the jobs that ran
    assert err.startswith("error: postgresql://runner_admin:***@127.0.0.1:")
    assert "cannot use the results index" in err and own_postgres.password not in err
    assert f"marked interrupted in its manifest (the resume brings the index up to date): " \
           f"make the results index reachable again, then finish it with: runner apply " \
           f"p.yaml --resume {run.relative_to(tmp_path)}" in err
    assert manifest(run)["status"] == "interrupted"
    done = [j for j in manifest(run)["jobs"] if j["status"] == "ok"]
    assert 1 <= len(done) < JOBS
    assert all((run / "jobs" / f"{j['slug']}.json").is_file() for j in done)
    assert own_postgres.start()
    resumed = apply_process("p.yaml", "--no-report", "--resume", str(run), cwd=tmp_path,
                            env=env)
    assert finish(resumed)[0] == EXIT_OK
    assert rows(url, "SELECT status FROM runs") == [("ok",)]
    assert rows(url, "SELECT status FROM jobs") == [("ok",)] * JOBS
