"""One job's scraping: which endpoint (and whether it is worth trying again), the scraper
around the job, and the job's `server_metrics` block."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from runner.load.records import RequestRecord
from runner.servermetrics.scrape import Scraper
from runner.servermetrics.summary import Point, summarize


def metrics_url(url: str, configured: str | bool | None) -> tuple[str | None, bool]:
    """The endpoint to scrape for a server at base `url` and whether it is the default guess:
    `configured` False is (None, False): never scrape; None is `{url}/metrics`."""
    if configured is False:
        return None, False
    if configured is None or configured is True:
        return url.rstrip("/") + "/metrics", True
    return configured, False


def scrape_headers(url: str, target: str, headers: Mapping[str, str]) -> dict[str, str]:
    """The server's headers (its key) only for an endpoint on the same scheme, host and port:
    a key never goes to another host."""
    same = (urlsplit(url).scheme, urlsplit(url).netloc) == \
        (urlsplit(target).scheme, urlsplit(target).netloc)
    return dict(headers) if same else {}


def skipped(target: str | None, remembered: Mapping[str, str | None]) -> dict[str, Any] | None:
    """The block of a job whose server is not scraped: turned off (`target` None), or a default
    endpoint that did not answer with metrics earlier in this apply (its reason kept in
    `remembered`); None when the job should scrape."""
    if target is None:
        return {"url": None, "error": "scraping turned off (metrics_url: false)"}
    if remembered.get(target):
        return {"url": target, "error": f"not scraped: {remembered[target]}"}
    return None


def remember(scraper: Scraper, default: bool, remembered: MutableMapping[str, str | None],
             answered: bool) -> None:
    """Keep whether a default endpoint answered with metrics, so it is tried once per apply."""
    if default and scraper.url not in remembered:
        remembered[scraper.url] = None if answered else (scraper.error or "no answer")


def measured_window(records: Sequence[RequestRecord]) -> tuple[float, float] | None:
    """(first send, last end) of the measured (not warm-up) requests, in seconds from the
    measured window's opening (the request log's zero); None when there is none."""
    measured = [r for r in records if not r.warmup]
    if not measured:
        return None
    start = min(r.sent_ms for r in measured)
    end = max(r.sent_ms + (r.e2e_ms or 0.0) for r in measured)
    return start / 1000, end / 1000


def server_block(
    scraper: Scraper, zero: float, records: Sequence[RequestRecord],
    client_tokens_per_s: float | None, file: str,
) -> dict[str, Any]:
    """The job's `server_metrics`: where and how often it was scraped, the raw file, the
    summary over the measured window and the first failure, if any (see the result schema).
    `zero`: wall time (Unix s) the request log's offsets count from, the measured window's
    opening (after the warm-ups: LoadResult.started_at + warmup_s)."""
    points = [Point(unix - zero, values) for unix, values in scraper.points]
    block: dict[str, Any] = {"url": scraper.url, "interval_s": scraper.interval_s,
                             "scrapes": len(scraper.points), "failed_scrapes": scraper.failures,
                             "file": file if scraper.points else None,
                             "file_offset_s": round(scraper.zero - zero, 4),
                             "error": scraper.error}
    if scraper.points:
        block |= summarize(points, measured_window(records), scraper.interval_s,
                           client_tokens_per_s)
    return block
