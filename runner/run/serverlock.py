"""One benchmark per server at a time, across processes: a lock per server URL in the user's
cache dir. Two runs against one server at once measure each other's load, not the server's."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from urllib.parse import urlsplit

from runner.cache import cache_dir
from runner.filelock import FileLock, Holder, acquire
from runner.inventory.serverurl import base_url

LOCKS_DIR = "locks"


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def server_key(url: str) -> str:
    """The URL that names a server: scheme, host and port in lower case (the scheme's default
    port written out; localhost, 127.0.0.1 and ::1 are one host), path without a trailing slash
    or `/v1`, no credentials, query or fragment."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    host = "localhost" if host in _LOOPBACK else host
    port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(scheme)
    path = base_url(parts.path)  # the same root URL every client uses
    return f"{scheme}://{host}{f':{port}' if port else ''}{path}"


def _shown(url: str) -> str:
    """The URL as the user wrote it, less any credentials."""
    parts = urlsplit(url.strip())
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    netloc = f"{host or ''}{f':{parts.port}' if parts.port is not None else ''}"
    return parts._replace(netloc=netloc).geturl().rstrip("/")


def lock_path(env: Mapping[str, str], url: str) -> str:
    digest = hashlib.sha256(server_key(url).encode()).hexdigest()[:24]
    return os.path.join(cache_dir(env), LOCKS_DIR, f"server-{digest}.lock")


def lock_servers(stack: ExitStack, servers: Sequence[tuple[str, str]], env: Mapping[str, str],
                 *, timeout_s: float, command: str,
                 on_wait: Callable[[str, Holder], None] | None = None) -> list[FileLock]:
    """Lock every (name, url) server, each URL once, in a fixed order (two runs that share two
    servers never deadlock); the locks are released when `stack` closes."""
    by_key: dict[str, str] = {}
    for name, url in servers:
        by_key.setdefault(server_key(url), f"server '{name}' ({_shown(url)})")
    held = []
    for key in sorted(by_key):
        what = by_key[key]
        notify = None if on_wait is None else _bind(on_wait, what)
        hint = ("one benchmark per server at a time; wait for it with --lock-timeout DURATION "
                "(e.g. --lock-timeout 30m), or run later")
        held.append(stack.enter_context(acquire(lock_path(env, key), what, hint, command=command,
                                                timeout_s=timeout_s, on_wait=notify)))
    return held


def _bind(on_wait: Callable[[str, Holder], None], what: str) -> Callable[[Holder], None]:
    return lambda holder: on_wait(what, holder)
