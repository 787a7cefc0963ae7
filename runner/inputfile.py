"""Reading the files a user gives runner (plans, configs, locks, datasets): regular files of a
bounded size only, so that a FIFO or `/dev/urandom` cannot hang it and `/dev/zero` cannot
exhaust its memory."""

from __future__ import annotations

import os
import stat

from runner.errors import InputError, Location

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | os.O_CLOEXEC


SAVE_IT = "save what it holds to a file and give that file"


def input_problem(path: str, what: str, limit: int, fix: str = SAVE_IT) -> str | None:
    """Why `path` (which exists) cannot be read as `what`, or None: not a regular file (`fix`
    says what to do), or more than `limit` bytes. Nothing is opened. OSError passes."""
    return _problem(os.stat(path), what, limit, fix)  # follows symlinks, as reading would


def read_input(path: str, what: str, limit: int, fix: str = SAVE_IT) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them. InputError (exit 2)
    naming the path, what it is and what to do (`fix`) for anything else; OSError as open()
    raises it (FileNotFoundError...), for the caller's own message."""
    data = b""
    problem = input_problem(path, what, limit, fix)  # before opening: a FIFO is never opened
    if problem is None:
        fd = os.open(path, _READ_FLAGS)  # non-blocking: a FIFO swapped in meanwhile still won't
        with os.fdopen(fd, "rb") as fh:
            problem = _problem(os.fstat(fd), what, limit, fix)
            data = fh.read(limit + 1) if problem is None else b""
        if problem is None and len(data) > limit:  # grew since: a file being written
            problem = _too_large(what, limit)
    if problem is not None:
        raise InputError(f"{path}: {problem}")
    return data


def utf8_text(data: bytes, path: str, what: str) -> str:
    """`data` (the file at `path`, e.g. `the dataset`) as text; InputError (exit 2) at the line
    and column of the first byte that is not UTF-8, not its offset in the file."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column "
                         f"{exc.start - start + 1}); save {what} as UTF-8",
                         Location(path, line)) from None


def _problem(info: os.stat_result, what: str, limit: int, fix: str) -> str | None:
    kind = next((name for test, name in _KINDS if test(info.st_mode)), None)
    if stat.S_ISDIR(info.st_mode):
        return f"{what} must be a file, not a folder; give a file in it"
    if kind is not None:
        return f"{what} must be a regular file, not {kind}; {fix}"
    if not stat.S_ISREG(info.st_mode):
        return f"{what} must be a regular file; {fix}"
    return _too_large(what, limit) if info.st_size > limit else None


def _too_large(what: str, limit: int) -> str:
    return (f"{what} is larger than the {limit // (1024 * 1024)} MiB runner reads; "
            "give a smaller file")
