"""What apply shows while it runs: plain lines when piped, a live line on a terminal."""

from __future__ import annotations

import argparse
import io
import os
from typing import Any

import pytest

from runner.inventory.config import Server
from runner.load.records import RequestRecord
from runner.plan.expand import Job
from runner.run.executor import JobSpec
from runner.run.progress import Live, Plain, details, reporter_for
from runner.run.validity import judge_validity

SPEC = JobSpec(Job("b/m/concurrency=2", "slug", "b", "m", {"concurrency": 2},
                   {"concurrency": 2, "requests": 3}), Server("s", "http://x"))
METRICS: dict[str, Any] = {
    "requests": {"total": 3, "ok": 2, "failed": 1, "warmup": 0},
    "throughput": {"output_tokens_per_s": 12.5},
    "ttft_ms": {"p50": 40.0, "p95": 50.0}, "tpot_ms": {"p50": 4.0},
    "errors": {"http_500": 1},
    "slo": {"passed": False, "checks": [{"metric": "ttft_ms", "stat": "p95", "limit": 45,
                                         "value": 50.0, "passed": False}]},
    "client": {"client_bound": True, "reason": "loop delay p99 12.0 ms > 10 ms"},
    "validity": judge_validity({"client": {"client_bound": True,
                                           "reason": "loop delay p99 12.0 ms > 10 ms"}}),
}
SUMMARY = {"benchmark": "b", "model": "m", "point": {"concurrency": 2}, "status": "ok",
           "metrics": METRICS}


def test_plain_prints_one_line_per_job_start_and_end() -> None:
    out = io.StringIO()
    plain = Plain(1, out)
    plain.job_started(SPEC, 1)
    plain.request_done(SPEC, RequestRecord(index=0, ok=True))
    plain.job_finished(SPEC, SUMMARY)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/1] start b/m/concurrency=2"
    assert lines[1].startswith("[1/1] b  m  concurrency=2  ok  ok=2 failed=1  TTFT p50 40.0 p95")
    assert lines[1].endswith("12.5 tok/s  invalid: client_bound (loop delay p99 12.0 ms > 10 ms)"
                             "  SLO missed: ttft_ms p95 50.0 (limit <= 45)")


def test_a_job_sent_by_several_workers_says_how_many() -> None:
    out = io.StringIO()
    plain = Plain(1, out)
    plain.job_finished(SPEC, {**SUMMARY, "workers": 4})
    assert "  12.5 tok/s  workers=4  invalid: client_bound" in out.getvalue()
    plain.job_finished(SPEC, {**SUMMARY, "workers": 1})
    assert out.getvalue().count("workers=") == 1  # one process: said nothing, as before


def test_verbose_adds_errors_slo_checks_and_client_health() -> None:
    assert details(SUMMARY) == [
        "errors: http_500=1",
        "slo ttft_ms p95: 50.0 vs 45 MISSED",
        "client_bound: loop delay p99 12.0 ms > 10 ms",
    ]
    out = io.StringIO()
    Plain(1, out, verbose=True).job_finished(SPEC, SUMMARY)
    assert "    errors: http_500=1" in out.getvalue()


@pytest.mark.parametrize(("value", "shown"), [
    (429.4186779732903, "429.4"), (41.16099345, "41.2"), (4.0, "4.00"), (0.0123456, "0.0123"),
    (None, "no data"),
])
def test_verbose_slo_values_have_sensible_digits(value: float | None, shown: str) -> None:
    check = {"metric": "ttft_ms", "stat": "p95", "limit": 500, "value": value, "passed": True}
    summary = {**SUMMARY, "metrics": {**METRICS, "slo": {"passed": True, "checks": [check]}}}
    verdict = "NO DATA" if value is None else "ok"  # no data is never shown as a pass
    assert f"slo ttft_ms p95: {shown} vs 500 {verdict}" in details(summary)


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    quiet = Plain(1, out, quiet=True)
    quiet.note("x")
    quiet.job_finished(SPEC, SUMMARY)
    assert out.getvalue() == ""


def read_all(fd: int) -> str:
    """Everything written to a pseudo-terminal whose other end is closed (reads come in parts)."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other end is closed and everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def test_live_line_on_a_terminal_shows_requests_tokens_and_errors() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as tty:
        chosen = reporter_for(argparse.Namespace(quiet=False, verbose=False), 2, tty)
        assert isinstance(chosen, Live) or os.environ.get("CI")  # CI gets plain lines
        live = Live(2, tty)
        live.job_started(SPEC, 1)
        live.request_done(SPEC, RequestRecord(index=0, ok=True, output_tokens=5))
        live.shown = 0.0
        live.request_done(SPEC, RequestRecord(index=1, ok=False))
        live.job_finished(SPEC, SUMMARY)
    screen = read_all(leader)
    assert "\r\x1b[2K[1/2] b/m/concurrency=2  2/3 req" in screen
    assert "1 errors" in screen and "[1/2] b  m  concurrency=2  ok" in screen
