"""User-named outputs are written into, never replaced: files, symlinks, devices, FIFOs."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from runner.atomicfile import check_output, write_output
from runner.errors import InputError


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


def test_check_output_accepts_what_write_output_can_write_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """A FIFO nobody reads is not opened (that would block); a dangling symlink's folder, a
    missing folder that may be made, /dev/null and /dev/stdout pass; nothing is left behind."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dangling").symlink_to(tmp_path / "target.xml")
    for path in (fifo, tmp_path / "dangling", tmp_path / "new.xml", "/dev/null", "/dev/stdout"):
        check_output(str(path), "it")
    check_output(str(tmp_path / "a" / "b" / "x.xml"), "it", make_folder=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "fifo"]


@pytest.mark.parametrize(("target", "reason"), [
    ("", "Is a directory"),
    ("file/x.xml", "Not a directory"),
    ("missing/x.xml", "No such file or directory"),
])
def test_check_output_refuses_what_write_output_would_fail_on(
    tmp_path: Path, target: str, reason: str
) -> None:
    (tmp_path / "file").write_text("x")
    path = str(tmp_path / target)
    with pytest.raises(InputError, match=rf"^{path}: cannot write it \({reason}\)"):
        check_output(path, "it")
