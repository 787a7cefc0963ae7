"""Reasoning through a real LiteLLM proxy (issue 14 §3): the simulator reasons before it
answers (`reasoning_content` chunks, usage completion_tokens_details.reasoning_tokens), the
real `litellm[proxy]` sits in front of it as the `openai/` and the `hosted_vllm/` provider,
and runner's records still tell the first token (reasoning) from the first answer token, and
get the reasoning token count, streamed and not.

What LiteLLM 1.106 does with them (its source): the streaming handler keeps a delta's
`reasoning_content` (litellm_core_utils/streaming_handler.py), renames a provider's
`reasoning` to `reasoning_content` (llms/openai/chat/gpt_transformation.py), and carries
usage's completion_tokens_details through (litellm_core_utils/streaming_chunk_builder_utils)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from apply_helpers import stored_jobs
from cli_helpers import run_cli
from conftest import require_litellm
from litellm_proxy import LiteLLMProxy, start_proxy

from runner.errors import EXIT_OK
from runner.mock.process import mock_process
from runner.mock.server import MockConfig

pytestmark = pytest.mark.litellm

THOUGHTS = 4
ANSWER = 3
ENGINE = MockConfig(models=("thinker-engine",), ttft_ms=20, itl_ms=25, output_tokens=ANSWER,
                    reasoning_tokens=THOUGHTS)
PROVIDERS = {"thinker-openai": "openai", "thinker-vllm": "hosted_vllm"}
PLAN = """\
version: 1
name: think
inventory: {server: proxy, fallback: false}
benchmarks:
  - name: streamed
    models: "thinker-*"
    workload: {synthetic: {input_tokens: 8}, max_tokens: 64}
    load: {requests: 3, concurrency: 1}
  - name: whole
    models: "thinker-*"
    workload: {synthetic: {input_tokens: 8}, max_tokens: 64, stream: false}
    load: {requests: 2, concurrency: 1}
"""


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMProxy]:
    binary = require_litellm()
    with ExitStack() as stack:
        url = stack.enter_context(mock_process(ENGINE))
        models = [{"model_name": name, "litellm_params": {
            "model": f"{provider}/thinker-engine", "api_base": f"{url}/v1",
            "api_key": "sk-backend"}} for name, provider in PROVIDERS.items()]
        running = start_proxy(binary, tmp_path_factory.mktemp("reasoning-proxy"), models)
        stack.callback(running.stop)
        yield running


def test_ttfo_and_reasoning_tokens_arrive_through_the_proxy(
        proxy: LiteLLMProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        f"servers:\n  proxy:\n    url: {proxy.url}\n    api_key_env: PROXY_KEY\n")
    (tmp_path / "think.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.setenv("PROXY_KEY", proxy.master_key)
    code, out, err = run_cli(capsys, "apply", str(tmp_path / "think.yaml"), "--results",
                             str(tmp_path / "results"), "--no-probe")
    assert code == EXIT_OK, out + err
    jobs = stored_jobs(tmp_path / "results", "think", by="id")
    assert set(jobs) == {f"{b}/{m}" for b in ("streamed", "whole") for m in PROVIDERS}
    for model in PROVIDERS:
        for record in jobs[f"streamed/{model}"]["records"]:
            assert record["ok"], record["error"]
            # The reasoning came first and the answer THOUGHTS x 25 ms after it.
            assert record["ttfo_ms"] > record["ttft_ms"], model
            assert (record["reasoning_tokens"], record["reasoning_chunks"]) == (THOUGHTS,
                                                                                THOUGHTS)
            assert record["output_tokens"] == THOUGHTS + ANSWER
        for record in jobs[f"whole/{model}"]["records"]:
            assert record["ok"], record["error"]
            assert "ttfo_ms" not in record and record["reasoning_tokens"] == THOUGHTS
        for benchmark in ("streamed", "whole"):
            split = jobs[f"{benchmark}/{model}"]["metrics"]["reasoning"]
            assert split["source"] == "usage" and split["answer_tokens"]["p50"] == ANSWER
            assert split["requests_with_reasoning"] == len(jobs[f"{benchmark}/{model}"]["records"])
