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

from runner.errors import EXIT_INVALID, EXIT_OK
from runner.report.compare import METRICS
from runner.report.render import render_report
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
          sim: str, *extra: str, plan: str = PLAN) -> dict[str, dict[str, Any]]:
    """The two jobs (by their `calibrate`) of one run against a simulator `sim` (flow YAML)."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(
        f"servers:\n  sim: {{kind: mock, models: [m1], ttft_ms: 1, itl_ms: 1, {sim}}}\n")
    (tmp_path / "lengths.yaml").write_text(plan)
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
    assert calibration["requests_spent"] == 2  # two prompts through /tokenize
    assert abs(auto["lengths"]["input"]["ratio"] - 1) < 0.03
    assert auto["prompt_tokens"]["max"] <= TARGET * 1.03
    assert "prompts_off_target" not in reasons(jobs["auto"])
    assert METRICS["prompt_tokens_mean"].value(jobs["off"]) == 260  # compare and history
    [run] = (tmp_path / "results" / "lengths").iterdir()
    summary = render_report(str(run), "md")
    assert "**Prompt lengths**" in summary
    assert ("| b/m1/calibrate=off | 200 | 260 | 1.300 | none (workload.synthetic.calibrate is "
            "off) | 1.00 | 0.00 | 0 |") in summary
    assert "| 200 | 200 | 1.000 | tokenize | 0.77" in summary
    assert "<h3>Prompt lengths</h3>" in render_report(str(run))


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


def word_level_tokenizer(path: Path) -> None:
    """A tiny WordLevel tokenizer.json: a whitespace-separated word is one token."""
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"[UNK]": 0, "the": 1}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tok.save(str(path))


def test_a_local_tokenizer_sizes_prompts_exactly_less_the_servers_overhead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    word_level_tokenizer(tmp_path / "tokenizer.json")
    plan = PLAN.replace("max_tokens: 2}", "max_tokens: 2, tokenizer: tokenizer.json}")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(
        "servers:\n  sim: {kind: mock, models: [m1], ttft_ms: 1, itl_ms: 1}\n")
    (tmp_path / "lengths.yaml").write_text(plan)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "apply", "lengths.yaml", "--results", "results", "--no-report")
    assert code == EXIT_OK, err
    jobs = {j["params"]["calibrate"]: j for j in
            stored_jobs(tmp_path / "results", "lengths", by="id").values()}
    for job in jobs.values():  # every prompt: exactly the target, as the simulator counts
        assert {r["prompt_tokens"] for r in job["records"]} == {TARGET}
    assert jobs["auto"]["metrics"]["prompt_calibration"] == {
        "method": "tokenizer", "words_per_token": None, "overhead_tokens": 0.0,
        "requests_spent": 1, "reason": None}  # its /tokenize: the simulator adds no template
    assert jobs["off"]["metrics"]["prompt_calibration"]["requests_spent"] == 0


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read workload.tokenizer tok.json: No such file or directory; it is the path "
           "of a tokenizer.json, relative to the plan's folder"),
    ("{}", "workload.tokenizer tok.json is not a tokenizer.json the tokenizers library reads ("),
])
@pytest.mark.parametrize(("command", "where"), [("validate", "lengths.yaml:7:15: "),
                                                ("apply", "error: lengths.yaml: benchmark 'b': ")])
def test_a_bad_tokenizer_is_one_line_with_its_path_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    content: str | None, message: str, command: str, where: str
) -> None:
    pytest.importorskip("tokenizers")
    if content is not None:
        (tmp_path / "tok.json").write_text(content)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(
        "servers:\n  sim: {kind: mock, models: [m1]}\n")
    (tmp_path / "lengths.yaml").write_text(
        PLAN.replace("max_tokens: 2}", "max_tokens: 2, tokenizer: tok.json}"))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    extra = ("--results", "results") if command == "apply" else ()
    code, out, err = run_cli(capsys, command, "lengths.yaml", *extra)
    assert code == EXIT_INVALID
    [line] = [x for x in (out + err).splitlines() if x.strip()]
    assert line.startswith(where) and message in line
    assert "Traceback" not in out + err
    assert not (tmp_path / "results").exists()


def test_a_shared_prefix_job_is_calibrated_prefix_and_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Seen: a prefix job had prompt_calibration null (no reason) and prompts 260 tokens for a
    # target of 200: "degraded: prompts_off_target", calibrate: auto or not.
    plan = PLAN.replace(f"{{input_tokens: {TARGET}}}",
                        f"{{input_tokens: {TARGET // 2}, prefix: {{count: 2, tokens: 100}}}}")
    jobs = apply(tmp_path, monkeypatch, capsys, "tokens_per_word: 1.3", plan=plan)
    auto, off = jobs["auto"]["metrics"], jobs["off"]["metrics"]
    assert auto["prompt_calibration"]["method"] == "tokenize"
    assert auto["lengths"]["input"]["target"] == TARGET
    assert abs(auto["lengths"]["input"]["ratio"] - 1) < 0.03, auto["lengths"]["input"]
    assert "prompts_off_target" not in reasons(jobs["auto"])
    assert off["prompt_calibration"]["reason"] == "workload.synthetic.calibrate is off"
    assert "prompts_off_target" in reasons(jobs["off"])
