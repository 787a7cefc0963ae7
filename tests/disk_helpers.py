"""Helpers for tests about disks: a small tmpfs that fills up, a read-only view of a folder.

Both need `mount` (root, or a user namespace that allows it); a test that cannot have one is
skipped with the reason. chmod is no substitute: root writes through any mode bits."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command: cannot make a small or read-only filesystem")
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"mounting is not permitted here ({done.stderr.strip()}): cannot make a "
                    "small or read-only filesystem")


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=False)


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. `512k`) mounted on `path` (created) for the block."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        _unmount(path)


@contextmanager
def read_only_view(source: Path, path: Path) -> Iterator[Path]:
    """`source` bind-mounted read-only on `path` (created) for the block."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(source), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield path
    finally:
        _unmount(path)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the filesystem of `disk` up to `leave` bytes free with one file; returns it."""
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        chunk = b"\0" * 65536
        try:
            while shutil.disk_usage(disk).free > leave + len(chunk):
                fh.write(chunk)
                fh.flush()
            while shutil.disk_usage(disk).free > leave:
                fh.write(b"\0" * 4096)
                fh.flush()
        except OSError:
            pass
    return filler
