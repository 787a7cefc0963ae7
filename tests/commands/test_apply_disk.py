"""A full disk under `runner apply`: exit 74 with one line naming the file, no torn request line,
the run marked `interrupted`, and `--resume` finishing it once there is room again. Real small
filesystems (a tmpfs), a real file-size limit; the tests only choose the moment it fills up."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import manifest, run_dirs
from cli_helpers import run_cli
from disk_helpers import fill, small_disk

from runner.errors import EXIT_OK, EXIT_STORAGE

SERVERS = """\
servers:
  sim: {kind: mock, models: [m1], ttft_ms: 0, itl_ms: 0, output_tokens: 8}
"""
PLAN = """\
version: 1
name: p
inventory: {{server: sim, fallback: false}}
benchmarks:
  - name: b
    models: all
    workload: {{synthetic: {{input_tokens: 4}}, max_tokens: 8}}
    load: {{concurrency: 8, requests: {requests}}}
    matrix: {{max_tokens: [8, 9]}}
"""
BIG = 3000  # requests per job: ~1.1 MB of request log per job


def LOG(run: Path) -> str:
    return f"{run}/jobs/b_m1_max_tokens=8-"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", "4m") as mounted:
        yield mounted


def apply_process(project: Path, results: Path, *extra: str,
                  fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    argv = [sys.executable, "-m", "runner", "apply", "p.yaml", "--results", str(results),
            "--no-report", *extra]
    return subprocess.run(argv, cwd=project, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit, env=dict(os.environ))


def check_stopped(code: int, err: str, results: Path, failed: Callable[[Path], str]) -> Path:
    """Exit 74, one error line naming the file (`failed(run)` starts its path) and the resume
    command, no traceback; the run interrupted; every stored request line whole."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == EXIT_STORAGE and len(errors) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    (run,) = run_dirs(results, "p")
    assert errors[0].startswith(f"error: {failed(run)}") and ": cannot write " in errors[0], \
        errors[0]
    assert f"run {run} is marked interrupted: free some space, then finish it with: " \
           f"runner apply p.yaml --results {results} --resume {run}" in errors[0]
    assert manifest(run)["status"] == "interrupted"
    for log in (run / "jobs").glob("*.requests.jsonl"):
        text = log.read_text()
        assert not text or text.endswith("\n")
        assert all(json.loads(line)["index"] >= 0 for line in text.splitlines())
    return run


def check_resumed(code: int, err: str, run: Path, requests: int) -> None:
    assert code == EXIT_OK, err
    data = manifest(run)
    assert data["status"] == "ok" and [j["status"] for j in data["jobs"]] == ["ok", "ok"]
    for job in data["jobs"]:
        lines = (run / "jobs" / f"{job['slug']}.requests.jsonl").read_text().splitlines()
        assert sorted(json.loads(line)["index"] for line in lines) == list(range(requests))
    assert not (run / "run.reserve").exists()


def test_a_request_log_that_fills_the_disk(project: Path, disk: Path) -> None:
    (project / "p.yaml").write_text(PLAN.format(requests=BIG))
    filler = fill(disk, leave=1024 * 1024)
    done = apply_process(project, disk / "results")
    run = check_stopped(done.returncode, done.stderr, disk / "results", LOG)
    statuses = [j["status"] for j in manifest(run)["jobs"]]
    assert statuses == ["interrupted", "pending"]
    filler.unlink()  # space is freed
    again = apply_process(project, disk / "results", "--resume", str(run))
    check_resumed(again.returncode, again.stderr, run, BIG)


def test_a_file_size_limit_on_the_request_log(project: Path) -> None:
    """RLIMIT_FSIZE: EFBIG instead of ENOSPC, and no mount needed."""
    (project / "p.yaml").write_text(PLAN.format(requests=BIG))
    results = project / "results"
    done = apply_process(project, results, fsize=400 * 1024)
    run = check_stopped(done.returncode, done.stderr, results, LOG)
    assert "(File too large)" in done.stderr
    again = apply_process(project, results, "--resume", str(run))
    check_resumed(again.returncode, again.stderr, run, BIG)


def fill_before(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, disk: Path,
                when: Callable[..., bool] = lambda *a: True) -> None:
    """Fill `disk` the first time `module.name` is called with arguments `when` accepts."""
    real = getattr(module, name)
    filled: list[Path] = []

    def filling(*args: Any, **kwargs: Any) -> Any:
        if not filled and when(*args):
            filled.append(fill(disk))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, filling)


def first_summary_written(path: str, *_: Any) -> bool:
    return path.endswith("manifest.json") and any(Path(path).parent.glob("jobs/*[!l].json"))


@pytest.mark.parametrize("moment", ["job summary", "manifest", "index"])
def test_a_disk_that_fills_up_while_the_run_is_recorded(
    project: Path, disk: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], moment: str,
) -> None:
    from runner.results import index, store

    (project / "p.yaml").write_text(PLAN.format(requests=8))
    if moment == "job summary":
        fill_before(monkeypatch, store, "write_atomic", disk, lambda path, *_: "/jobs/" in path)
        failed = LOG
    elif moment == "manifest":
        fill_before(monkeypatch, store, "write_atomic", disk, first_summary_written)
        failed = lambda run: f"{run}/manifest.json"  # noqa: E731
    else:
        fill_before(monkeypatch, index, "upsert_job", disk)
        failed = lambda run: f"{disk}/results/index.sqlite"  # noqa: E731
    code, _, err = run_cli(capsys, "apply", "p.yaml", "--results", str(disk / "results"))
    run = check_stopped(code, err, disk / "results", failed)
    assert not [f for f in run.rglob("*") if ".tmp-" in f.name]
    monkeypatch.undo()
    monkeypatch.chdir(project)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(project / "configs"))
    (disk / "filler").unlink()
    code, _, err = run_cli(capsys, "apply", "p.yaml", "--results", str(disk / "results"),
                           "--resume", str(run))
    check_resumed(code, err, run, 8)


def test_a_report_that_does_not_fit_leaves_the_run_as_it_ended(
    project: Path, disk: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The results are complete: the run stays ok, a WARNING names the folder, and `runner
    report` writes the report once there is room."""
    from runner.report import render

    (project / "p.yaml").write_text(PLAN.format(requests=8))
    fill_before(monkeypatch, render, "write_atomic", disk)
    code, out, err = run_cli(capsys, "apply", "p.yaml", "--results", str(disk / "results"))
    (run,) = run_dirs(disk / "results", "p")
    assert code == EXIT_OK, err
    assert f"WARNING: could not write the reports into {run} (No space left on device)" in err
    assert manifest(run)["status"] == "ok" and "report:" not in out
    assert not (run / "report.html").exists()
    assert not [f for f in run.rglob("*") if ".tmp-" in f.name]
    (disk / "filler").unlink()
    code, _, err = run_cli(capsys, "report", str(run), "-o", str(run / "report.html"))
    assert code == EXIT_OK and (run / "report.html").stat().st_size > 0, err


def test_a_disk_too_full_to_start_a_run(project: Path, disk: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (project / "p.yaml").write_text(PLAN.format(requests=8))
    fill(disk, leave=64 * 1024)
    code, _, err = run_cli(capsys, "apply", "p.yaml", "--results", str(disk / "results"))
    assert code == EXIT_STORAGE and err.startswith(f"error: {disk}/results/"), err
    assert "full" in err or "No space left on device" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for run in run_dirs(disk / "results", "p"):
        if (run / "manifest.json").exists():
            assert manifest(run)["status"] == "interrupted"
