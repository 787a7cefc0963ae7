"""Runs jobs: one server's jobs one after another, different servers side by side (--forks),
every request and every finished job on disk as soon as it exists."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from runner.inventory.config import Server, auth_headers
from runner.load.pacing import PAUSES_IN_A_ROW
from runner.load.records import RequestRecord
from runner.plan.expand import Job
from runner.redaction import header_keys, redact_keys
from runner.run.serverlock import server_key


@dataclass(frozen=True)
class JobSpec:
    """A job with everything needed to run and judge it."""

    job: Job
    server: Server  # with a reachable url
    slo: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    max_error_rate: float = 0.0
    # its lengths against the model's limits in the inventory (runner.plan.limits.model_limits)
    model_limits: Mapping[str, Any] | None = None
    search_id: str | None = None  # a capacity search's trial: the id of the job it searches for


class Reporter(Protocol):
    """What the user sees while jobs run (only the CLI prints)."""

    def job_started(self, spec: JobSpec, attempt: int) -> None: ...
    def request_done(self, spec: JobSpec, record: RequestRecord) -> None: ...
    def job_finished(self, spec: JobSpec, summary: Mapping[str, Any]) -> None: ...


class Store(Protocol):
    """The part of runner.results.store.RunStore the executor uses."""

    def request_log(self, slug: str) -> Any: ...
    def reset_request_log(self, slug: str) -> None: ...
    def write_job(self, summary: Mapping[str, Any]) -> None: ...
    def completed_job(self, slug: str, params: Mapping[str, Any]) -> dict[str, Any] | None: ...
    def server_metrics_path(self, slug: str) -> str: ...
    def add_job(self, job: Mapping[str, Any]) -> None: ...
    def write_capacity(self, record: Mapping[str, Any]) -> None: ...


@dataclass
class Context:
    """Shared state of one run."""

    store: Store
    reporter: Reporter
    env: Mapping[str, str]
    prompts: Callable[[JobSpec], Any]  # a job's PromptSource
    stop: asyncio.Event
    hurry: asyncio.Event | None = None  # set: cancel in-flight requests without a grace period
    fail_fast: bool = False
    resume: bool = False
    failed: bool = False  # set by the first failed job (for --fail-fast)
    workers: int | str = 1  # processes sending each job's load: N or "auto" (--workers)
    cluster: Any = None  # the Ray cluster sending every job's load (raycluster.Cluster), or None
    # a default {url}/metrics tried in this apply -> None (it answers) or why it does not
    scraped: dict[str, str | None] = field(default_factory=dict)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def execute(specs: Sequence[JobSpec], ctx: Context, forks: int = 1) -> list[dict[str, Any]]:
    """Run every job; returns their summaries in job order (skipped ones included)."""
    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):  # by URL: two names for one server still take turns
        groups.setdefault(server_key(spec.server.url), []).append(i)
    results: list[list[dict[str, Any]] | None] = [None] * len(specs)
    slots = asyncio.Semaphore(max(forks, 1))

    async def run_group(indexes: list[int]) -> None:
        async with slots:
            for i in indexes:
                results[i] = await _run_spec(specs[i], ctx)

    await asyncio.gather(*(run_group(ix) for ix in groups.values()))
    return [s for i, r in enumerate(results)
            for s in (r if r is not None else [skipped_summary(specs[i], "not run")])]


async def _run_spec(spec: JobSpec, ctx: Context) -> list[dict[str, Any]]:
    """A job's summary, or a capacity search's trial summaries (its record goes to the store),
    or a sweep's job summaries."""
    from runner.run.capacity import is_search, run_search_jobs
    from runner.run.sweep import run_sweep_jobs

    if not is_search(spec.job):
        return [await run_job(spec, ctx)]
    if "sweep" in spec.job.params:
        summaries = await run_sweep_jobs(spec, lambda job: run_job(job, ctx), ctx.store.add_job,
                                         ctx.stop.is_set)
    else:
        summaries, record = await run_search_jobs(
            spec, lambda trial: run_job(trial, ctx), ctx.store.add_job, ctx.stop.is_set)
        ctx.store.write_capacity(record)
    # one an interrupt kept from starting is itself in the run, pending: the recap says so
    return summaries or [skipped_summary(spec, "interrupted before it started", "interrupted")]


async def run_job(spec: JobSpec, ctx: Context) -> dict[str, Any]:
    """One job with its retries; the final summary is written to the store."""
    await asyncio.sleep(0)  # a signal that just arrived (call_soon_threadsafe) is heard first
    if ctx.stop.is_set():
        return skipped_summary(spec, "interrupted before it started", status="interrupted")
    if ctx.fail_fast and ctx.failed:
        summary = skipped_summary(spec, "skipped after an earlier failure (--fail-fast)")
        ctx.store.write_job(summary)
        return summary
    if ctx.resume:
        done = ctx.store.completed_job(spec.job.slug, spec.job.params)
        if done is not None:
            done = {**done, "resumed": True}
            ctx.reporter.job_finished(spec, done)
            return done
    summary = await _attempts(spec, ctx)
    ctx.store.write_job(summary)
    ctx.failed = ctx.failed or summary["status"] == "failed"
    ctx.reporter.job_finished(spec, summary)
    return summary


async def _attempts(spec: JobSpec, ctx: Context) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for attempt in range(1, spec.retries + 2):
        summary = await _attempt(spec, ctx, attempt)
        if summary["status"] != "failed" or ctx.stop.is_set():
            break
    return summary


async def _attempt(spec: JobSpec, ctx: Context, attempt: int) -> dict[str, Any]:
    from runner.load.exchange import Target
    from runner.run.gateway import gateway_request
    from runner.run.prefixhits import engine_block_size, prefix_cache
    from runner.run.repetitions import cut_short, job_metrics, run_repetitions, server_metrics
    from runner.run.scraping import end_s, job_server_metrics, start_scraping
    from runner.run.validity import judge_validity

    ctx.reporter.job_started(spec, attempt)
    ctx.store.reset_request_log(spec.job.slug)
    started = utc_now()
    headers = auth_headers(spec.server, ctx.env)
    asked, body = gateway_request(spec.server.kind, spec.server.gateway)
    target = Target(spec.server.url, {**headers, **asked}, spec.job.model, spec.server.limits,
                    body)
    keys = header_keys(headers)
    scraper, skipped = await start_scraping(spec, ctx, headers)
    try:
        with ctx.store.request_log(spec.job.slug) as log:

            def on_record(record: RequestRecord) -> None:
                scrub(record, keys)
                log.write(record)
                ctx.reporter.request_done(spec, record)

            mark = None if scraper is None else partial(asyncio.to_thread, scraper.mark)
            done = await run_repetitions(spec, ctx, target, on_record, mark, judge)
    finally:
        if scraper is not None:
            await asyncio.to_thread(scraper.finish, not ctx.stop.is_set())
    last = done[-1]
    blocks = [skipped or job_server_metrics(spec, scraper, rep.result, rep.metrics)
              for rep in done]  # each repetition's server figures over its own window
    size = engine_block_size(ctx.store.server_metrics_path(spec.job.slug)) \
        if blocks[0] else None
    for number, (rep, block) in enumerate(zip(done, blocks, strict=True)):
        rep.metrics["prefix_cache"] = prefix_cache(spec.job.params, ctx.prompts(spec),
                                                   rep.result.records, block, size,
                                                   sent=number > 0)
        rep.metrics["validity"] = judge_validity(
            {**rep.metrics, "early_stop": rep.result.early_stop}, server_metrics=block)
    server = server_metrics(blocks, [end_s(rep.result.records) for rep in done])
    result = last.result
    early = {"early_stop": result.early_stop} if result.early_stop else {}
    status, error, stopped = last.status, last.error, result.stopped
    if (short := cut_short(spec, done)) is not None:
        status, error, stopped = "interrupted", short, "interrupted"
    return {**job_header(spec), "status": status, "error": error,
            "attempts": attempt, "stopped": stopped, **early, "workers": last.workers,
            "executor": last.executor,
            "started_at": started,
            "finished_at": utc_now(),
            "duration_s": round(sum(rep.result.duration_s for rep in done), 3),
            "metrics": job_metrics(spec, done), "server_metrics": server}


# Why the load generator stopped a job early because of the server (see loadgen.run_load).
GAVE_UP = {
    "unresponsive": "server unresponsive: requests in a row got no answer within "
                    "request_timeout_s or went silent for stall_timeout_s",
    "rate_limited": "server rate limited: it still asked to wait (429/503 with Retry-After) "
                    f"after {PAUSES_IN_A_ROW} pauses with no success between them",
}


def scrub(record: RequestRecord, keys: Sequence[str]) -> None:
    """Take the keys (and their prefixes) out of what the server said in `record`, before it is
    stored or shown: a server may echo the key in an error or even in a finish reason."""
    if record.error:
        record.error = redact_keys(record.error, keys)
    if record.finish_reason:
        record.finish_reason = redact_keys(record.finish_reason, keys)
    if record.gateway:  # a hostile gateway may echo the key in any header
        record.gateway = {k: redact_keys(v, keys) if isinstance(v, str) else v
                          for k, v in record.gateway.items()}


def judge(
    metrics: Mapping[str, Any], stopped: str, max_error_rate: float,
    first_error: str | None = None, early_stop: Mapping[str, Any] | None = None,
) -> tuple[str, str | None]:
    """A job's status and, when it did not succeed, why (with the server's first error
    message, which usually names the cause). A job stopped early for its error rate failed
    (`early_stop` gives the figure); one stopped `saturated` is judged on its records like any
    other, its validity says the point is invalid (validity `saturated`)."""
    if stopped == "interrupted":
        return "interrupted", "interrupted"
    if stopped == "unreachable":
        return "failed", f"server unreachable ({_errors(metrics, first_error)})"
    if stopped == "job_timeout":
        return "failed", "job_timeout_s reached before the job finished"
    if stopped == "worker_lost":
        lost = (metrics.get("errors") or {}).get("worker_lost", 0)
        return "failed", (f"a worker (process or Ray actor) was lost: {lost} of its requests "
                          f"recorded as worker_lost ({_errors(metrics, first_error)})")
    if stopped in GAVE_UP:
        return "failed", f"{GAVE_UP[stopped]} ({_errors(metrics, first_error)})"
    if stopped == "error_rate" and early_stop:
        return "failed", (f"stopped early: error rate {early_stop['error_rate']:.3g} (at least "
                          f"{early_stop['lower_bound']:.3g} at {early_stop['z']:g} standard "
                          f"errors) above {early_stop['threshold']:g} after "
                          f"{early_stop['finished']} requests "
                          f"(early_stop.min_requests {early_stop['min_requests']}; "
                          f"{_errors(metrics, first_error)})")
    requests = metrics["requests"]
    if requests["ok"] == 0:
        return "failed", f"no request succeeded ({_errors(metrics, first_error)})"
    if metrics["error_rate"] > max_error_rate:
        rate = metrics["error_rate"]
        return "failed", (f"error rate {rate:.3g} above max_error_rate {max_error_rate:g} "
                          f"({_errors(metrics, first_error)})")
    return "ok", None


def _errors(metrics: Mapping[str, Any], first_error: str | None) -> str:
    """`3 x connection; first: Cannot connect to host ...`, or `2 cancelled ...` when no
    request failed."""
    errors = metrics.get("errors") or {}
    if not errors:
        cancelled = (metrics.get("requests") or {}).get("cancelled")
        return f"{cancelled} cancelled, still running when the job ended" if cancelled \
            else "no requests"
    kind, count = max(errors.items(), key=lambda item: item[1])
    return f"{count} x {kind}" + (f"; first: {first_error}" if first_error else "")


def job_header(spec: JobSpec) -> dict[str, Any]:
    job = spec.job
    return {"id": job.id, "slug": job.slug, "benchmark": job.benchmark, "model": job.model,
            "point": dict(job.point), "params": dict(job.params),
            "server": {"name": spec.server.name, "kind": spec.server.kind,
                       "url": spec.server.url}} | ({"search": spec.search_id}
                                                  if spec.search_id else {})


def skipped_summary(spec: JobSpec, why: str, status: str = "skipped") -> dict[str, Any]:
    return {**job_header(spec), "status": status, "error": why, "attempts": 0,
            "started_at": None, "finished_at": None, "metrics": None}
