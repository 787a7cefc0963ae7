"""`runner apply` of trace replays (issue 14 §5) against the simulator: each request scheduled at
its trace offset / speed and sent in the trace's order, the `replay` summary in the result
schema and the reports, from a plan and from its lock."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from apply_helpers import jsonl_lines, run_dirs, simulator
from cli_helpers import run_cli

from runner.errors import EXIT_OK
from runner.schema import load_schema

PLAN = """\
version: 1
name: rp
inventory: {server: sim, fallback: false}
benchmarks:
  - name: runner
    models: all
    workload: {trace: t.jsonl, max_tokens: 8}
    load: {replay: {speed: 2}, max_concurrency: 4, warmup_requests: 1, request_timeout_s: 10}
  - name: mooncake
    models: all
    workload: {trace: m.jsonl, trace_format: mooncake}
    load: {replay: {}, requests: 2, request_timeout_s: 10}
"""
STAMPS = [1_700_000_000_000 + t for t in (0, 30, 60, 200, 210, 400)]
TRACE = "".join(json.dumps({"timestamp_ms": t, "input_tokens": 10 + i, "output_tokens": 3})
                + "\n" for i, t in enumerate(STAMPS))
MOONCAKE = "".join(json.dumps({"timestamp": t, "input_length": 600, "output_length": 4,
                               "hash_ids": [1, i]}) + "\n" for i, t in enumerate((0, 50, 90)))
LAG_BOUND_MS = 1000.0  # a send this late would be a broken schedule, not a busy machine


def _metrics_valid(metrics: dict[str, object]) -> None:
    jsonschema.validate(metrics, {"$ref": "#/$defs/metrics",
                                  "$defs": load_schema("result")["$defs"]})


@pytest.mark.parametrize("source", ["plan", "lock"])
def test_a_replay_sends_the_trace_at_its_offsets_over_the_speed(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with simulator("--models", "m1", "--ttft-ms", "5", "--itl-ms", "1") as (url, _):
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "servers.yaml").write_text(
            f"servers:\n  sim:\n    url: {url}\n    timeout_s: 5\n")
        (tmp_path / "rp.yaml").write_text(PLAN)
        (tmp_path / "t.jsonl").write_text(TRACE)
        (tmp_path / "m.jsonl").write_text(MOONCAKE)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
        monkeypatch.chdir(tmp_path)
        target = "rp.yaml"
        if source == "lock":
            assert run_cli(capsys, "plan", "rp.yaml", "--out", "rp.lock.json")[0] == EXIT_OK
            code, out, err = run_cli(capsys, "validate", "rp.lock.json")
            assert code == EXIT_OK, out + err
            target = "rp.lock.json"
        code, out, err = run_cli(capsys, "apply", target, "--results", "results")
    assert code == EXIT_OK, err
    [run] = run_dirs(tmp_path / "results", "rp")
    jobs = {}
    for summary_file in (run / "jobs").glob("*.json"):
        job = json.loads(summary_file.read_text())
        _metrics_valid(job["metrics"])
        records = jsonl_lines(summary_file.with_suffix(".requests.jsonl"))
        jobs[job["benchmark"]] = (job["metrics"], [r for r in records if not r["warmup"]])
    metrics, records = jobs["runner"]
    assert metrics["replay"] == {"speed": 2.0, "format": "runner", "trace_requests": 6,
                                 "trace_duration_s": 0.4, "replay_duration_s": 0.2, "sent": 6,
                                 "cut_short": None}
    assert [r["scheduled_ms"] for r in records] == [(t - STAMPS[0]) / 2 for t in STAMPS]
    assert [r["index"] for r in sorted(records, key=lambda r: r["sent_ms"])] == [
        r["index"] for r in records]  # sent in the trace's order
    assert all(0 <= r["sent_ms"] - r["scheduled_ms"] < LAG_BOUND_MS for r in records)
    assert [r["prompt_tokens"] for r in records] == [10 + i for i in range(6)]
    assert {r["output_tokens"] for r in records} == {3}  # the trace's, not max_tokens 8
    assert metrics["requests"]["warmup"] == 1
    metrics, records = jobs["mooncake"]
    assert metrics["replay"]["sent"] == 2 and metrics["replay"]["format"] == "mooncake"
    assert metrics["replay"]["cut_short"].startswith("2 of 3 trace requests sent")
    assert [r["prompt_tokens"] for r in records] == [600, 600]
    summary = (run / "summary.md").read_text()
    assert "replay of a runner trace at speed 2: 6 of 6 requests sent, over 0.2 s (0.4 s " \
           "recorded); send lag p99" in summary


def test_answers_of_a_fixed_length_are_held_to_each_lines_own_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # lines ask 3 and 20 tokens, one none (the plan's 8); the simulator honours ignore_eos
    lines = [{"timestamp_ms": 0, "input_tokens": 4, "output_tokens": 3},
             {"timestamp_ms": 10, "input_tokens": 4, "output_tokens": 20},
             {"timestamp_ms": 20, "input_tokens": 4}]
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(
        "servers:\n  sim: {kind: mock, models: [m1], ttft_ms: 1, itl_ms: 1, output_tokens: 5}\n")
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "rp.yaml").write_text(PLAN.split("  - name: mooncake")[0].replace(
        "max_tokens: 8}", "max_tokens: 8, extra_body: {ignore_eos: true}}"))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "apply", "rp.yaml", "--results", "results")
    assert code == EXIT_OK, err
    [run] = run_dirs(tmp_path / "results", "rp")
    [summary_file] = (run / "jobs").glob("*.json")
    metrics = json.loads(summary_file.read_text())["metrics"]
    _metrics_valid(metrics)
    output = metrics["lengths"]["output"]
    assert output["requested"] is None and output["fixed"] is True
    assert output["requested_mean"] == pytest.approx((3 + 20 + 8) / 3)
    assert output["ratio"] == 1.0  # every answer its own line's length, none short
    assert "short_outputs" not in [r["code"] for r in metrics["validity"]["reasons"]]


def test_a_replay_sends_the_input_lengths_the_trace_recorded_calibrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # Seen: against a server counting 1.3 tokens a word, a trace's 200-token lines were sent
    # as 260 tokens (Mooncake's 1100 as 1430), and nothing said so: prompt_calibration null.
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(
        "servers:\n  sim: {kind: mock, models: [m1], ttft_ms: 1, itl_ms: 1, "
        "tokens_per_word: 1.3, tokenize: false}\n")
    (tmp_path / "rp.yaml").write_text(PLAN)
    (tmp_path / "t.jsonl").write_text("".join(
        json.dumps({"timestamp_ms": t, "input_tokens": 200, "output_tokens": 3}) + "\n"
        for t in (0, 10, 20)))
    (tmp_path / "m.jsonl").write_text(MOONCAKE)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "apply", "rp.yaml", "--results", "results", "--no-report")
    assert code == EXIT_OK, err
    [run] = run_dirs(tmp_path / "results", "rp")
    jobs = {path.name.split("_")[0]: json.loads(path.read_text())
            for path in (run / "jobs").glob("*.json")}
    for name, tokens in (("runner", 200), ("mooncake", 600)):
        metrics = jobs[name]["metrics"]
        assert metrics["prompt_calibration"]["method"] == "usage", name
        assert abs(metrics["lengths"]["input"]["achieved_mean"] / tokens - 1) < 0.03, metrics


def test_a_trace_jobs_prompts_are_judged_against_each_lines_input_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # Seen: a trace's lengths.input.target was null, so an uncalibrated replay whose prompts
    # the server counted 30% over the trace's lengths was still valid. (calibrate as a matrix
    # axis of a trace benchmark was refused: "which needs input_tokens".)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(
        "servers:\n  sim: {kind: mock, models: [m1], ttft_ms: 1, itl_ms: 1, "
        "tokens_per_word: 1.3}\n")
    (tmp_path / "rp.yaml").write_text(PLAN.split("  - name: mooncake")[0]
                                      + "    matrix: {calibrate: [auto, off]}\n")
    (tmp_path / "t.jsonl").write_text("".join(
        json.dumps({"timestamp_ms": t, "input_tokens": n, "output_tokens": 3}) + "\n"
        for t, n in ((0, 100), (10, 300), (20, 200))))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "apply", "rp.yaml", "--results", "results")
    assert code == EXIT_OK, err
    [run] = run_dirs(tmp_path / "results", "rp")
    jobs = {job["params"]["calibrate"]: job["metrics"] for job in
            (json.loads(path.read_text()) for path in (run / "jobs").glob("*.json"))}
    for metrics in jobs.values():
        _metrics_valid(metrics)
        assert metrics["lengths"]["input"]["target"] is None
        assert metrics["lengths"]["input"]["requested_mean"] == 200  # lines 1-3, once each
    off = jobs["off"]
    assert off["prompt_calibration"]["reason"] == "workload.synthetic.calibrate is off"
    assert off["lengths"]["input"]["ratio"] == pytest.approx(1.3, abs=0.02)
    [reason] = [r for r in off["validity"]["reasons"] if r["code"] == "prompts_off_target"]
    assert reason["figure"].startswith("prompts 26") and "vs 200 asked (each request's own " \
        "length; ratio 1.3" in reason["figure"]
    summary = (run / "summary.md").read_text()
    assert "| runner/m1/calibrate=off | 200 per request | 26" in summary
    auto = jobs["auto"]
    assert auto["prompt_calibration"]["method"] == "tokenize"
    assert abs(auto["lengths"]["input"]["ratio"] - 1) < 0.03
    assert "prompts_off_target" not in [r["code"] for r in auto["validity"]["reasons"]]
    assert "| runner/m1/calibrate=auto | 200 per request | 20" in summary
