"""A real local Ray cluster for the tests of `--executor ray` (issue 15 §2): `ray start --head`
on loopback with a few CPUs and no dashboard, in its own process group, stopped at the end.

RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes Ray take 127.0.0.1 as the node's address (it
otherwise replaces a loopback --node-ip-address by the machine's outward address, and its
servers listen there too). Its workers import runner from this checkout (PYTHONPATH)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPUS = 4  # Ray's logical CPUs: actors ask for 1 each; two jobs of two workers side by side
START_TIMEOUT_S = 90.0
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass(frozen=True)
class RayCluster:
    """A running head: its GCS address (host:port) and the environment a driver needs."""

    address: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_binary() -> str:
    found = Path(sys.executable).parent / "ray"
    return str(found) if found.exists() else (shutil.which("ray") or "ray")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """The session's Ray head (skipped when ray is not installed, except under CI=true)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("ray is not installed (pip install -e '.[dev]')")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    env = {**os.environ, **LOOPBACK_ENV,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    argv = [_ray_binary(), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
            "--port", str(port), "--num-cpus", str(CPUS), "--include-dashboard=false",
            "--disable-usage-stats", "--temp-dir", temp]
    log = open(Path(temp) / "start.log", "w")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ray start failed: " + (Path(temp) / "start.log").read_text())
            time.sleep(0.2)
        yield RayCluster(f"127.0.0.1:{port}", {**LOOPBACK_ENV, "PYTHONPATH": env["PYTHONPATH"]})
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the head's process group: every process of this throwaway cluster (`ray start
    --block` takes over 30 s to stop on SIGTERM; nothing of the cluster is kept)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
