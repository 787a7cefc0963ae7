"""File locks that die with their process: a second process is refused, naming the holder."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from apply_helpers import held_by_another_process

from runner.errors import EXIT_INVALID, BusyError
from runner.filelock import Holder, acquire, read_holder

HOLD = """\
import sys
from runner.filelock import acquire
lock = acquire(sys.argv[1], "thing", "hint", command="holder")
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_process_is_refused_with_the_holders_pid_host_and_time(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "x.lock"
    with held_by_another_process(HOLD, str(path)) as holder, pytest.raises(BusyError) as caught:
        acquire(str(path), "the thing", "wait for it")
    assert caught.value.exit_code == EXIT_INVALID
    [line] = caught.value.lines()
    assert line.startswith(f"the thing is locked by pid {holder.pid} on host "
                           f"{socket.gethostname()}, since 20")
    assert line.endswith(", `holder`; wait for it")


def test_the_lock_is_free_as_soon_as_its_process_ends(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with held_by_another_process(HOLD, str(path)):
        pass
    with acquire(str(path), "thing", "hint", command="me") as lock:
        assert read_holder(lock.path) == Holder(os.getpid(), socket.gethostname(),
                                                read_holder(lock.path).since, "me")


def test_a_timeout_waits_for_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    seen: list[Holder] = []
    with held_by_another_process(HOLD, str(path)) as holder:
        with pytest.raises(BusyError):
            acquire(str(path), "thing", "hint", timeout_s=0.3, on_wait=seen.append)
        assert [h.pid for h in seen] == [holder.pid]
        assert holder.stdin is not None
        threading.Timer(0.3, holder.stdin.close).start()  # the holder ends while we wait
        with acquire(str(path), "thing", "hint", timeout_s=60, on_wait=seen.append):
            assert holder.wait(30) == 0
    assert [h.pid for h in seen] == [holder.pid, holder.pid]


def test_an_unreadable_holder_is_described_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_text("not json")
    assert read_holder(str(path), tries=1).describe().startswith("a process that has not said")
    path.write_text(json.dumps({"pid": "12", "host": 5}))
    assert read_holder(str(path), tries=1) == Holder()  # wrong types are dropped


def test_a_lock_that_cannot_be_made_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(BusyError) as caught:
        acquire(str(tmp_path / "file" / "x.lock"), "server 's'", "hint")
    [line] = caught.value.lines()
    assert line.startswith(f"server 's': cannot open its lock file {tmp_path}/file/x.lock (")
    assert line.endswith("make that folder writable (server locks live in $RUNNER_CACHE_DIR)")


def test_a_released_lock_names_no_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with acquire(str(path), "thing", "hint", command="me"):
        assert read_holder(str(path)).command == "me"
    assert read_holder(str(path), tries=1) == Holder()
