"""The executor: one server's jobs take turns, different servers run side by side (--forks)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runner.inventory.config import Server
from runner.plan.expand import Job
from runner.run import executor
from runner.run.executor import Context, JobSpec, execute


def spec(name: str, server: str, url: str) -> JobSpec:
    job = Job(f"b/{name}", name, "b", name, {}, {"requests": 1})
    return JobSpec(job, Server(server, url))


def overlaps(specs: list[JobSpec], monkeypatch: pytest.MonkeyPatch) -> int:
    """The most jobs that ran at the same time."""
    running: list[str] = []
    peak = 0

    async def fake_run_job(s: JobSpec, ctx: Context) -> dict[str, Any]:
        nonlocal peak
        running.append(s.job.id)
        peak = max(peak, len(running))
        await asyncio.sleep(0.05)
        running.remove(s.job.id)
        return {"id": s.job.id, "status": "ok"}

    monkeypatch.setattr(executor, "run_job", fake_run_job)

    async def main() -> list[dict[str, Any]]:
        ctx = Context(None, None, {}, lambda s: None, asyncio.Event())  # type: ignore[arg-type]
        return await execute(specs, ctx, forks=4)

    assert [s["id"] for s in asyncio.run(main())] == [s.job.id for s in specs]
    return peak


def test_two_names_for_one_server_url_never_run_side_by_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    specs = [spec("m1", "a", "http://h:4000"), spec("m2", "b", "http://H:4000/")]
    assert overlaps(specs, monkeypatch) == 1


def test_different_servers_run_side_by_side_with_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = [spec("m1", "a", "http://h:4000"), spec("m2", "b", "http://h:4001")]
    assert overlaps(specs, monkeypatch) == 2
