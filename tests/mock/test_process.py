"""The simulator's own process never outlives the runner that started it: kill -9 of the runner,
from its main thread or another, a parent-death signal alone, a parent already gone."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from proc_helpers import HAS_PROC, children, kill_leftover, wait_gone

from runner.mock.process import CHILD_ENV, PARENT_ENV

GONE_WITHIN_S = 15.0  # generous: the child stops gracefully, on a busy machine

# A stand-in for a runner: starts the simulator through mock_process (from its main thread or
# from another one), prints its own pid, then waits to be killed.
RUNNER = textwrap.dedent("""\
    import sys, threading, time
    from runner.mock.process import mock_process
    from runner.mock.server import MockConfig

    def serve():
        with mock_process(MockConfig(models=("m",))) as url:
            print(url, flush=True)
            time.sleep(3600)

    if sys.argv[1] == "thread":
        threading.Thread(target=serve, daemon=True).start()
        time.sleep(3600)
    else:
        serve()
""")


pytestmark = pytest.mark.skipif(not HAS_PROC, reason="needs /proc")


@pytest.mark.parametrize("started_from", ["main", "thread"])
def test_kill_9_of_the_runner_stops_its_simulator(started_from: str) -> None:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, started_from],
                              stdout=subprocess.PIPE, text=True)
    assert runner.stdout is not None
    assert runner.stdout.readline().startswith("http://127.0.0.1:")
    (sim,) = children(runner.pid)
    try:
        runner.kill()
        runner.wait()
        assert wait_gone(sim, GONE_WITHIN_S), f"the simulator (pid {sim}) outlived its runner"
    finally:
        kill_leftover(sim)


def start_child(parent_pid: str, stdin: int) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "runner", "mock-server", "--port", "0"]
    env = {**os.environ, CHILD_ENV: "1", PARENT_ENV: parent_pid}
    return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_parent_death_signal_alone_stops_the_simulator() -> None:
    """Its stdin pipe is held open by this test, so only the kernel's signal can stop it."""
    read_end, write_end = os.pipe()
    middle = textwrap.dedent(f"""\
        import os, subprocess, sys, time
        argv = [sys.executable, "-m", "runner", "mock-server", "--port", "0"]
        env = {{**os.environ, "{CHILD_ENV}": "1", "{PARENT_ENV}": str(os.getpid())}}
        child = subprocess.Popen(argv, stdin={read_end}, stdout=subprocess.PIPE, text=True,
                                 env=env, pass_fds=[{read_end}])
        child.stdout.readline()
        print(child.pid, flush=True)
        time.sleep(3600)
    """)
    runner = subprocess.Popen([sys.executable, "-c", middle], stdout=subprocess.PIPE, text=True,
                              pass_fds=[read_end])
    os.close(read_end)
    try:
        assert runner.stdout is not None
        sim = int(runner.stdout.readline())
        runner.kill()
        runner.wait()
        assert wait_gone(sim, GONE_WITHIN_S), f"the simulator (pid {sim}) outlived its runner"
    finally:
        os.close(write_end)
        kill_leftover(sim)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_simulator_whose_runner_died_before_it_asked_stops_at_once() -> None:
    """The runner died between fork and prctl: the child's parent is no longer the runner."""
    read_end, write_end = os.pipe()
    child = start_child(str(2**22 + 1), read_end)  # a pid that is not the child's parent
    os.close(read_end)
    try:
        assert child.wait(GONE_WITHIN_S) != 0
        assert child.stdout is not None and "listening" not in child.stdout.read()
    finally:
        os.close(write_end)
        kill_leftover(child.pid)


def test_a_simulator_whose_stdin_ends_stops_cleanly() -> None:
    """The runner closes the pipe (or exits): the simulator stops as on SIGTERM, exit 0."""
    read_end, write_end = os.pipe()
    child = start_child("", read_end)
    os.close(read_end)
    try:
        assert child.stdout is not None and "listening on" in child.stdout.readline()
        os.close(write_end)
        assert child.wait(GONE_WITHIN_S) == 0
    finally:
        kill_leftover(child.pid)
