"""A job's scraping of its server's metrics, around its load: the scraper started before it,
and each repetition's `server_metrics` block after it (runner.servermetrics)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from runner.load.records import RequestRecord
from runner.servermetrics import job as scraping
from runner.servermetrics.job import measured_window, server_block
from runner.servermetrics.scrape import Scraper


async def start_scraping(
    spec: Any, ctx: Any, headers: Mapping[str, str],
) -> tuple[Any, dict[str, Any] | None]:
    """The job's started scraper, or the server_metrics block of a job not scraped (None for
    the simulator, which has no metrics). `spec`, `ctx`: runner.run.executor's JobSpec and
    Context."""
    server = spec.server
    if server.kind == "mock" and server.metrics_url is False:  # by default (servers.yaml)
        return None, None
    url, default = scraping.metrics_url(server.url, server.metrics_url)
    skipped = scraping.skipped(url, ctx.scraped)
    if skipped is not None or url is None:
        return None, skipped
    scraper = Scraper(url, scraping.scrape_headers(server.url, url, headers),
                      server.scrape_interval_s, server.limits["metrics_bytes"],
                      ctx.store.server_metrics_path(spec.job.slug), server.verify_tls)
    answered = await asyncio.to_thread(scraper.begin)
    scraping.remember(scraper, default, ctx.scraped, answered)
    return scraper, None


def job_server_metrics(spec: Any, scraper: Scraper | None, result: Any,
                       metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """One run's (a repetition's) `server_metrics` over its own measured window: `result` is
    its runner.load.loadgen.LoadResult, `metrics` its client metrics; None when not scraped."""
    if scraper is None:
        return None
    client = (metrics.get("throughput") or {}).get("output_tokens_per_s")
    file = f"jobs/{spec.job.slug}.server-metrics.jsonl"
    zero = result.started_at + result.warmup_s  # the request log's offsets count from here
    return server_block(scraper, zero, result.records, client, file)


def end_s(records: Sequence[RequestRecord]) -> float | None:
    """The end of the last measured request of `records`, seconds from the window's opening."""
    window = measured_window(records)
    return None if window is None else round(window[1], 4)
