"""Prompt lengths that are right (issue 14 §6) through `runner apply`, against the simulator
whose tokenizer makes 1.3 tokens of a word (servers.yaml tokens_per_word): uncalibrated, the
server counts prompts 30% over input_tokens and validity says so; calibrated, by its /tokenize
or, with /tokenize off, by probe requests' usage, within 3% of the target; the calibration's
requests are not measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from apply_helpers import stored_jobs
from cli_helpers import run_cli

from runner.errors import EXIT_OK
from runner.schema import load_schema

TARGET = 200
PLAN = f"""\
version: 1
name: lengths
inventory: {{server: sim, fallback: false}}
benchmarks:
  - name: b
    models: all
    workload: {{synthetic: {{input_tokens: {TARGET}}}, max_tokens: 2}}
    load: {{concurrency: 2, requests: 6, warmup_requests: 1}}
    matrix: {{calibrate: [auto, off]}}
"""


def apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
          sim: str, *extra: str) -> dict[str, dict[str, Any]]:
    """The two jobs (by their `calibrate`) of one run against a simulator `sim` (flow YAML)."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(
        f"servers:\n  sim: {{kind: mock, models: [m1], ttft_ms: 1, itl_ms: 1, {sim}}}\n")
    (tmp_path / "lengths.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "apply", "lengths.yaml", "--results", "results",
                           "--no-report", *extra)
    assert code == EXIT_OK, err
    jobs = stored_jobs(tmp_path / "results", "lengths", by="id", warmup=True)
    return {job["params"]["calibrate"]: job for job in jobs.values()}


def check_stored(job: dict[str, Any]) -> None:
    jsonschema.validate({k: v for k, v in job.items() if k != "records"}, load_schema("result"))
    assert len(job["records"]) == 7  # 1 warm-up + 6: the calibration's requests are not here
    assert job["metrics"]["requests"]["total"] == 6


def reasons(job: dict[str, Any]) -> list[str]:
    return [r["code"] for r in job["metrics"]["validity"]["reasons"]]


def test_tokenize_calibrates_prompts_to_the_target_and_uncalibrated_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = apply(tmp_path, monkeypatch, capsys, "tokens_per_word: 1.3")
    for job in jobs.values():
        check_stored(job)
    off, auto = jobs["off"]["metrics"], jobs["auto"]["metrics"]
    assert off["prompt_calibration"] == {
        "method": "none", "words_per_token": 1.0, "overhead_tokens": 0.0, "requests_spent": 0,
        "reason": "workload.synthetic.calibrate is off"}
    assert off["lengths"]["input"]["ratio"] == pytest.approx(1.3, abs=0.01)
    assert "prompts_off_target" in reasons(jobs["off"])
    calibration = auto["prompt_calibration"]
    assert calibration["method"] == "tokenize"
    assert calibration["words_per_token"] == pytest.approx(1 / 1.3, rel=0.01)
    assert abs(calibration["overhead_tokens"]) < 1
    assert calibration["requests_spent"] == 4
    assert abs(auto["lengths"]["input"]["ratio"] - 1) < 0.03
    assert auto["prompt_tokens"]["max"] <= TARGET * 1.03
    assert "prompts_off_target" not in reasons(jobs["auto"])


def test_without_tokenize_probe_requests_usage_calibrates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = apply(tmp_path, monkeypatch, capsys, "tokens_per_word: 1.3, tokenize: false")
    check_stored(jobs["auto"])
    auto = jobs["auto"]["metrics"]
    # /tokenize refused (404), then two probe requests of two sizes: 3 requests
    assert auto["prompt_calibration"]["method"] == "usage"
    assert auto["prompt_calibration"]["requests_spent"] == 3
    assert auto["prompt_calibration"]["words_per_token"] == pytest.approx(1 / 1.3, rel=0.01)
    assert abs(auto["lengths"]["input"]["ratio"] - 1) < 0.03


def test_no_probe_sends_no_calibration_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = apply(tmp_path, monkeypatch, capsys, "tokens_per_word: 1.3", "--no-probe")
    calibration = jobs["auto"]["metrics"]["prompt_calibration"]
    assert calibration["method"] == "none"
    assert calibration["reason"] == "--no-probe: no requests before the run"
    assert jobs["auto"]["metrics"]["lengths"]["input"]["ratio"] == pytest.approx(1.3, abs=0.01)
