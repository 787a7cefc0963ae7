"""A Mooncake trace replayed against a real vLLM engine (issue 14 §5): requests that share hash
ids share prompt prefixes at the token level, so the engine's own prefix cache answers them;
the same trace with every hash id distinct gets almost nothing from it."""

from __future__ import annotations

import json
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
defaults:
  workload: {trace_format: mooncake, temperature: 0}
  load: {replay: {speed: 1}, max_concurrency: 1, request_timeout_s: 120}
benchmarks:
  - {name: shared, models: tiny, workload: {trace: shared.jsonl}}
  - {name: distinct, models: tiny, workload: {trace: distinct.jsonl}}
"""
# The tiny model's tokens are characters: 150 words are ~900 tokens, within its 2048. One in
# flight (max_concurrency 1): each prompt is in the cache before the next one is sent, however
# busy the machine (a run with 1 s gaps and no cap measured 0.51 shared, 0.0 distinct).
LENGTHS = (150, 150, 150, 120)


def _trace(ids: list[int]) -> str:
    return "".join(json.dumps({"timestamp": 1000 * i, "input_length": n, "output_length": 4,
                               "hash_ids": [h]}) + "\n"
                   for i, (n, h) in enumerate(zip(LENGTHS, ids, strict=True)))


def test_shared_hash_ids_hit_the_engines_prefix_cache(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = engine_project(tmp_path, vllm_server, PLAN, monkeypatch)
    (tmp_path / "shared.jsonl").write_text(_trace([1, 1, 1, 1]))
    (tmp_path / "distinct.jsonl").write_text(_trace([11, 12, 13, 14]))
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "results"))
    assert code == EXIT_OK, out + err
    jobs = stored_jobs(tmp_path / "results", "engine")
    hit_rates = {}
    for name, job in jobs.items():
        assert job["metrics"]["replay"]["sent"] == 4, name
        assert [r["ok"] for r in job["records"]] == [True] * 4, name
        series = job["server_metrics"]["series"]
        queries, hits = (series[k]["delta"] for k in ("prefix_cache_queries", "prefix_cache_hits"))
        # Every prompt token was looked up: the trace's requests and nothing else.
        assert queries == sum(r["prompt_tokens"] for r in job["records"]), name
        hit_rates[name] = hits / queries
    # Shared: the 2nd to 4th prompts are (prefixes of) the 1st, whole 16-token blocks of them
    # cached: up to about 3/4 of all prompt tokens. Distinct: the chat template's start at most.
    assert hit_rates["shared"] > 0.4, hit_rates
    assert hit_rates["distinct"] < 0.1, hit_rates
