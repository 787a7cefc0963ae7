"""Embeddings and Responses API jobs through a real LiteLLM proxy in front of the simulator, and
mode-aware selection from the proxy's metadata (`model_info: {mode: embedding}`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from apply_helpers import jsonl_lines, manifest, run_dirs
from cli_helpers import run_cli
from conftest import require_litellm
from litellm_proxy import LiteLLMProxy, start_proxy

from runner.errors import EXIT_OK
from runner.mock.process import mock_process
from runner.mock.server import MockConfig

pytestmark = pytest.mark.litellm

TTFT_MS, ITL_MS, NATURAL = 30.0, 2.0, 6
BACKEND_KEY = "sk-backend-only-4b1f"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMProxy]:
    """sim/chat (no metadata: mode unknown) and sim/embed (model_info mode embedding)."""
    binary = require_litellm()
    config = MockConfig(models=("chatm", "embedm"), ttft_ms=TTFT_MS, itl_ms=ITL_MS,
                        output_tokens=NATURAL, api_key=BACKEND_KEY)
    with mock_process(config) as sim_url:
        params = {"api_base": f"{sim_url}/v1", "api_key": BACKEND_KEY}
        models = [
            {"model_name": "sim/chat", "litellm_params": {"model": "openai/chatm", **params}},
            {"model_name": "sim/embed", "litellm_params": {"model": "openai/embedm", **params},
             "model_info": {"mode": "embedding"}},
        ]
        running = start_proxy(binary, tmp_path_factory.mktemp("endpoints"), models)
        try:
            yield running
        finally:
            running.stop()


PLAN = """\
version: 1
name: endpoints
inventory: {server: proxy, fallback: false}
benchmarks:
  - name: embed
    models: "sim/*"
    workload: {endpoint: embeddings, synthetic: {input_tokens: 10}, embeddings: {batch_size: 3}}
    load: {requests: 4, concurrency: 2}
  - name: resp
    models: "sim/*"
    workload: {endpoint: responses, synthetic: {input_tokens: 10}, max_tokens: 32}
    load: {requests: 4, concurrency: 2}
    matrix: {stream: [true, false]}
  - name: chat
    models: "sim/*"
    workload: {synthetic: {input_tokens: 10}, max_tokens: 32}
    load: {requests: 2}
"""


def setup(proxy: LiteLLMProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        f"servers:\n  proxy:\n    url: {proxy.url}\n    api_key_env: PROXY_KEY\n")
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.setenv("PROXY_KEY", proxy.master_key)
    plan = tmp_path / "endpoints.yaml"
    plan.write_text(PLAN)
    return plan


def test_plan_selects_models_by_their_mode(
    proxy: LiteLLMProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = setup(proxy, tmp_path, monkeypatch)
    code, out, err = run_cli(capsys, "plan", str(plan), "--json")
    assert code == EXIT_OK, out + err
    shown = json.loads(out)
    chosen = {b["name"]: (b["models"], b["skipped_by_mode"]) for b in shown["benchmarks"]}
    assert chosen["embed"][0] == ["sim/embed"]
    assert chosen["resp"][0] == chosen["chat"][0] == ["sim/chat"]
    code, out, err = run_cli(capsys, "plan", str(plan))
    assert "skipped (mode unknown): sim/chat" in out  # embed: a glob, and no mode known
    assert out.count("skipped (mode embedding): sim/embed") == 2  # resp and chat
    code, out, err = run_cli(capsys, "plan", str(plan), "--probe")
    assert code == EXIT_OK, out + err
    assert "sim/embed [embeddings] OK  (deployment " in out, out  # no usage, reasoning to ask
    assert "sim/chat [responses] OK  (usage yes, deployment " in out, out


def test_apply_embeddings_and_responses_through_litellm(
    proxy: LiteLLMProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = setup(proxy, tmp_path, monkeypatch)
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "results"))
    assert code == EXIT_OK, out + err
    assert "jobs: ok=4 slo_missed=0 failed=0" in out
    [run] = run_dirs(tmp_path / "results", "endpoints")
    for job in manifest(run)["jobs"]:
        summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
        metrics = summary["metrics"]
        records = jsonl_lines(run / "jobs" / f"{job['slug']}.requests.jsonl")
        assert all(r["ok"] for r in records), records
        endpoint, streamed = job["params"]["endpoint"], job["params"].get("stream")
        if endpoint == "embeddings":
            assert {(r["inputs"], r["prompt_tokens"]) for r in records} == {(3, 30)}
            assert metrics["throughput"]["inputs_per_s"] > 0
            assert all(r["e2e_ms"] >= TTFT_MS for r in records)
        elif endpoint == "responses":
            # the simulator's answer, its usage passed on by LiteLLM's Responses route
            assert {(r["output_tokens"], r["output_tokens_source"], r["prompt_tokens"])
                    for r in records} == {(NATURAL, "usage", 10)}
            if streamed:
                assert {r["content_chunks"] for r in records} == {NATURAL}
                assert metrics["ttft_ms"]["min"] >= TTFT_MS
            else:
                assert metrics["ttft_ms"]["count"] == 0
        # nothing about the answers or the tokens; a busy machine may make the client the limit
        assert {r["code"] for r in metrics["validity"]["reasons"]} <= {"client_bound"}
