"""The executor: one server's jobs take turns, different servers run side by side (--forks);
how a job's end is judged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runner.inventory.config import Server
from runner.load.records import RequestRecord
from runner.plan.expand import Job
from runner.run import executor
from runner.run.executor import Context, JobSpec, execute, judge
from runner.run.metrics import summarize


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


def judged(records: list[RequestRecord], stopped: str) -> tuple[str, str | None]:
    metrics = summarize(records)
    first = next((r.error for r in records if r.error), None)
    return judge(metrics, stopped, 0.0, first)


def cancelled(index: int) -> RequestRecord:
    return RequestRecord(index=index, error_kind="cancelled", error="stopped", e2e_ms=5.0)


def test_requests_cut_at_the_end_of_the_duration_do_not_fail_the_job() -> None:
    ok = RequestRecord(index=0, ok=True, ttft_ms=1.0, e2e_ms=2.0, output_tokens=1)
    assert judged([ok, cancelled(1), cancelled(2)], "duration") == ("ok", None)


def test_a_duration_job_whose_requests_were_all_cut_fails_and_says_so() -> None:
    assert judged([cancelled(0), cancelled(1)], "duration") == (
        "failed", "no request succeeded (2 cancelled, still running when the job ended)")


@pytest.mark.parametrize(("stopped", "kind", "says"), [
    ("unresponsive", "timeout", "server unresponsive: requests in a row got no answer within "
                                "request_timeout_s or went silent for stall_timeout_s "
                                "(3 x timeout; first: no answer)"),
    ("rate_limited", "rate_limited", "server rate limited: it still asked to wait (429/503 with "
                                     "Retry-After) after 3 pauses with no success between them "
                                     "(3 x rate_limited; first: no answer)"),
])
def test_a_job_stopped_because_of_the_server_fails_with_the_reason(
    stopped: str, kind: str, says: str
) -> None:
    records = [RequestRecord(index=i, error_kind=kind, error="no answer") for i in range(3)]
    assert judged(records, stopped) == ("failed", says)
