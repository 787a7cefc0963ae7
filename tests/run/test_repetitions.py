"""The repeat loop's error paths (issue 13 §2): a repetition that fails ends the repetitions, an
interrupt during the pause ends them at once. The load generator is faked: these are faults the
simulator does not produce on cue."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from runner.inventory.config import Server
from runner.load import loadgen
from runner.load.loadgen import LoadResult
from runner.load.records import ClientHealth, RequestRecord
from runner.plan.expand import Job
from runner.run.executor import Context, JobSpec, judge
from runner.run.repetitions import job_metrics, run_repetitions


def ok(index: int) -> RequestRecord:
    return RequestRecord(index=index, ok=True, ttft_ms=10.0, e2e_ms=20.0, output_tokens=2,
                         content_chunks=2, streamed=True, itl_ms=[10.0])


def failed(index: int) -> RequestRecord:
    return RequestRecord(index=index, error_kind="http", http_status=500, error="boom")


def fake_loads(monkeypatch: pytest.MonkeyPatch, outcomes: Iterator[bool],
               calls: list[int]) -> None:
    async def run_load(target: Any, params: Any, prompts: Any, *, on_record: Any,
                       **_: Any) -> LoadResult:
        calls.append(len(calls) + 1)
        good = next(outcomes)
        records = [ok(i) if good else failed(i) for i in range(3)]
        for record in records:
            on_record(record)
        return LoadResult(records, ClientHealth(), 0.0, 0.5, "done")

    monkeypatch.setattr(loadgen, "run_load", run_load)


def spec(**params: Any) -> JobSpec:
    return JobSpec(Job("b/m", "b_m", "b", "m", {}, {"requests": 3, **params}),
                   Server("s", "http://127.0.0.1:9"))


def context(stop: asyncio.Event) -> Context:
    return Context(None, None, {}, lambda s: None, stop)  # type: ignore[arg-type]


def test_a_failed_repetition_ends_the_repetitions_and_fails_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    fake_loads(monkeypatch, iter([True, False, True, True]), calls)
    written: list[RequestRecord] = []
    job = spec(repeat=4)

    async def main() -> Any:
        return await run_repetitions(job, context(asyncio.Event()), None, written.append, None,
                                     judge)

    done = asyncio.run(main())
    assert calls == [1, 2] and [rep.status for rep in done] == ["ok", "failed"]
    assert [r.repetition for r in written] == [1, 1, 1, 2, 2, 2]
    metrics = job_metrics(job, done)
    assert metrics["repetitions"]["count"] == 2


def test_an_interrupt_during_the_pause_ends_the_repetitions_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    fake_loads(monkeypatch, iter([True, True, True]), calls)
    written: list[RequestRecord] = []
    job = spec(repeat=3, repeat_pause_s=3600)

    async def main() -> Any:
        stop = asyncio.Event()

        def record(r: RequestRecord) -> None:
            written.append(r)
            if len(written) == 3:  # the first repetition's last record: then an interrupt
                asyncio.get_running_loop().call_soon(stop.set)

        # bounded: the hour's pause must not be waited out
        return await asyncio.wait_for(run_repetitions(job, context(stop), None, record, None,
                                                      judge),
                                      60)

    done = asyncio.run(main())
    assert calls == [1] and len(done) == 1


def test_a_job_run_once_keeps_its_metrics_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    fake_loads(monkeypatch, iter([True]), calls)
    written: list[RequestRecord] = []
    job = spec()

    async def main() -> Any:
        return await run_repetitions(job, context(asyncio.Event()), None, written.append, None,
                                     judge)

    done = asyncio.run(main())
    assert calls == [1] and all(r.repetition is None for r in written)
    assert "repetitions" not in job_metrics(job, done)
    assert job_metrics(job, done) is done[0].metrics


def test_a_repeated_jobs_server_figures_are_each_repetitions_own() -> None:
    from runner.run.repetitions import server_metrics

    def block(rate: float, offset: float, disagreement: dict[str, float] | None) -> dict:
        return {"url": "http://127.0.0.1:1/metrics", "error": None, "interval_s": 1.0,
                "scrapes": 20, "failed_scrapes": 0, "file": "jobs/a.server-metrics.jsonl",
                "file_offset_s": offset, "window_s": 4.0, "scrapes_in_window": 5,
                "series": {"generation_tokens": {"kind": "counter", "unit": "tokens",
                                                 "delta": rate * 4, "rate_per_s": rate}},
                "generation_tokens_per_s": rate, "client_output_tokens_per_s": 10.0,
                "disagreement": disagreement}

    far = {"server_tokens_per_s": 30.0, "client_tokens_per_s": 10.0, "difference": 2.0,
           "threshold": 0.2}
    blocks = [block(30.0, -1.0, far), block(10.0, -8.0, None), block(12.0, -14.0, None)]
    merged = server_metrics(blocks, [4.0, 3.0, 3.5])
    assert merged is not None
    assert merged["generation_tokens_per_s"] == 12.0  # the median, not the last repetition's
    assert merged["series"]["generation_tokens"]["rate_per_s"] == 12.0
    assert merged["disagreement"] == far  # one repetition's is the job's
    assert [(r["repetition"], r["file_offset_s"], r["end_s"]) for r in merged["repetitions"]] \
        == [(1, -1.0, 4.0), (2, -8.0, 3.0), (3, -14.0, 3.5)]
    assert merged["file_offset_s"] == -1.0  # the first repetition's, as a run-once job's
    assert server_metrics(blocks[:1], [4.0]) == blocks[0]
    assert server_metrics([None, None], [1.0, 1.0]) is None
