"""User-named outputs are written into, never replaced: files, symlinks, devices, FIFOs."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from runner.atomicfile import write_output


def test_a_new_or_regular_file_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.html"
    write_output(str(target), "one")
    write_output(str(target), "two")
    assert target.read_text() == "two" and not list(target.parent.glob(".tmp-*"))


def test_a_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    real, link = tmp_path / "real.html", tmp_path / "link.html"
    real.write_text("old")
    link.symlink_to(real)
    write_output(str(link), "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.html"
    link.symlink_to(tmp_path / "made.html")
    write_output(str(link), "made")
    assert link.is_symlink() and (tmp_path / "made.html").read_text() == "made"


def test_a_fifo_is_written_into_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(str(fifo), "through the pipe")
    reader.join(timeout=30)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_dev_null_stays_a_device() -> None:
    write_output(os.devnull, "discarded")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        write_output(str(tmp_path), "x")
