"""Per-second client series from request records: values worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stored_runs import grid, store_run

from runner.load.records import RequestRecord
from runner.report.render import render_report
from runner.report.timeline import MAX_BINS, bin_width_s, client_series, timeline_charts
from runner.results.runs import load_run


def ok(sent_ms: float, ttft_ms: float, e2e_ms: float, tokens: int) -> RequestRecord:
    return RequestRecord(index=0, sent_ms=sent_ms, ttft_ms=ttft_ms, e2e_ms=e2e_ms,
                         output_tokens=tokens, ok=True)


def test_two_overlapping_streams_by_the_second() -> None:
    records = [
        ok(0, 500, 2500, 201),  # stream 0.5-2.5 s: 100.5 tokens/s
        ok(1000, 1000, 3000, 101),  # sent at 1 s, stream 2-4 s: 50.5 tokens/s
        RequestRecord(index=2, warmup=True, sent_ms=0, ttft_ms=1, e2e_ms=9000, ok=True,
                      output_tokens=999),
    ]
    series = client_series(records)
    assert series["bin_s"] == 1.0
    assert series["t_s"] == [0, 1, 2, 3]
    assert series["started"] == [1, 1, 0, 0]
    assert series["finished"] == [0, 0, 1, 1]
    assert series["errors"] == [0, 0, 0, 0]
    assert series["output_tokens_per_s"] == pytest.approx([50.25, 100.5, 100.75, 50.5])
    assert series["in_flight"] == pytest.approx([1.0, 2.0, 1.5, 1.0])
    assert series["ttft_ms_p50"] == [500, 1000, None, None]
    assert series["e2e_ms_p50"] == [2500, 3000, None, None]


def test_errors_count_at_their_end_and_cancelled_requests_at_neither() -> None:
    failed = RequestRecord(index=0, sent_ms=0, e2e_ms=1500, error_kind="http", http_status=500)
    cut = RequestRecord(index=1, sent_ms=100, e2e_ms=1900, error_kind="cancelled")
    series = client_series([failed, cut])
    assert series["started"] == [2, 0]
    assert series["finished"] == [0, 1]
    assert series["errors"] == [0, 1]
    assert series["output_tokens_per_s"] == [0, 0]
    assert series["ttft_ms_p50"] == [None, None]


def test_the_last_bin_is_a_rate_over_its_own_length() -> None:
    # 100 tokens over 0-1.5 s: 66.7 tokens/s in both the whole first bin and the half second bin.
    series = client_series([ok(0, 0, 1500, 100)])
    assert series["output_tokens_per_s"] == pytest.approx([66.667, 66.667], abs=1e-3)
    assert series["in_flight"] == pytest.approx([1.0, 1.0])


def test_no_measured_request_gives_empty_series() -> None:
    series = client_series([RequestRecord(index=0, warmup=True, ok=True)])
    assert series["t_s"] == [] and series["started"] == []


def test_a_long_job_gets_wider_bins_and_never_more_than_the_cap() -> None:
    assert bin_width_s(10) == 1.0
    assert bin_width_s(MAX_BINS * 2.5) == 3.0
    series = client_series([ok(0, 10, 10 * 3600 * 1000, 5)])
    assert series["bin_s"] == 10.0
    assert len(series["t_s"]) <= MAX_BINS


def test_the_json_report_carries_each_run_jobs_client_series(tmp_path: Path) -> None:
    run_dir = store_run(tmp_path / "results", grid("x", ["m"], [1, 4]))
    data = json.loads(render_report(run_dir, "json"))
    for job in data["jobs"]:
        records = [r for r in load_run(run_dir).requests(job["slug"]) if not r.warmup]
        client = job["timeline"]["client"]
        assert client == client_series(records)
        assert sum(client["started"]) == len(records) == job["metrics"]["requests"]["total"]
        assert sum(client["errors"]) == job["metrics"]["requests"]["failed"]


def test_an_embeddings_job_has_inputs_per_second_and_no_output_token_series() -> None:
    # two batches of 4 inputs end in the first second, one in the second
    records = [RequestRecord(index=i, sent_ms=sent, e2e_ms=200.0, inputs=4, prompt_tokens=40,
                             streamed=False, ok=True) for i, sent in enumerate((0, 300, 1200))]
    series = client_series(records)
    assert series["inputs_per_s"] == pytest.approx([8.0, 4 / 0.4])  # the last bin is 0.4 s
    assert series["output_tokens_per_s"] == [None, None]  # not 0: it has no output tokens
    assert series["e2e_ms_p50"] == [200.0, 200.0]
    charts = timeline_charts(series)
    assert any("Inputs/s over time" in chart for chart in charts)
    assert any("E2E p50 by send time" in chart for chart in charts)
    assert not any("Output tokens/s" in chart or "TTFT" in chart for chart in charts)
    # a chat job's series and charts are as they were
    chat = client_series([ok(0, 500, 2500, 201)])
    assert "inputs_per_s" not in chat
    assert any("Output tokens/s over time" in c for c in timeline_charts(chat))
