"""Outputs the user names (`apply --junit`, `report -o`, `plan --out`) are checked before the
work: an unwritable one is exit 2 before any run, render or inventory call. What write_output
writes into (`-`, /dev/stdout, a FIFO, a symlink) still works, and a FIFO nobody reads never
makes apply deaf to SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import manifest, run_dirs, wait_for
from cli_helpers import run_cli
from disk_helpers import read_only_view

from runner.errors import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK

SERVERS = """\
servers:
  sim: {kind: mock, models: [m1], ttft_ms: 0, itl_ms: 0, output_tokens: 4}
"""
PLAN = """\
version: 1
name: p
inventory: {server: sim, fallback: false}
benchmarks:
  - name: b
    models: all
    workload: {synthetic: {input_tokens: 4}, max_tokens: 4}
    load: {concurrency: 2, requests: 4}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "p.yaml").write_text(PLAN)
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused_before_the_work(capsys: pytest.CaptureFixture[str], target: str, what: str,
                            *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == EXIT_INVALID, err
    assert err.startswith(f"error: {target}: cannot write {what} (") and err.count("\n") == 1
    assert "choose a path that can be written" in err and not out
    return err


@pytest.mark.parametrize(("target", "reason"), [
    (".", "Is a directory"),
    ("a-file/junit.xml", "Not a directory"),
    ("missing/../a-file/x/junit.xml", "Not a directory"),
])
def test_junit_that_cannot_be_written_is_refused_before_the_run(
    project: Path, capsys: pytest.CaptureFixture[str], target: str, reason: str
) -> None:
    err = refused_before_the_work(capsys, target, "the JUnit report", "apply", "p.yaml",
                                  "--junit", target)
    assert f"({reason})" in err
    assert not (project / "results").exists()  # no run was made, no request sent


@pytest.mark.parametrize("target", ["ro/junit.xml", "ro/new/folder/junit.xml"])
def test_junit_on_a_read_only_mount_is_refused_before_the_run(
    project: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    (project / "shared").mkdir()
    with read_only_view(project / "shared", project / "ro"):
        err = refused_before_the_work(capsys, target, "the JUnit report", "apply", "p.yaml",
                                      "--junit", target)
    assert "(Read-only file system)" in err
    assert not (project / "results").exists()


def test_plan_out_and_report_o_are_refused_before_the_work(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.commands.report as report_command
    import runner.commands.targeting as targeting

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the expensive work started")

    code, _, err = run_cli(capsys, "apply", "p.yaml", "--no-report")
    assert code == EXIT_OK, err
    monkeypatch.setattr(targeting, "fetch", never)  # plan asks each server's inventory there
    monkeypatch.setattr(report_command, "render_report", never)
    refused_before_the_work(capsys, "a-file/lock.json", "the plan lock", "plan", "p.yaml",
                            "--out", "a-file/lock.json")
    refused_before_the_work(capsys, "results", "the report", "report", "latest",
                            "-o", "results")
    refused_before_the_work(capsys, "nofolder/r.html", "the report", "report", "latest",
                            "-o", "nofolder/r.html")


def test_junit_into_what_is_there_still_works(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A symlink is followed, `-` is stdout, and a FIFO is written for its reader."""
    (project / "real.xml").write_text("old")
    (project / "link.xml").symlink_to("real.xml")
    code, _, err = run_cli(capsys, "apply", "p.yaml", "--no-report", "--junit", "link.xml")
    assert code == EXIT_OK and (project / "link.xml").is_symlink(), err
    assert "<testsuites" in (project / "real.xml").read_text()
    code, out, err = run_cli(capsys, "apply", "p.yaml", "--no-report", "-q", "--junit", "-")
    assert code == EXIT_OK and "<testsuites" in out, err
    fifo = project / "junit.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    code, _, err = run_cli(capsys, "apply", "p.yaml", "--no-report", "--junit", str(fifo))
    reader.join(30)
    assert code == EXIT_OK and got and "<testsuites" in got[0], err
    assert fifo.exists() and not fifo.is_file()


def test_sigterm_while_a_fifo_waits_for_its_reader_is_exit_130(project: Path) -> None:
    """Opening a FIFO blocks until a reader comes, and Python retries it after a handler that
    only counts: apply sat there deaf to SIGTERM. The signal now ends the wait."""
    fifo = project / "junit.fifo"
    os.mkfifo(fifo)
    argv = [sys.executable, "-m", "runner", "apply", "p.yaml", "--no-report",
            "--junit", str(fifo)]
    proc = subprocess.Popen(argv, cwd=project, env=dict(os.environ), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: proc.poll() is not None or any(
            manifest(run)["status"] == "ok" for run in run_dirs(project / "results", "p")
            if (run / "manifest.json").exists()), what="the run to end")
        assert proc.poll() is None  # waiting for the FIFO's reader
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert f"WARNING: interrupted before the JUnit report was written to {fifo}" in err
    (run,) = run_dirs(project / "results", "p")
    assert manifest(run)["status"] == "interrupted"


def test_a_signal_before_the_junit_fifo_is_opened_skips_it_instead_of_waiting_forever(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A SIGTERM that lands after the run ended but before the JUnit FIFO is opened is only
    counted: opening the FIFO then waited for a reader that never came (seen under load)."""
    from runner.commands.conclusion import _save_junit
    from runner.interrupts import Interrupts

    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    signals = Interrupts()
    signals.hold()
    signals.count = 1  # the signal came already
    _save_junit(str(fifo), "<testsuites/>", signals)  # returns: no reader is ever waited for
    assert "interrupted before the JUnit report was written" in capsys.readouterr().err
