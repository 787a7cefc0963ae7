"""A plan with two servers, one a real LiteLLM proxy and the other the engine behind it: each
resolves against its own inventory, each is probed with its own key, both run side by side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from apply_helpers import manifest, run_dirs
from cli_helpers import run_cli
from conftest import require_litellm
from litellm_proxy import LiteLLMProxy, start_proxy

from runner.errors import EXIT_OK
from runner.mock.process import mock_process
from runner.mock.server import MockConfig

pytestmark = pytest.mark.litellm

BACKEND_KEY = "sk-backend-only-51c0"


@pytest.fixture(scope="module")
def gateway_and_engine(tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[tuple[LiteLLMProxy, str]]:
    binary = require_litellm()
    config = MockConfig(models=("Qwen3-8B",), ttft_ms=30.0, itl_ms=3.0, output_tokens=16,
                        api_key=BACKEND_KEY)
    with mock_process(config) as sim_url:
        models = [{"model_name": "sim/Qwen3-8B",
                   "litellm_params": {"model": "openai/Qwen3-8B", "api_base": f"{sim_url}/v1",
                                      "api_key": BACKEND_KEY}}]
        proxy = start_proxy(binary, tmp_path_factory.mktemp("gateway"), models)
        try:
            yield proxy, sim_url
        finally:
            proxy.stop()


PLAN = """\
version: 1
name: beside
inventory: {servers: [proxy, engine], fallback: false}
defaults:
  workload: {synthetic: {input_tokens: 16}, max_tokens: 16}
  load: {concurrency: 2, requests: 8}
benchmarks:
  - name: latency
    models: "~(sim/)?Qwen3-8B"
"""


def test_a_proxy_and_its_engine_in_one_plan(
    gateway_and_engine: tuple[LiteLLMProxy, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    proxy, engine = gateway_and_engine
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        f"servers:\n  proxy:\n    url: {proxy.url}\n    api_key_env: PROXY_KEY\n"
        f"  engine:\n    url: {engine}\n    api_key_env: ENGINE_KEY\n")
    (tmp_path / "beside.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.setenv("PROXY_KEY", proxy.master_key)
    monkeypatch.setenv("ENGINE_KEY", BACKEND_KEY)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "apply", "beside.yaml", "--results", "results", "--forks",
                             "2", "--no-report")
    assert code == EXIT_OK, out + err
    [run] = run_dirs(Path("results"), "beside")
    data = manifest(run)
    assert [j["id"] for j in data["jobs"]] == ["proxy:latency/sim/Qwen3-8B",
                                              "engine:latency/Qwen3-8B"]
    assert [(i["server"], i["source"]) for i in data["inventories"]] == [
        ("proxy", "live"), ("engine", "live")]
    assert set(data["probe"]) == {"proxy:sim/Qwen3-8B", "engine:Qwen3-8B"}
    for job in data["jobs"]:
        summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
        assert summary["status"] == "ok" and summary["metrics"]["requests"]["ok"] == 8
    assert out.index("server: proxy") < out.index("server: engine")
