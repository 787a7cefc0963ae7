"""The request log: a write the disk refuses leaves no torn line, and nothing after a gap."""

from __future__ import annotations

from pathlib import Path

import pytest
from disk_helpers import fill, small_disk

from runner.errors import StorageError
from runner.load.records import RequestRecord
from runner.results.requestlog import RequestLog, drop_torn_tail, read_log


def record(i: int) -> RequestRecord:
    return RequestRecord(index=i, sent_ms=float(i), e2e_ms=1.0, ok=True, error="x" * 300)


def test_a_full_disk_cuts_the_torn_line_back_and_stops_the_log(tmp_path: Path) -> None:
    heard: list[str] = []
    with small_disk(tmp_path / "disk", "64k") as disk:
        path = disk / "job.requests.jsonl"
        fill(disk, leave=8192)
        with RequestLog(str(path), on_failure=lambda: heard.append("full")) as log, \
                pytest.raises(StorageError) as failed:
            for i in range(10_000):
                log.write(record(i))
        message = str(failed.value)
        assert message.startswith(f"{path}: cannot write a request record (No space left")
        assert heard == ["full"]
        text = path.read_text()
        assert text.endswith("\n")
        written = [r.index for r in read_log(str(path))]
        assert written == list(range(len(written))) and len(written) > 5
        (disk / "filler").unlink()  # room again: the log still refuses to go on past the gap
        with pytest.raises(StorageError):
            log.write(record(len(written)))
        assert path.read_text() == text


def test_a_torn_tail_is_dropped_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with RequestLog(str(path)) as log:
        log.write(record(0))
    with path.open("a") as fh:
        fh.write('{"index": 1, "sent')
    assert [r.index for r in read_log(str(path))] == [0]
    drop_torn_tail(str(path))
    with RequestLog(str(path)) as log:
        log.write(record(2))
    assert [r.index for r in read_log(str(path))] == [0, 2]
