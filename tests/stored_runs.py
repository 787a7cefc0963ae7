"""Stored runs made through RunStore, as `runner apply` makes them, for report and browser tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fakeclock import StepClock

from runner.load.records import ClientHealth, RequestRecord
from runner.plan.expand import job_id, slugify
from runner.results.store import RunStore
from runner.run.metrics import summarize
from runner.run.validity import judge_validity

LIVE = {"source": "live", "server": "local", "url": "http://127.0.0.1:4000",
        "fetched_at": "2026-11-25T01:00:00Z", "fallback_reason": None, "model_count": 3}
FALLBACK = {**LIVE, "source": "fallback", "fallback_reason": "connection refused (127.0.0.1:4000)"}
EVIL = "<script>alert('x')</script>"


@dataclass
class Spec:
    """A job to store: its place in the matrix, outcome and request shape."""

    benchmark: str
    model: str
    point: dict[str, Any]
    status: str = "ok"
    n: int = 30  # requests; 0 stores no records and null metrics
    ttft: float = 20.0
    fail_every: int = 0
    message: str = "upstream said no"
    error: str | None = None
    client_bound: bool = False
    slo: dict[str, Any] | None = None
    write: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = "usage"  # how output tokens were counted (chunks: the server sent no usage)
    verdict: bool = True  # False: stored as a runner before validity verdicts stored it
    queued_ms: float | None = None  # open loop: every request waited this long for a slot



# The HTML report's charts per job with successful requests: TTFT and E2E histograms, and the
# three timeline charts (runner.report.timeline.CLIENT_CHARTS). These stored jobs have no
# server_metrics, so no server chart (SERVER_CHARTS: tests/report/test_server_timeline.py).
PER_JOB = 2 + 3


def Clock() -> StepClock:
    return StepClock(datetime(2026, 11, 25, 1, 0, 0, tzinfo=UTC), timedelta(seconds=1))


def requests(spec: Spec, tokens: int = 16, itl: float = 2.0) -> list[RequestRecord]:
    """Deterministic records: TTFT spread around spec.ttft, every fail_every-th one an HTTP 500."""
    out = []
    for i in range(spec.n):
        if spec.fail_every and i % spec.fail_every == spec.fail_every - 1:
            out.append(RequestRecord(index=i, sent_ms=i * 5.0, e2e_ms=3.0, ok=False,
                                     error_kind="http", http_status=500, error=spec.message))
            continue
        ttft = spec.ttft * (1 + (i * 7 % 11) / 20)
        queue: dict[str, Any] = {} if spec.queued_ms is None else {
            "scheduled_ms": i * 5.0 - spec.queued_ms, "queue_ms": spec.queued_ms}
        out.append(RequestRecord(
            **queue, index=i, sent_ms=i * 5.0, ttft_ms=ttft, itl_ms=[itl] * (tokens - 1),
            e2e_ms=ttft + itl * (tokens - 1), prompt_tokens=64, output_tokens=tokens,
            output_tokens_source=spec.source, content_chunks=tokens, finish_reason="stop", ok=True))
    return out


def job_of(spec: Spec) -> dict[str, Any]:
    ident = job_id(spec.benchmark, spec.model, spec.point)
    return {"id": ident, "slug": slugify(ident), "benchmark": spec.benchmark, "model": spec.model,
            "point": dict(spec.point), "params": {"endpoint": "chat", "max_tokens": 16,
                                                  "extra_body": {"ignore_eos": True},
                                                  **spec.point}}


def store_job(store: RunStore, spec: Spec, job: dict[str, Any]) -> None:
    records = requests(spec)
    with store.request_log(job["slug"]) as log:
        for record in records:
            log.write(record)
    health = ClientHealth(loop_delay_ms=[40.0] * 20) if spec.client_bound else None
    metrics = summarize(records, slo=spec.slo, health=health) if records else None
    if metrics is not None and spec.verdict:
        metrics["validity"] = judge_validity(metrics)
    store.write_job({**job, "status": spec.status, "error": spec.error, "attempts": 1,
                     "started_at": "2026-11-25T01:00:01Z", "finished_at": "2026-11-25T01:00:02Z",
                     "server": {"name": "local", "kind": "litellm", "url": LIVE["url"]},
                     "stopped": "done", "duration_s": 0.5, "metrics": metrics, **spec.extra})


def store_run(results: Path, specs: Sequence[Spec], status: str = "ok",
              inventory: dict[str, Any] | None = None, plan: str = "nightly") -> str:
    """A stored run made through RunStore, as `runner apply` makes one."""
    manifest = {"plan": {"name": plan, "path": f"plans/{plan}.yaml", "sha256": "ab" * 32},
                "inventory": inventory or LIVE}
    store = RunStore.create(str(results), plan, manifest, now=Clock())
    jobs = [job_of(s) for s in specs]
    store.set_jobs(jobs)
    for spec, job in zip(specs, jobs, strict=True):
        if spec.write:
            store_job(store, spec, job)
    store.finish(status)
    return store.run_dir


def grid(benchmark: str, models: Sequence[str], values: Sequence[int],
         param: str = "concurrency", **extra: Any) -> list[Spec]:
    return [Spec(benchmark, m, {param: v}, ttft=10.0 * (i + 1) * v ** 0.5, **extra)
            for i, m in enumerate(models) for v in values]


def mixed_run(results: Path) -> str:
    """Two benchmarks: a clean concurrency sweep, and one with errors and untrusted text."""
    specs = grid("latency", ["org/alpha", "org/beta"], [1, 2, 4, 8])
    specs += [
        Spec("stress", EVIL, {"rate": 2}, fail_every=3, message=f"bad {EVIL} | pipe"),
        Spec("stress", EVIL, {"rate": 8}, status="failed", fail_every=2,
             error=f"error budget broken {EVIL}"),
        Spec("stress", "org/alpha", {"rate": 2}, client_bound=True,
             slo={"ttft_ms": {"p95": 1.0}}),
        Spec("stress", "org/alpha", {"rate": 8}, status="failed", n=0, error="unreachable"),
    ]
    return store_run(results, specs, status="failed", inventory=FALLBACK)
