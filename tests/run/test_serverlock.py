"""The server lock's key: one lock per server, however its URL is written."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from runner.errors import BusyError
from runner.run.serverlock import lock_path, lock_servers, server_key


@pytest.mark.parametrize(("a", "b"), [
    ("http://127.0.0.1:4000", "http://127.0.0.1:4000/"),
    ("http://Proxy.Example:4000/", "HTTP://proxy.example:4000"),
    ("https://user:secret@proxy.example/v1/", "https://proxy.example/v1"),
    ("http://h:1?x=1#f", "http://h:1"),
    ("http://localhost:18555", "http://127.0.0.1:18555"),  # two applies ran at once on these
    ("http://[::1]:4000/v1", "http://127.0.0.1:4000"),
    ("http://proxy.example", "http://proxy.example:80"),
    ("https://proxy.example/v1", "https://proxy.example:443"),
])
def test_one_server_one_key(a: str, b: str) -> None:
    assert server_key(a) == server_key(b)
    assert lock_path({"RUNNER_CACHE_DIR": "/c"}, a) == lock_path({"RUNNER_CACHE_DIR": "/c"}, b)


@pytest.mark.parametrize(("a", "b"), [
    ("http://h:4000", "http://h:4001"),
    ("http://h:4000/a", "http://h:4000/b"),
    ("http://h", "https://h"),
    ("http://127.0.0.1:4000", "http://127.0.0.2:4000"),
])
def test_different_servers_different_keys(a: str, b: str) -> None:
    assert server_key(a) != server_key(b)


def test_the_key_never_carries_credentials() -> None:
    assert "secret" not in server_key("https://user:secret@proxy.example/")


def test_two_names_for_one_url_take_one_lock_and_it_is_in_the_cache_dir(tmp_path: Path) -> None:
    env = {"RUNNER_CACHE_DIR": str(tmp_path)}
    with ExitStack() as stack:
        held = lock_servers(stack, [("a", "http://h:1/"), ("b", "http://h:1")], env,
                            timeout_s=0, command="test")
        assert len(held) == 1 and held[0].path.startswith(str(tmp_path / "locks"))
    with ExitStack() as stack:  # released with the stack
        lock_servers(stack, [("a", "http://h:1")], env, timeout_s=0, command="test")


def test_the_lock_is_exclusive_even_within_one_process(tmp_path: Path) -> None:
    env = {"RUNNER_CACHE_DIR": str(tmp_path)}
    with ExitStack() as first, ExitStack() as second:
        lock_servers(first, [("a", "http://h:1")], env, timeout_s=0, command="first")
        with pytest.raises(BusyError, match=r"server 'b' \(http://h:1\) is locked by pid"):
            lock_servers(second, [("b", "http://h:1/")], env, timeout_s=0, command="second")
