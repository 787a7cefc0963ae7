"""Locks that die with their process: `fcntl.flock` on a file whose text says who holds it.

A pid file can outlive its process and then locks out everyone; an flock is dropped by the
kernel when the process ends, however it ends. The holder's pid, host and start time are written
into the file only so that a refused process can say who is in the way."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, BinaryIO

from runner.errors import BusyError

POLL_S = 0.2  # how often a waiting process tries again


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as the holder wrote it."""

    pid: int | None = None
    host: str | None = None
    since: str | None = None
    command: str | None = None

    def describe(self) -> str:
        if self.pid is None:
            return "a process that has not said who it is yet"
        text = f"pid {self.pid} on host {self.host or '?'}, since {self.since or '?'}"
        return text + (f", `{self.command}`" if self.command else "")

    @classmethod
    def me(cls, command: str | None) -> Holder:
        return cls(os.getpid(), socket.gethostname(),
                   datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), command)


class FileLock:
    """A held lock; `release`, the end of the process, or the lock being garbage-collected (its
    file closes) lets the next one in."""

    def __init__(self, file: BinaryIO, path: str) -> None:
        self.file, self.path = file, path

    def release(self) -> None:
        if not self.file.closed:
            os.ftruncate(self.file.fileno(), 0)  # the next holder is never confused with us
            fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
            self.file.close()

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def acquire(path: str, what: str, hint: str, *, command: str | None = None,
            timeout_s: float = 0.0, on_wait: Callable[[Holder], None] | None = None) -> FileLock:
    """Lock `path` (created if missing), waiting up to `timeout_s`; else BusyError naming the
    holder: "`what` is locked by <holder>; `hint`"."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    except OSError as exc:
        raise BusyError(f"{what}: cannot open its lock file {path} ({exc.strerror}); make "
                        "that folder writable (server locks live in $RUNNER_CACHE_DIR)") from None
    file = os.fdopen(fd, "r+b", buffering=0)
    try:
        _wait(fd, path, what, hint, timeout_s, on_wait)
        _write_holder(fd, Holder.me(command))
    except BaseException:
        file.close()
        raise
    return FileLock(file, path)


def _wait(fd: int, path: str, what: str, hint: str, timeout_s: float,
          on_wait: Callable[[Holder], None] | None) -> None:
    deadline = time.monotonic() + max(timeout_s, 0.0)
    told = False
    while not _try_lock(fd):
        left = deadline - time.monotonic()
        if left <= 0:
            raise BusyError(f"{what} is locked by {read_holder(path).describe()}; {hint}")
        if on_wait is not None and not told:
            on_wait(read_holder(path))
            told = True
        time.sleep(min(POLL_S, left))


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_holder(fd: int, holder: Holder) -> None:
    text = json.dumps({"pid": holder.pid, "host": holder.host, "since": holder.since,
                       "command": holder.command}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, text + b"\n", 0)


def read_holder(path: str, tries: int = 5) -> Holder:
    """The holder written in `path`; empty while a new holder is between locking and writing."""
    for _ in range(tries):
        data = _read_json(path)
        if isinstance(data, dict):
            return Holder(_int(data.get("pid")), _str(data.get("host")),
                          _str(data.get("since")), _str(data.get("command")))
        time.sleep(0.05)
    return Holder()


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError):
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
