"""The load generator against a hostile server (tests/hostile_server.py: real sockets, its own
process): whatever comes back, each request sent is one record with its error kind, in bounded
time and memory, and the job goes on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hostile_client import measure
from hostile_server import hostile_server, received

from runner.load import exchange
from runner.load.exchange import Target
from runner.load.loadgen import LoadResult, run_load
from runner.load.records import RequestRecord
from runner.load.workload import prompt_source

Url = Callable[[str], str]
TOO_LONG = "the answer has a line longer than 4194304 bytes (limits.line_bytes in servers.yaml)"


@pytest.fixture(scope="module")
def url() -> Iterator[Url]:
    with hostile_server() as url:
        yield url


def job(**overrides: Any) -> dict[str, Any]:
    base = {"endpoint": "chat", "input_tokens": 8, "max_tokens": 4, "temperature": 0, "seed": 0,
            "stream": True, "concurrency": 2, "requests": 4, "warmup_requests": 0,
            "request_timeout_s": 20}
    return {**base, **overrides}


def load(base_url: str, limits: dict[str, int] | None = None,
         on_record: Callable[[RequestRecord], None] | None = None, **params: Any) -> LoadResult:
    params = job(**params)
    target = Target(base_url, {}, "m", limits or {})
    return asyncio.run(run_load(target, params, prompt_source(params, ".", {}),
                                on_record=on_record))


CASES = [  # (server case, job parameters, limits, error kind, start of the message)
    ("ok", {}, {}, None, None),
    ("deep", {}, {}, "invalid_response", "an event is nested too deeply to parse"),
    ("deep", {"stream": False}, {}, "invalid_response", "the answer is nested too deeply"),
    ("deeperror", {}, {}, "http", "HTTP 500 (body longer than 65536 bytes, cut): {"),
    ("line~5000000", {}, {}, "response_too_large", TOO_LONG),
    ("line~5000000", {"stream": False}, {}, "response_too_large",
     "the answer has more than 4194304 bytes (limits.line_bytes in servers.yaml)"),
    ("line~1000000", {}, {}, None, None),
    ("gzip", {}, {}, "invalid_response",
     "the answer is gzip-compressed, though runner asks for identity (Accept-Encoding)"),
    ("gzip~1000", {"stream": False}, {}, "invalid_response", "the answer is gzip-compressed"),
    ("errbody", {}, {}, "http", "HTTP 500 (body longer than 65536 bytes, cut): xxxx"),
    ("endless", {}, {"chunks": 5000}, "response_too_large",
     "the answer has more than 5000 content chunks (limits.chunks in servers.yaml)"),
    ("roles", {}, {"chunks": 5000}, "response_too_large",
     "the answer has more than 5000 chunks without text (limits.chunks in servers.yaml)"),
    ("usage~30", {}, {}, "invalid_response", "a usage token count is out of range"),
    ("garbage", {}, {}, "invalid_response", "the answer is not an event stream"),
    ("ok", {"request_timeout_s": float("inf")}, {}, "client_error", "OverflowError: "),
]


@pytest.mark.parametrize(("case", "params", "limits", "kind", "message"), CASES,
                         ids=[f"{c[0]}{' ' + str(c[1]) if c[1] else ''}" for c in CASES])
def test_each_request_sent_is_one_record_of_its_kind(
    url: Url, case: str, params: dict[str, Any], limits: dict[str, int], kind: str | None,
    message: str | None,
) -> None:
    name = case.partition("~")[0]
    before = received(url).get(name, 0)
    kept: list[RequestRecord] = []
    result = load(url(case), limits, kept.append, **params)
    sent = received(url).get(name, 0) - before
    assert result.stopped == "done"
    assert len(result.records) == len(kept) == 4
    assert sent == (0 if kind == "client_error" else 4)  # never sent: aiohttp refused it
    for record in result.records:
        assert record.error_kind == kind and record.ok == (kind is None)
        assert (record.error or "").startswith(message or ""), record.error


def test_a_job_keeps_every_record_even_when_a_bug_loses_one(
    url: Url, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug between the answer and its record (here: measuring raises) still crashes the job
    (exit 70 with a traceback in the log), but the request is recorded, never silently lost."""
    measure_one = exchange.Exchange._measure

    def broken(self: Any, record: RequestRecord, *args: Any) -> None:
        if record.index == 2:
            raise RuntimeError("bug")
        measure_one(self, record, *args)

    monkeypatch.setattr(exchange.Exchange, "_measure", broken)
    before = received(url).get("ok", 0)
    kept: list[RequestRecord] = []
    with pytest.raises(RuntimeError, match="bug"):
        load(url("ok"), on_record=kept.append, concurrency=1)
    sent = received(url)["ok"] - before
    assert [r.index for r in kept] == list(range(sent)) == [0, 1, 2]
    assert kept[2].error_kind == "client_error" and "a bug in runner" in (kept[2].error or "")


TIMEOUT_S = 2.0
MARGIN_S = 2.0  # generous: a busy machine delays the loop, not the deadline
# One huge piece of client work each (a 100 MB line parsed, a gzip bomb inflated, a long error
# body read): on a busy machine a starved client overruns any wall-clock bound by the time it
# waits for a core, so their bound is on the client's own CPU time, which only unbounded work
# can push past the deadline. Waiting cases keep the wall-clock bound (they cost no CPU).
CPU_BOUND = ("line~100000000", "gzip", "errbody")


@pytest.mark.parametrize("case", ["silent", "drip", "idle", "endless", "line~100000000",
                                  "gzip", "errbody"])
def test_a_request_ends_within_its_timeout_however_the_server_misbehaves(
    url: Url, case: str
) -> None:
    """Before: a gzip bomb held a 2 s request for 4.8 s (90 s: 250 s), an endless stream ran
    51 s past a 30 s timeout."""
    cpu_before = time.process_time()
    result = load(url(case), {"chunks": 1 << 24, "line_bytes": 1 << 30}, requests=1,
                  concurrency=1, request_timeout_s=TIMEOUT_S)
    cpu_s = time.process_time() - cpu_before
    [record] = result.records
    assert record.e2e_ms is not None
    if case in CPU_BOUND:
        assert cpu_s < TIMEOUT_S + MARGIN_S, (cpu_s, record.e2e_ms)
    else:
        assert record.e2e_ms / 1e3 < TIMEOUT_S + MARGIN_S
        assert result.duration_s < TIMEOUT_S + MARGIN_S
    if case in ("silent", "drip", "idle", "endless"):
        assert record.error_kind == "timeout" and record.e2e_ms / 1e3 >= TIMEOUT_S


# (server case, limits): one request each, in a child process whose peak memory is measured.
MEMORY = [("line~100000000", {}), ("gzip", {}), ("errbody", {}), ("endless", {})]


@pytest.mark.parametrize(("case", "limits"), MEMORY, ids=[c[0] for c in MEMORY])
def test_memory_and_time_per_request_are_bounded(
    url: Url, case: str, limits: dict[str, int]
) -> None:
    """Before (peak RSS above the client's own, time): 100 MB line 290 MB, 16 s; gzip bomb
    780 MB, 42 s; 1 GiB error body 2 GB, 15 s; endless token stream 1.4 GB, 52 s and a
    79 MB record. After, with the default limits: about 10-30 MB and 1 s each."""
    figures = measure("load", url(case), {"limits": limits, "request_timeout_s": 60}, 120)
    assert figures["records"] == 1, figures
    assert figures["peak_mb"] - figures["base_mb"] < 100, figures
    assert figures["seconds"] < 10, figures
    assert figures["record_bytes"] < 4 << 20, figures


# --- issue 10 §6: silence is a stall, a broken stream fails at once --------------------------

STALL_S = 1.0


def test_a_server_silent_in_the_middle_of_an_answer_fails_as_stalled(url: Url) -> None:
    """A token, then silence with the connection open: before, only request_timeout_s (then
    300 s, a reasoning answer's enemy) ended it. Now no byte for stall_timeout_s is `stalled`,
    the total deadline far away."""
    result = load(url("stall"), requests=1, concurrency=1, request_timeout_s=600,
                  stall_timeout_s=STALL_S)
    [record] = result.records
    assert (record.ok, record.error_kind, record.content_chunks) == (False, "stalled", 1)
    assert record.error == "no byte from the server for stall_timeout_s (1 s)"
    assert record.e2e_ms is not None and STALL_S <= record.e2e_ms / 1e3 < STALL_S + MARGIN_S


def test_a_server_that_never_answers_stalls_and_the_job_stops_as_unresponsive(url: Url) -> None:
    """Stalls count towards `unresponsive` as timeouts do: three in a row stop a
    one-at-a-time job (ten requests asked for), after about three stall timeouts."""
    result = load(url("silent"), requests=10, concurrency=1, request_timeout_s=600,
                  stall_timeout_s=0.5)
    assert result.stopped == "unresponsive"
    assert [r.error_kind for r in result.records] == ["stalled"] * 3
    assert result.duration_s < 3 * 0.5 + MARGIN_S


@pytest.mark.parametrize("case", ["badchunk", "cutchunk"])
def test_a_broken_chunked_stream_fails_as_connection_at_once(url: Url, case: str) -> None:
    """Before: aiohttp's C parser closed the connection on a bad chunk size (or chunk data
    without its CRLF) and the read waited for the whole request_timeout_s (here 60 s, the
    stall guard too): `timeout`. Now the closed connection ends the read: `connection`."""
    result = load(url(case), requests=2, concurrency=1, request_timeout_s=60,
                  stall_timeout_s=60)
    for record in result.records:
        assert (record.ok, record.error_kind) == (False, "connection")
        assert record.content_chunks >= 1  # the chunks before the break were read
        assert "the connection closed in the middle of the answer" in (record.error or "")
        assert record.e2e_ms is not None and record.e2e_ms < MARGIN_S * 1e3
