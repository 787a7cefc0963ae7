"""A real `runner apply` with an embedded simulator: kill -9 of apply leaves no simulator
behind, and SIGTERM at any moment of start-up is exit 130, never a death by signal (143)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from apply_helpers import wait_for
from proc_helpers import HAS_PROC, children, kill_leftover, signal_mask, wait_gone

from runner.errors import EXIT_INTERRUPTED

pytestmark = pytest.mark.skipif(not HAS_PROC, reason="needs /proc")

SERVERS = """\
servers:
  sim: {kind: mock, models: [m1], ttft_ms: 20, itl_ms: 25, output_tokens: 64}
"""
PLAN = """\
version: 1
name: p
inventory: {server: sim, fallback: false}
benchmarks:
  - name: b
    models: all
    workload: {synthetic: {input_tokens: 16}, max_tokens: 200}
    load: {concurrency: 4, requests: 400, request_timeout_s: 20}
"""
TERM = signal.SIGTERM


def project(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "p.yaml").write_text(PLAN)
    return {**os.environ, "RUNNER_CONFIG_DIR": str(tmp_path / "configs")}


def apply(tmp_path: Path, env: dict[str, str], **popen: object) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "runner", "apply", "p.yaml", "--no-report"]
    return subprocess.Popen(argv, cwd=tmp_path, env=env, text=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, **popen)  # type: ignore[call-overload]


def sending(tmp_path: Path) -> bool:
    return any((tmp_path / "results" / "p").glob("*/jobs/*.requests.jsonl"))


@pytest.mark.parametrize("trial", range(3))
def test_kill_9_of_apply_mid_run_leaves_no_simulator(tmp_path: Path, trial: int) -> None:
    env = project(tmp_path)
    proc = apply(tmp_path, env)
    sims: list[int] = []
    try:
        wait_for(lambda: proc.poll() is not None or (sending(tmp_path)
                                                     and bool(children(proc.pid))),
                 what="the first job's requests")
        sims = children(proc.pid)
        assert proc.poll() is None and len(sims) == 1
        time.sleep(0.1 * trial)  # a few moments of the run
        proc.kill()
        proc.communicate()
        assert wait_gone(sims[0], 15.0), f"the simulator (pid {sims[0]}) outlived apply"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pid in sims:
            kill_leftover(pid)


def test_sigterm_held_from_runner_s_first_line_is_exit_130() -> None:
    """The window the entry point had: a signal after runner's first line but before its
    handler existed (importing `signal` and `typing` took ~20 ms) killed it with -15."""
    script = ("import os, signal, sys; sys.argv = ['runner', '--version']; "
              "import runner.__main__ as m; os.kill(os.getpid(), signal.SIGTERM); "
              "m.start()")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == EXIT_INTERRUPTED, done
    assert done.stderr.strip() == "interrupted" and "runner " not in done.stdout


def runner_started(pid: int) -> bool:
    """runner's first line ran: SIGTERM is blocked (held for the handler) or caught."""
    return bool((signal_mask(pid, "SigBlk") | signal_mask(pid, "SigCgt")) & (1 << (TERM - 1)))


@pytest.mark.parametrize("group", [False, True], ids=["apply", "process-group"])
def test_sigterm_at_any_moment_of_start_up_is_exit_130(tmp_path: Path, group: bool) -> None:
    """From runner's first line on, through importing, the inventory and the simulator's start
    (with `group`, the simulator gets the signal too, as from a CI runner's cancel)."""
    env = project(tmp_path)
    codes = {}
    for delay in (0.0, 0.01, 0.05, 0.15, 0.3, 0.6, 1.0):
        proc = apply(tmp_path, env, start_new_session=True)
        try:
            wait_for(lambda: proc.poll() is not None or runner_started(proc.pid),  # noqa: B023
                     what="runner's first line")
            time.sleep(delay)
            os.killpg(proc.pid, TERM) if group else proc.send_signal(TERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        assert "Traceback" not in err, err
        codes[delay] = proc.returncode
    assert set(codes.values()) == {EXIT_INTERRUPTED}, codes
