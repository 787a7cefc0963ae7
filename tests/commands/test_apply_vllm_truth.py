"""Issue 10 §7 against the real engine (vLLM, CPU build, tiny local model): what it showed once
and what runner does now.

- Request i sent the same text in every job and rerun, and vLLM's prefix cache answered them
  (TTFT p50 399 ms, then 52 ms): now each job has prompts of its own, and `prompt_reuse` shares
  them only when the plan asks; the engine's own prefix-cache counters are the witness.
- Warm-ups ran inside the measured window: now they end before it opens, and the engine's
  generation counter over the window holds exactly the measured requests' tokens.
- A job whose lengths exceed the model's context was accepted without a word and the engine cut
  its answers: now `plan` warns and the job's verdict says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import stored_jobs
from cli_helpers import run_cli
from vllm_engine import MAX_MODEL_LEN, VLLMServer, engine_project

from runner.errors import EXIT_OK

pytestmark = pytest.mark.vllm


def _series(job: dict[str, Any], name: str) -> float:
    block = job["server_metrics"]
    assert block["error"] is None, block
    return float(block["series"][name]["delta"])


PREFIX_PLAN = """\
version: 1
name: truth
inventory: {server: engine, fallback: false}
defaults:
  workload: {synthetic: {input_tokens: 384}, temperature: 0}
  load: {requests: 3, concurrency: 1}
benchmarks:
  - {name: own, models: tiny, matrix: {max_tokens: [4, 5]}}
  - {name: shared, models: tiny, matrix: {max_tokens: [4, 5]},
     workload: {prompt_reuse: across_jobs}}
"""


def test_each_job_sends_prompts_the_engines_prefix_cache_has_not_seen(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = engine_project(tmp_path, vllm_server, PREFIX_PLAN, monkeypatch)
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"))
    assert code == EXIT_OK, out + err
    jobs = stored_jobs(tmp_path / "r", "truth", by="id", warmup=True)
    hit = {job_id: _series(job, "prefix_cache_hits") / _series(job, "prompt_tokens")
           for job_id, job in jobs.items()}
    # The engine's counters over each job's window: prompts of its own find (almost) nothing
    # cached, at most the chat template's first block; the second job that shares the first
    # one's prompts on purpose finds most of each prompt cached: whole blocks of 128 tokens
    # (the CPU engine's), never the last token, so a calibrated 384-token prompt has at least
    # 256 of its tokens hit (0.67; uncalibrated prompts were ~520 tokens, 512 hit).
    for job_id in ("own/tiny/max_tokens=4", "own/tiny/max_tokens=5",
                   "shared/tiny/max_tokens=4"):
        assert hit[job_id] < 0.2, hit
    assert hit["shared/tiny/max_tokens=5"] > 0.6, hit


WARMUP_PLAN = """\
version: 1
name: truth
inventory: {server: engine, fallback: false}
benchmarks:
  - name: warm
    models: tiny
    workload: {synthetic: {input_tokens: 32}, max_tokens: 12, temperature: 0,
               extra_body: {ignore_eos: true}}
    load: {requests: 6, concurrency: 4, warmup_requests: 2}
"""


def test_warm_ups_end_before_the_window_and_the_engine_counts_only_measured_tokens(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = engine_project(tmp_path, vllm_server, WARMUP_PLAN, monkeypatch)
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"))
    assert code == EXIT_OK, out + err
    [job] = stored_jobs(tmp_path / "r", "truth", warmup=True).values()
    warm = [r for r in job["records"] if r["warmup"]]
    measured = [r for r in job["records"] if not r["warmup"]]
    assert (len(warm), len(measured)) == (2, 6)
    # Offsets count from the window's opening: every warm-up ended before it.
    assert all(r["sent_ms"] + r["e2e_ms"] <= 0 for r in warm), warm
    assert all(r["sent_ms"] >= 0 for r in measured), measured
    # A scrape between the last warm-up and the window: the engine's generation counter over
    # the window holds the measured requests' tokens and nothing of the warm-ups'.
    assert _series(job, "generation_tokens") == sum(r["output_tokens"] for r in measured) \
        == 6 * 12


LIMIT_PLAN = f"""\
version: 1
name: truth
inventory: {{server: engine, fallback: false}}
benchmarks:
  - name: capped
    models: tiny
    workload: {{dataset: prompt.jsonl, max_tokens: 200, temperature: 0,
               extra_body: {{ignore_eos: true}}}}
    load: {{requests: 1, concurrency: 1}}
  - name: beyond
    models: tiny
    workload: {{synthetic: {{input_tokens: {MAX_MODEL_LEN - 100}}}, max_tokens: 200}}
    load: {{requests: 1, concurrency: 1}}
"""


def test_lengths_beyond_the_context_are_warned_about_and_cut_answers_flagged(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vllm_engine import tokenize

    plan = engine_project(tmp_path, vllm_server, LIMIT_PLAN, monkeypatch)
    # A prompt of about MAX_MODEL_LEN - 100 tokens (counted by the engine): with max_tokens 200
    # the engine has room for about 100, and cuts the answer there (finish_reason length).
    words = ["river", "cache", "queue", "night", "color", "number", "poem", "short"]
    prompt = " ".join(words[i % len(words)] for i in range(MAX_MODEL_LEN))
    while tokenize(vllm_server, prompt) > MAX_MODEL_LEN - 100:
        prompt = prompt.rsplit(" ", 40)[0]
    (tmp_path / "prompt.jsonl").write_text(json.dumps({"prompt": prompt}) + "\n")
    code, out, err = run_cli(capsys, "plan", str(plan))
    assert code == EXIT_OK, out + err
    assert f"> max_model_len {MAX_MODEL_LEN}" in out and "beyond/tiny" in out
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"))
    jobs = stored_jobs(tmp_path / "r", "truth", by="id", warmup=True)
    beyond = jobs["beyond/tiny"]["metrics"]
    assert beyond["model_limits"]["exceeded"] is True
    assert beyond["validity"]["verdict"] == "invalid"
    assert "model_limit_exceeded" in [r["code"] for r in beyond["validity"]["reasons"]]
    [answer] = jobs["capped/tiny"]["records"]
    assert answer["ok"] and answer["finish_reason"] == "length", answer
    # The engine gave the answer what was left of its context.
    assert answer["prompt_tokens"] + answer["output_tokens"] == MAX_MODEL_LEN, answer
    capped = jobs["capped/tiny"]["metrics"]
    # ignore_eos asked for 200 tokens: the cut answer is flagged, never a silent ok.
    assert capped["lengths"]["output"]["fixed"] is True
    assert "short_outputs" in [r["code"] for r in capped["validity"]["reasons"]], capped
