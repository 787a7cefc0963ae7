"""`runner apply` of shared-prefix jobs against a real vLLM engine (CPU build, tiny local model,
prefix caching on by default): the hit rate its counters (vllm:prefix_cache_hits_total /
vllm:prefix_cache_queries_total) achieve over the measured window is the one the plan implies,
rounded to the engine's own block size (128 on the CPU backend, read from
vllm:cache_config_info), within the prefix_cache_gap threshold."""

from __future__ import annotations

from pathlib import Path

import pytest
from apply_helpers import stored_jobs
from cli_helpers import run_cli
from vllm_engine import VLLMServer, engine_project

from runner.errors import EXIT_OK
from runner.run.validity import THRESHOLDS

pytestmark = [pytest.mark.vllm]

PLAN = """\
version: 1
name: engine
inventory: {server: engine, fallback: false}
defaults:
  workload: {synthetic: {input_tokens: 32, prefix: {count: 2, tokens: 256}}, max_tokens: 4}
  load: {requests: 8, concurrency: 2}
benchmarks:
  - {name: primed, models: tiny}
  - name: cold
    models: tiny
    workload: {synthetic: {input_tokens: 32, prefix: {count: 2, tokens: 256, prime: false}}}
"""


def _gaps(tmp_path: Path, capsys: pytest.CaptureFixture[str], plan: Path,
          results: Path) -> tuple[dict[str, dict[str, object]], list[str]]:
    """Apply `plan` into `results`: each job's prefix_cache block, and what is wrong with it."""
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(results))
    assert code == EXIT_OK, out + err
    jobs = stored_jobs(results, "engine")
    blocks = {name: job["metrics"]["prefix_cache"] for name, job in jobs.items()}
    wrong = []
    for name, job in jobs.items():
        block = blocks[name]
        assert block["block_size_source"] == "server", (name, block)
        assert block["expected_source"] == "usage" and block["achieved"] is not None, block
        reasons = [r["code"] for r in job["metrics"]["validity"]["reasons"]]
        if abs(block["gap"]) > THRESHOLDS.prefix_cache_gap or block["achieved"] <= 0.3 \
                or "prefix_cache_gap" in reasons:
            wrong.append(f"{name}: {block}")
    # without priming the first use of each prefix missed: fewer hits than primed
    if not blocks["cold"]["achieved"] < blocks["primed"]["achieved"]:
        wrong.append(f"cold not below primed: {blocks}")
    return blocks, wrong


def test_the_engines_counters_achieve_the_expected_hit_rate(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Twice in a full suite on a busy 2-core machine (not alone, not reproduced) one job's
    # window held more or fewer hits than its own requests make (a gap of 0.17): a second
    # apply, with fresh prefixes, tells a fault (both wrong) from that interference.
    plan = engine_project(tmp_path, vllm_server, PLAN, monkeypatch)
    blocks, wrong = _gaps(tmp_path, capsys, plan, tmp_path / "results")
    if wrong:
        print("first apply:", wrong)
        blocks, wrong = _gaps(tmp_path, capsys, plan, tmp_path / "again")
    assert not wrong, wrong
    print(blocks)


SESSIONS = """\
version: 1
name: engine
inventory: {server: engine, fallback: false}
defaults:
  workload:
    synthetic: {input_tokens: 32, prefix: {count: 2, tokens: 256}}
    max_tokens: 160
    extra_body: {ignore_eos: true}
    session: {turns: 3, user_tokens: 64}
  load: {requests: 4, concurrency: 2}
benchmarks:
  - {name: talk, models: tiny}
"""


def test_a_session_job_with_a_prefix_expects_the_engines_history_hits(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Later turns hit the conversation so far, which the expected rate left out (0.78
    # achieved vs 0.44 expected on the simulator). Long answers (160 tokens, more than a
    # block of 128) tell whether the engine's cache keeps the answer's blocks too.
    plan = engine_project(tmp_path, vllm_server, SESSIONS, monkeypatch)
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "results"))
    assert code == EXIT_OK, out + err
    job = stored_jobs(tmp_path / "results", "engine")["talk"]
    block = job["metrics"]["prefix_cache"]
    print(block, [(r["session"], r["turn"], r["prompt_tokens"], r["output_tokens"])
                  for r in job["records"] if not r["warmup"]])
    assert block["achieved"] is not None and block["block_size"] == 128, block
    assert abs(block["gap"]) <= THRESHOLDS.prefix_cache_gap, block
