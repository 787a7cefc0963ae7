"""Reads a server's Prometheus endpoint every interval during a job, on a thread of its own with
its own HTTP client, each scrape bounded in time and size; every scrape's samples are appended
to the job's jobs/<slug>.server-metrics.jsonl as they come: the first line holds them all, each
later line those that changed (a vLLM exposition is 445 samples, 52 KB: most of its histogram
buckets stay put from one second to the next)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import IO, Any

import httpx

from runner.redaction import header_keys, redact_keys
from runner.servermetrics.series import NotMetrics, known_values, parse

MAX_SCRAPE_S = 5.0  # no scrape takes longer, however long the interval
SCRAPE_SHARE = 0.8  # ... nor more than this share of the interval: scrapes never pile up


class ScrapeError(Exception):
    """Why a scrape gave no samples, worded for server_metrics.error."""


class Scraper:
    """Scrapes `url` (sending `headers`) every `interval_s` seconds into the JSONL at `path`.

    `begin()` takes the first scrape on the caller's thread, before the job's first request, and
    starts the thread; `finish()` stops it and takes a last scrape after the job's last request,
    so that the counters' readings hold the whole job. No failure ever raises: the first one is
    kept in `error` (with `failures` counting them all). `points`: (wall time, known values) of
    every successful scrape."""

    def __init__(self, url: str, headers: dict[str, str], interval_s: float, max_bytes: int,
                 path: str, verify_tls: bool = True) -> None:
        self.url, self.interval_s, self.max_bytes, self.path = url, interval_s, max_bytes, path
        self.timeout_s = min(MAX_SCRAPE_S, SCRAPE_SHARE * interval_s)
        self._keys = header_keys(headers)  # what the endpoint might echo, never stored
        self.client = httpx.Client(headers=headers, verify=verify_tls, follow_redirects=False,
                                   timeout=self.timeout_s, trust_env=False)
        self.points: list[tuple[float, dict[str, float]]] = []
        self.error: str | None = None
        self.failures = 0
        self.zero = 0.0  # wall time of the first scrape: t_s 0 of the JSONL
        self._file: IO[str] | None = None
        self._last: dict[str, float] = {}  # the samples of the scrape before
        self._stop = threading.Event()
        self._one_at_a_time = threading.Lock()  # the thread's scrapes and mark()'s
        self._thread = threading.Thread(target=self._loop, name="server-metrics", daemon=True)

    def begin(self) -> bool:
        """The first scrape (True when it gave samples); the thread starts only then."""
        self.zero = time.time()
        try:
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in finish)
        except OSError as exc:
            self._fail(f"cannot write {self.path}: {exc.strerror}")
        ok = self.scrape()
        if ok:
            self._thread.start()
        return ok

    def finish(self, last: bool = True) -> None:
        """Stop the thread, take the last scrape (if the first one worked and `last`: not when
        the user is waiting for an interrupted run to stop) and close up."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            if last:
                self.scrape()
        self.client.close()
        if self._file is not None:
            self._file.close()
            if not self.points:  # nothing to keep: no empty file beside the request log
                with contextlib.suppress(OSError):
                    os.unlink(self.path)

    def mark(self) -> None:
        """A scrape now, on the caller's thread, while the thread runs (between warm-up and
        the measured window: the counters' reading the window starts from)."""
        if self._thread.is_alive() and not self._stop.is_set():
            self.scrape()

    def _loop(self) -> None:
        next_at = time.monotonic() + self.interval_s
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.scrape()
            next_at = max(next_at + self.interval_s, time.monotonic())

    def scrape(self) -> bool:
        """One scrape: its samples appended to the file, its known values to `points`."""
        with self._one_at_a_time:
            return self._scrape()

    def _scrape(self) -> bool:
        started = time.time()
        try:
            samples = self._redacted(parse(self._fetch(started + self.timeout_s)))
        except ScrapeError as exc:
            self._fail(str(exc))
            return False
        except NotMetrics as exc:
            self._fail(f"the answer is {exc}")
            return False
        self.points.append((started, known_values(samples)))
        changed = {k: v for k, v in samples.items() if self._last.get(k) != v}
        self._last = samples
        self._write({"t_s": round(started - self.zero, 4), "unix_s": round(started, 4),
                     "samples": changed})
        return True

    def _redacted(self, samples: dict[str, float]) -> dict[str, float]:
        """`samples` whose keys (a label value may echo the Authorization header) hold no key:
        they are stored in the results."""
        return {redact_keys(k, self._keys): v for k, v in samples.items()}

    def _fetch(self, deadline: float) -> str:
        try:
            with self.client.stream("GET", self.url) as answer:
                if answer.status_code != 200:
                    raise ScrapeError(_status(answer.status_code))
                return self._read(answer, deadline)
        except httpx.TimeoutException:
            raise ScrapeError(f"no answer within {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise ScrapeError(f"cannot connect ({type(exc).__name__})") from None

    def _read(self, answer: httpx.Response, deadline: float) -> str:
        body = bytearray()
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > self.max_bytes:
                raise ScrapeError(f"the answer is larger than {self.max_bytes} bytes "
                                  "(limits.metrics_bytes in servers.yaml)")
            if time.time() > deadline:
                raise ScrapeError(f"no whole answer within {self.timeout_s:g} s")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise ScrapeError("the answer is not UTF-8 text") from None

    def _write(self, line: dict[str, Any]) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError as exc:
            self._fail(f"cannot write {self.path}: {exc.strerror}")
            self._file.close()
            self._file = None

    def _fail(self, reason: str) -> None:
        self.failures += 1
        if self.error is None:
            self.error = redact_keys(reason, self._keys)


def _status(code: int) -> str:
    if code in (401, 403):
        return f"HTTP {code}: the endpoint refused runner (it wants another key, or none)"
    if code == 404:
        return "HTTP 404: the server has no metrics there (set metrics_url in servers.yaml)"
    return f"HTTP {code}"
