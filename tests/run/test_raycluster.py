"""The address check of `--executor ray` (runner.run.raycluster): something that accepts a
TCP connection but is not a Ray head (a web server, a silent port) is one line and exit 2
within seconds, instead of ray.init waiting on it for minutes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from runner.errors import UsageError
from runner.run import raycluster

SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty HTTP/2 SETTINGS frame


def _serve(answer: bytes | None) -> Iterator[str]:
    """A loopback port that reads what comes and answers `answer` (None: says nothing)."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def accept() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            if answer is not None:
                conn.sendall(answer)
            done.wait(10)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        server.close()
        thread.join(10)


@pytest.fixture
def web_port() -> Iterator[str]:
    yield from _serve(b"HTTP/1.0 400 Bad Request\r\n\r\n")


@pytest.fixture
def silent_port() -> Iterator[str]:
    yield from _serve(None)


@pytest.fixture
def grpc_port() -> Iterator[str]:
    yield from _serve(SETTINGS)


def test_a_port_that_is_not_a_ray_head_is_refused(web_port: str) -> None:
    with pytest.raises(UsageError) as caught:
        raycluster._reachable(web_port)
    assert str(caught.value) == (
        f"--ray-address {web_port}: what answers there is not a Ray head (no gRPC); give "
        "the head's GCS address (`ray start --head` prints it, port 6379 by default)")


def test_a_port_that_never_answers_is_refused_in_bounded_time(
        silent_port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(raycluster, "CONNECT_TIMEOUT_S", 0.5)
    started = time.monotonic()
    with pytest.raises(UsageError, match="is not a Ray head"):
        raycluster._reachable(silent_port)
    assert time.monotonic() - started < 5


def test_a_grpc_port_passes(grpc_port: str) -> None:
    raycluster._reachable(grpc_port)


def test_a_connection_that_never_completes_is_one_line_within_the_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Seen: a head whose nodes' addresses cannot be reached from here kept ray.init retrying
    # for over 10 minutes, deaf to SIGINT and SIGTERM; the trial in a child process is bounded.
    monkeypatch.setattr(raycluster, "_TRIAL", "import time; time.sleep(60)")
    monkeypatch.setattr(raycluster, "INIT_TIMEOUT_S", 1.0)
    started = time.monotonic()
    with pytest.raises(UsageError) as caught:
        raycluster._trial("127.0.0.1:6379")
    assert time.monotonic() - started < 30
    assert caught.value.lines() == [
        "--ray-address 127.0.0.1:6379: Ray did not connect within 1 s; the head answers, but "
        "the addresses it gives for its nodes may not be reachable from here (check the "
        "head's --node-ip-address)"]


def test_a_trial_that_fails_says_its_last_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(raycluster, "_TRIAL",
                        "import sys; print('noise', file=sys.stderr); "
                        "sys.exit('ConnectionError: version mismatch')")
    with pytest.raises(UsageError) as caught:
        raycluster._trial("127.0.0.1:6379")
    assert caught.value.lines() == [
        "--ray-address 127.0.0.1:6379: Ray could not connect (ConnectionError: version "
        "mismatch); check the address and that this runner's Ray version is the cluster's"]
