"""Multi-turn sessions against a real vLLM engine (workload.session, issue 14 §2): each turn
sends the conversation so far, so turn 4's prompt is the longest, and the engine's own prefix
cache (its Prometheus counters) finds the history that earlier turns left in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from apply_helpers import stored_jobs
from cli_helpers import run_cli
from vllm_engine import VLLMServer, engine_project

from runner.errors import EXIT_OK

pytestmark = [pytest.mark.vllm]

PLAN = """\
version: 1
name: engine
inventory: {server: engine, fallback: false}
benchmarks:
  - name: talk
    models: tiny
    workload:
      synthetic: {input_tokens: 200}
      max_tokens: 16
      temperature: 0
      extra_body: {ignore_eos: true}
      session: {turns: 4, user_tokens: 24}
    load: {concurrency: 2, requests: 2}
"""


def test_a_four_turn_session_grows_its_prompt_and_hits_the_engines_prefix_cache(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = engine_project(tmp_path, vllm_server, PLAN, monkeypatch)
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "results"))
    assert code == EXIT_OK, out + err
    [job] = stored_jobs(tmp_path / "results", "engine").values()
    turns = job["metrics"]["by_turn"]["turns"]
    assert [(t["turn"], t["ok"]) for t in turns] == [(1, 2), (2, 2), (3, 2), (4, 2)]
    prompts = [t["prompt_tokens"]["min"] for t in turns]
    assert prompts == sorted(prompts) and prompts[3] > prompts[0] + 3 * 16, prompts
    for record in job["records"]:  # each turn's prompt holds the previous one's and its answer
        if record["turn"] > 1:
            before = next(r for r in job["records"] if r["session"] == record["session"]
                          and r["turn"] == record["turn"] - 1)
            assert record["prompt_tokens"] > before["prompt_tokens"] + before["output_tokens"]
    series = job["server_metrics"]["series"]
    assert series["prefix_cache_hits"]["delta"] > 0, series["prefix_cache_hits"]
    assert series["prefix_cache_queries"]["delta"] >= series["prefix_cache_hits"]["delta"]
