"""The Ray cluster a run's load is sent from (`runner apply --executor ray`, issue 15 §2):
connecting to it, and what it offers. Only this module and raypool import `ray`, and only
when the executor is Ray; `ray` is the optional extra runner[ray]."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import UsageError
from runner.printable import printable

NAMESPACE = "runner"
CONNECT_TIMEOUT_S = 5.0  # the cluster's address must answer a TCP connect within this
INIT_TIMEOUT_S = 60.0  # a trial ray.init in a child process must connect within this
# The trial: connect as a driver, say the cluster's CPUs, leave.
_TRIAL = ("import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR', "
          "log_to_driver=False, configure_logging=False); "
          "print(int(ray.cluster_resources().get('CPU', 0))); ray.shutdown()")
AUTO = "auto"  # Ray's own meaning: the cluster this machine is part of (its latest `ray start`)


@dataclass(frozen=True)
class Cluster:
    """A connected Ray cluster: its address as given, and its CPUs (Ray's `CPU` resource)."""

    address: str
    cpus: int


def ray_address(given: str | None, env: Mapping[str, str]) -> str:
    """The cluster's address: `--ray-address`, else $RAY_ADDRESS.

    Raises:
        UsageError: neither is set."""
    address = (given or env.get("RAY_ADDRESS") or "").strip()
    if not address:
        raise UsageError("--executor ray needs a cluster: give --ray-address HOST:PORT (the "
                         "head's GCS port, 6379 by default), or auto for the cluster this "
                         "machine joined with `ray start`, or set RAY_ADDRESS")
    return address


def connect(address: str) -> Cluster:
    """Connect this process (the driver) to the Ray cluster at `address` and return it,
    after a trial connection from a child process (`_trial`, bounded by INIT_TIMEOUT_S).
    SIGINT and SIGTERM keep runner's handlers (ray.init installs its own for SIGTERM).

    Raises:
        UsageError: `ray` is not installed, nothing (or no Ray head) answers at `address`
            within CONNECT_TIMEOUT_S, the trial does not connect within INIT_TIMEOUT_S, or
            Ray refuses to connect; one line each."""
    ray = _import_ray()
    if address != AUTO:
        _reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports to anyone
    _trial(address)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray.init(address=address, namespace=NAMESPACE, logging_level="ERROR",
                 log_to_driver=False, configure_logging=False)
        cpus = int(ray.cluster_resources().get("CPU", 0))
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
        raise UsageError(f"--ray-address {address}: Ray could not connect "
                         f"({type(exc).__name__}: {first_line(exc)}); check the address "
                         "and that this runner's Ray version is the cluster's") from None
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    if cpus < 1:
        raise UsageError(f"--ray-address {address}: the cluster has no CPU to place a worker "
                         "on; start its nodes with --num-cpus 1 or more")
    return Cluster(address, cpus)


def disconnect() -> None:
    """Leave the cluster (the driver's actors end with it); nothing if never connected."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs the ray package: pip install 'runner[ray]' "
                         "(the same Ray version as the cluster's)") from None
    return ray


def _trial(address: str) -> None:
    """Connect once from a child process first, bounded by INIT_TIMEOUT_S: ray.init retries
    for as long as the addresses a head gives for its nodes cannot be reached from here (seen:
    over 10 minutes), and ignores SIGINT and SIGTERM meanwhile. A signal during the trial
    ends it (the child is killed) and raises KeyboardInterrupt here, as at any other moment
    before the run exists.

    Raises:
        UsageError: the trial did not connect in time, or failed (its last line said why)."""
    try:
        done = subprocess.run([sys.executable, "-c", _TRIAL, address], capture_output=True,
                              text=True, timeout=INIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UsageError(f"--ray-address {address}: Ray did not connect within "
                         f"{INIT_TIMEOUT_S:g} s; the head answers, but the addresses it gives "
                         "for its nodes may not be reachable from here (check the head's "
                         "--node-ip-address)") from None
    if done.returncode != 0:
        said = [line for line in done.stderr.splitlines() if line.strip()]
        raise UsageError(f"--ray-address {address}: Ray could not connect "
                         f"({printable(said[-1].strip()) if said else f'exit {done.returncode}'})"
                         "; check the address and that this runner's Ray version is the "
                         "cluster's")


def _reachable(address: str) -> None:
    """A TCP connect to the GCS port: ray.init itself retries an address where nothing
    listens for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address}: give HOST:PORT (the head's GCS port, "
                         "6379 by default) or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S) as sock:
            speaks = _speaks_grpc(sock)
    except OSError as exc:
        raise UsageError(f"--ray-address {address}: no Ray cluster answers there "
                         f"({exc.strerror or exc}); start one with `ray start --head` or fix "
                         "the address") from None
    if not speaks:
        raise UsageError(f"--ray-address {address}: what answers there is not a Ray head (no "
                         "gRPC); give the head's GCS address (`ray start --head` prints it, "
                         "port 6379 by default)")


def _speaks_grpc(sock: socket.socket) -> bool:
    """Whether the server on `sock` answers HTTP/2's preface with a SETTINGS frame (RFC 9113
    §3.4), as Ray's GCS (gRPC) does at once; a web server, a silent port or a closed one does
    not, and ray.init would wait on it for minutes. Not checked with Ray's TLS (RAY_USE_TLS)."""
    if os.environ.get("RAY_USE_TLS", "0") not in ("", "0"):
        return True
    sock.settimeout(CONNECT_TIMEOUT_S)
    sock.sendall(_PREFACE)
    head = b""
    try:
        while len(head) < 9:
            chunk = sock.recv(9 - len(head))
            if not chunk:
                return False
            head += chunk
    except TimeoutError:
        return False
    return head[3] == _SETTINGS


_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS = 0x04  # the frame type a server's first frame must have


def first_line(exc: BaseException) -> str:
    """The first line of what `exc` says (Ray's errors run to many lines), printable."""
    text = str(exc).strip().splitlines()
    return printable(text[0]) if text else "no message"
