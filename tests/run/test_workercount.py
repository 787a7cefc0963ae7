"""How many worker processes send a job: `--workers N|auto`."""

from __future__ import annotations

from typing import Any

import pytest

from runner.run.workercount import parse_workers, workers_for


@pytest.mark.parametrize(("params", "asked", "cpus", "expected"), [
    ({"concurrency": 64, "requests": 1000}, 1, 8, 1),
    ({"concurrency": 64, "requests": 1000}, 4, 8, 4),
    ({"concurrency": 64, "requests": 1000}, 16, 2, 16),  # an explicit N is not capped by cores
    ({"concurrency": 3, "requests": 1000}, 8, 8, 3),  # never a worker without a stream
    ({"concurrency": 64, "requests": 2}, 8, 8, 2),  # nor without a request
    ({"concurrency": 64, "requests": 1000}, "auto", 8, 1),
    ({"concurrency": 129, "requests": 1000}, "auto", 8, 2),
    ({"concurrency": 1024, "duration_s": 60}, "auto", 4, 4),  # at most one per core
    ({"rate": 150.0, "requests": 1000}, "auto", 8, 1),
    ({"rate": 450.0, "requests": 1000}, "auto", 8, 3),
    ({"rate": 450.0, "requests": 1000, "max_concurrency": 2}, "auto", 8, 2),
    ({"rate": 450.0}, "auto", 8, 1),  # an endless open loop: nothing to deal out
    ({"replay": {"speed": 1}, "requests": 100}, "auto", 8, 1),
    ({"replay": {"speed": 1}, "requests": 100}, 3, 8, 3),
    ({"concurrency": 256, "requests": 1000, "session": {"turns": 3}}, "auto", 8, 1),
    ({"concurrency": 256, "requests": 1000, "session": {"turns": 3}}, 4, 8, 1),
])
def test_workers_for(params: dict[str, Any], asked: int | str, cpus: int, expected: int) -> None:
    assert workers_for(params, asked, cpus) == expected


@pytest.mark.parametrize(("text", "expected"), [("1", 1), ("12", 12), ("auto", "auto")])
def test_parse_workers(text: str, expected: int | str) -> None:
    assert parse_workers(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", ""])
def test_parse_workers_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="give a whole number from 1, or auto"):
        parse_workers(text)
