"""A job's request log, jobs/<slug>.requests.jsonl: one JSON line per request, appended as each
finishes, never a torn line left behind, and read back whatever a crash left."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any, NoReturn

from runner.errors import InputError, RunnerError, cannot_write
from runner.load.records import RequestRecord


class RequestLog:
    """One job's append-only JSONL of request records, each written to the file at once.

    A write that fails (a full disk) is cut back to the end of the last whole line, and raises
    a RunnerError naming the file (StorageError, exit 74, when the disk is full); so does every
    write after it, so that a log is never continued past a gap. `on_failure` hears of it first.
    """

    def __init__(self, path: str, on_failure: Callable[[], None] | None = None) -> None:
        drop_torn_tail(path)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        self._end = os.lseek(self._fd, 0, os.SEEK_END)
        self._on_failure = on_failure
        self.failed: RunnerError | None = None

    def write(self, record: RequestRecord) -> None:
        if self.failed is not None:
            raise self.failed
        line = (json.dumps(record.to_json(), separators=(",", ":")) + "\n").encode("utf-8")
        try:
            written = 0
            while written < len(line):
                written += os.write(self._fd, line[written:])
        except OSError as exc:
            with suppress(OSError):  # what did get written is a torn line: take it back
                os.ftruncate(self._fd, self._end)
            self._fail(exc)
        self._end += len(line)

    def _fail(self, exc: OSError) -> NoReturn:
        self.failed = cannot_write(self.path, exc, "a request record")
        if self._on_failure is not None:
            self._on_failure()
        raise self.failed

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_log(path: str) -> list[RequestRecord]:
    """The records of the request log at `path` (none when it does not exist); a torn last
    line (a crash mid-write) is skipped, a corrupt line before it is an InputError."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except FileNotFoundError:
        return []
    return [RequestRecord.from_json(data) for data in _parse_jsonl(lines, path)]


def drop_torn_tail(path: str) -> None:
    """Cut a partial last line left by a crash, so that new records start on their own line."""
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return
    with fh:
        end = pos = fh.seek(0, os.SEEK_END)
        while pos > 0:
            start = max(0, pos - 65536)
            fh.seek(start)
            chunk = fh.read(pos - start)
            cut = chunk.rfind(b"\n")
            if cut == len(chunk) - 1 and pos == end:
                return
            if cut >= 0:
                fh.truncate(start + cut + 1)
                return
            pos = start
        fh.truncate(0)


def _parse_jsonl(lines: Sequence[str], path: str) -> Iterator[dict[str, Any]]:
    last = len(lines) - 1
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if isinstance(data, dict):
            yield data
        elif n != last:  # only the last line can be torn by a crash
            raise InputError(f"{path}:{n + 1}: corrupt request record")
