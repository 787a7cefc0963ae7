"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from contextlib import suppress
from typing import IO, Any


def write_atomic(path: str, text: str | bytes) -> None:
    """Replace `path` with `text` (bytes are written as they are): readers see the old file or
    the new one, never a mix."""
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f".tmp-{os.path.basename(path)}-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with _open(fd, text) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def write_output(path: str, text: str | bytes) -> None:
    """Write an output the user named (`report -o`, `apply --junit`, `plan --out`): written
    into, never replaced. A regular or new file is replaced atomically, through a symlink to
    its target; a device, FIFO or socket (`/dev/null`, `/dev/stdout`, a pipe) is opened and
    written as it is, as a shell redirection would. Raises OSError (IsADirectoryError for a
    folder, FileNotFoundError when the folder to write in is missing)."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if mode is not None and not stat.S_ISREG(mode):
        with open(path, "wb") as fh:
            fh.write(text if isinstance(text, bytes) else text.encode("utf-8"))
        return
    write_atomic(os.path.realpath(path) if os.path.islink(path) else path, text)


def _open(fd: int, text: str | bytes) -> IO[Any]:
    return os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8")


def _fsync_dir(folder: str) -> None:
    # Makes the rename itself durable; directories cannot be opened like this on Windows.
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
