"""The server's series read back from a job's series file: samples carried forward from line to
line, counters as growth per scrape interval, the client timeline's time axis, and long jobs
grouped under the cap. Values worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from runner.report.timeline import timeline_charts
from runner.servermetrics.summary import Point, summarize
from runner.servermetrics.timeline import MAX_POINTS, read_scrapes, server_series

WAITING = 'vllm:num_requests_waiting{engine="0",model_name="tiny"}'
KV_OLD = 'vllm:gpu_cache_usage_perc{model_name="tiny"}'
PREEMPT = 'vllm:num_preemptions_total{model_name="tiny"}'
GENERATED = 'vllm:generation_tokens_total{model_name="tiny"}'


def write_lines(path: Path, lines: list[dict[str, Any]], torn: str = "") -> str:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + torn)
    return str(path)


def test_each_line_holds_only_what_changed_and_the_rest_carries_forward(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", [
        {"t_s": 0.0, "unix_s": 100.0, "samples": {WAITING: 0, KV_OLD: 0.1, PREEMPT: 2,
                                                  GENERATED: 1000, "other_total": 5}},
        {"t_s": 1.0, "unix_s": 101.0, "samples": {WAITING: 3, GENERATED: 1100}},
        {"t_s": 2.0, "unix_s": 102.0, "samples": {KV_OLD: 0.4, PREEMPT: 5, GENERATED: 1150}},
    ], torn='{"t_s": 3.0, "samp')  # a crash mid-write leaves a torn last line
    scrapes = read_scrapes(path)
    assert [t for t, _ in scrapes] == [0.0, 1.0, 2.0]
    assert scrapes[2][1]["requests_waiting"] == 3  # unchanged since the line before
    assert scrapes[2][1]["kv_cache_usage"] == 0.4  # the older vLLM name is known too
    series = server_series(scrapes, offset_s=-0.25)
    assert series == {
        "t_s": [-0.25, 0.75, 1.75],
        "requests_waiting": [0, 3, 3], "requests_running": [None, None, None],
        "kv_cache_usage": [0.1, 0.1, 0.4],
        "preemptions": [None, 0, 3],  # growth since the scrape before; none before the first
        "generation_tokens_per_s": [None, 100.0, 50.0],
    }


def test_a_counter_reset_counts_as_growth_from_zero() -> None:
    scrapes = [(0.0, {"preemptions": 7.0}), (0.5, {"preemptions": 9.0}),
               (1.0, {"preemptions": 1.0})]  # the server restarted
    assert server_series(scrapes)["preemptions"] == [None, 2, 1]


def test_a_long_job_is_grouped_under_the_cap() -> None:
    count = MAX_POINTS * 2 + 1  # groups of 3 scrapes (the last one alone)
    scrapes = [(i * 0.5, {"requests_waiting": float(i % 7), "generation_tokens": i * 10.0,
                          "preemptions": float(i // 100)}) for i in range(count)]
    series = server_series(scrapes)
    assert len(series["t_s"]) <= MAX_POINTS
    assert series["t_s"][:2] == [1.0, 2.5]  # a group sits at its last scrape
    assert series["requests_waiting"][:3] == [2, 5, 6]  # a group's gauge is its max
    assert series["generation_tokens_per_s"][:2] == [20.0, 20.0]  # 10 tokens / 0.5 s
    total = sum(v for v in series["preemptions"] if v is not None)
    assert total == (count - 1) // 100  # every step counted once


def test_no_scrapes_give_empty_series() -> None:
    assert server_series([]) == {"t_s": [], "requests_waiting": [], "requests_running": [],
                                 "kv_cache_usage": [], "preemptions": [],
                                 "generation_tokens_per_s": []}


def test_sglang_and_tgi_names_and_hostile_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", [
        {"t_s": 0.0, "samples": {"sglang:num_queue_reqs": 2, "sglang:token_usage": 0.5}},
        {"t_s": float("nan"), "samples": {"sglang:num_queue_reqs": 99}},
        {"t_s": 1.0, "samples": {"sglang:num_queue_reqs": float("inf"), "tgi_queue_size": 1}},
        {"t_s": 2.0, "samples": ["not", "a", "mapping"]},
        [1, 2],
    ])
    series = server_series(read_scrapes(path))
    assert series["t_s"] == [0.0, 1.0]
    assert series["requests_waiting"] == [2, 2]  # the infinite reading is left out
    assert series["kv_cache_usage"] == [0.5, 0.5]


def test_huge_finite_readings_are_left_out_and_the_chart_draws(tmp_path: Path) -> None:
    # Before: 1e308 then -1e308 (finite each) made the generation rate and the gauges' means
    # infinite (Infinity in the job's JSON) and the report's chart scale crashed (exit 70).
    path = write_lines(tmp_path / "s.jsonl", [
        {"t_s": float(t), "samples": {GENERATED: v, WAITING: v, PREEMPT: v}}
        for t, v in enumerate([1e308, -1e308, 1e308, 8.0, 16.0])])
    scrapes = read_scrapes(path)
    series = server_series(scrapes)
    assert series["generation_tokens_per_s"] == [None, None, None, None, 8.0]
    assert series["requests_waiting"] == [None, None, None, 8.0, 16.0]
    points = [Point(t, values) for t, values in scrapes]
    summary = summarize(points, (0.0, 4.0), 1.0, 10.0)
    assert all(math.isfinite(s.get("mean") or s.get("delta") or 0)
               for s in summary["series"].values())
    charts = timeline_charts({"t_s": [0, 1], "output_tokens_per_s": [1.0, 2.0]}, series)
    assert charts and all(c.startswith("<svg") for c in charts)


def test_a_repeated_jobs_scrapes_follow_its_repetitions_and_leave_the_pause_out() -> None:
    from runner.servermetrics.timeline import repeated_series

    # one scrape a second from file time 0 to 12; repetition 1's window opens at file time 1
    # and lasts 4 s, then a 3 s pause, repetition 2's opens at file time 8 and lasts 3 s
    scrapes = [(float(t), {"generation_tokens": 10.0 * t, "requests_waiting": float(t)})
               for t in range(13)]
    reps = [{"file_offset_s": -1.0, "end_s": 4.0}, {"file_offset_s": -8.0, "end_s": 3.0}]
    series = repeated_series(scrapes, reps)
    # repetition 1: file 0..5 at -1..4; repetition 2: file 8..12 at 0..4, moved by 4 s
    assert series["t_s"] == [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert series["requests_waiting"] == [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12]
    # a counter's growth never spans the pause: each repetition's first scrape has none
    assert series["generation_tokens_per_s"] == [None, 10, 10, 10, 10, 10,
                                                 None, 10, 10, 10, 10]
