"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from contextlib import suppress
from typing import IO, Any

from runner.errors import cannot_write


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


def check_output(path: str, what: str, make_folder: bool = False) -> None:
    """Refuse, before a command's expensive work, an output that `write_output` could not
    write: the RunnerError naming `path` and `what` it is (exit 2, or 74 on a full disk).
    Nothing is written there and nothing opened (a FIFO would block): a device, FIFO or socket
    must be writable; a regular or new file needs a folder that takes a new file (probed with
    one, removed at once); a missing folder, with `make_folder`, an ancestor that can hold it."""
    try:
        _probe_output(path, make_folder)
    except OSError as exc:
        raise cannot_write(path, exc, what, "choose a path that can be written") from None


def _probe_output(path: str, make_folder: bool) -> None:
    try:
        mode: int | None = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if mode is not None and not stat.S_ISREG(mode):
        if not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder) and make_folder:
        _check_new_folder(folder)
        return
    probe = os.path.join(folder, f".tmp-probe-{secrets.token_hex(4)}")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.unlink(probe)


def _check_new_folder(folder: str) -> None:
    """The nearest existing ancestor of `folder` is a folder that takes a new entry."""
    parent = folder
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        error = errno.EROFS if _read_only(parent) else errno.EACCES
        raise OSError(error, os.strerror(error), parent)


def _read_only(folder: str) -> bool:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)


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
