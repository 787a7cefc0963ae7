"""The probe through a real LiteLLM proxy (issue 12 §2, §4): a backend that answers 404, one
that refuses its key (401), an embedding-only backend asked for a chat completion, and a wrong
key for the proxy itself. Good models route to the simulator. The failing backends are a small
fake server (below), because no real backend is at hand that fails this way on cue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import manifest, run_dirs
from cli_helpers import run_cli
from conftest import require_litellm
from litellm_proxy import LiteLLMProxy, start_proxy
from served import serving_http

from runner.errors import EXIT_INVENTORY, EXIT_OK
from runner.inventory.config import Server
from runner.mock.process import mock_process
from runner.mock.server import MockConfig
from runner.run.probewire import ProbeTarget, run_probe

pytestmark = pytest.mark.litellm

BACKEND_KEY = "sk-backend-only-51c2"
# What each failing backend model answers to /chat/completions: (status, OpenAI error message).
# The 404 and the embedding wording are OpenAI's own.
FAILING = {
    "gone": (404, "The model `gone` does not exist or you do not have access to it."),
    "locked": (401, "Incorrect API key provided: sk-back****. You can find your API key at "
                    "https://platform.openai.com/account/api-keys."),
    "embedder": (404, "This is not a chat model and thus not supported in the "
                      "v1/chat/completions endpoint. Did you mean to use v1/completions?"),
}
EXPECTED = {"bad/gone": "not_found", "bad/locked": "unauthorized", "bad/embedder": "wrong_mode",
            "good/a": "ok", "good/alias": "ok", "good/b": "ok"}
ALIAS = {"good/alias": "good/a"}  # router_settings.model_group_alias: one deployment, two ids


class _Failing(BaseHTTPRequestHandler):
    received: list[str]

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        model = str(body.get("model"))
        self.received.append(model)
        status, message = FAILING.get(model, (500, "unknown model"))
        data = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                     "param": None, "code": None}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def failing_backend() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []
    handler = type("Handler", (_Failing,), {"received": received})
    with serving_http(handler) as url:
        yield f"{url}/v1", received


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory,
          failing_backend: tuple[str, list[str]]) -> Iterator[LiteLLMProxy]:
    binary = require_litellm()
    config = MockConfig(models=("a", "b"), ttft_ms=5.0, itl_ms=1.0, output_tokens=8,
                        api_key=BACKEND_KEY)
    with mock_process(config) as sim_url:
        models = [{"model_name": f"good/{name}",
                   "litellm_params": {"model": f"openai/{name}", "api_base": f"{sim_url}/v1",
                                      "api_key": BACKEND_KEY}} for name in config.models]
        models += [{"model_name": f"bad/{name}",
                    "litellm_params": {"model": f"openai/{name}", "api_base": failing_backend[0],
                                       "api_key": BACKEND_KEY}} for name in FAILING]
        running = start_proxy(binary, tmp_path_factory.mktemp("probe"),
                                                   models, {"model_group_alias": ALIAS})
        try:
            yield running
        finally:
            running.stop()


PLAN = """\
version: 1
name: probed
inventory: {server: proxy, fallback: false}
benchmarks:
  - name: chat
    models: all
    workload: {synthetic: {input_tokens: 16}, max_tokens: 8}
    load: {requests: 3, concurrency: 1}
"""


def _workspace(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch, key: str) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        f"servers:\n  proxy:\n    url: {url}\n    api_key_env: PROXY_KEY\n")
    (configs / "models.yaml").write_text(
        "models:\n" + "".join(f"  - id: {m}\n" for m in sorted(EXPECTED)))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.setenv("PROXY_KEY", key)
    plan = tmp_path / "probed.yaml"
    plan.write_text(PLAN)
    return plan


def test_plan_probe_drops_what_the_key_cannot_call(
    proxy: LiteLLMProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _workspace(tmp_path, proxy.url, monkeypatch, proxy.master_key)
    code, out, err = run_cli(capsys, "plan", str(plan), "--probe", "--json")
    assert code == EXIT_OK, err
    view = json.loads(out)
    assert {m: v["status"] for m, v in view["probe"].items()} == EXPECTED
    assert "check the key" in view["probe"]["bad/locked"]["reason"]
    assert view["probe"]["good/a"]["deployment"]  # x-litellm-model-id of the deployment
    assert view["probe"]["good/a"]["streams_usage"] is True
    # The simulator always writes its 8 tokens: 4 of 4 came either way, nothing to tell.
    assert view["probe"]["good/a"]["honours_min_tokens"] is None
    assert sorted(job["model"] for job in view["jobs"]) == ["good/a", "good/alias", "good/b"]
    assert view["probe"]["good/alias"]["same_deployment_as"] == ["good/a"]
    assert view["probe"]["good/alias"]["deployment"] == view["probe"]["good/a"]["deployment"]
    assert "same_deployment_as" not in view["probe"]["good/b"]
    # No database behind this proxy: /key/info cannot answer, and the plan says so.
    assert view["key_limits"]["proxy"]["unknown"].startswith("GET /key/info answered HTTP")
    code, out, _ = run_cli(capsys, "plan", str(plan), "--probe")
    assert "key limits unknown (GET /key/info answered HTTP" in out
    assert "bad/embedder [chat] WRONG_MODE" in out
    assert "dropped before the run (3): bad/embedder, bad/gone, bad/locked" in out
    assert "  DUPLICATE: good/a, good/alias answered by one deployment (" in out


def test_plan_without_probe_sends_nothing(
    proxy: LiteLLMProxy, failing_backend: tuple[str, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _workspace(tmp_path, proxy.url, monkeypatch, proxy.master_key)
    before = len(failing_backend[1])
    code, out, _ = run_cli(capsys, "plan", str(plan), "--json")
    assert code == EXIT_OK
    assert "probe" not in json.loads(out)
    assert len(failing_backend[1]) == before


def test_apply_runs_only_the_usable_models(
    proxy: LiteLLMProxy, failing_backend: tuple[str, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _workspace(tmp_path, proxy.url, monkeypatch, proxy.master_key)
    before = len(failing_backend[1])
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(results))
    assert code == EXIT_OK, out + err
    [run] = run_dirs(results, "probed")
    summary = (run / "summary.md").read_text()
    assert "3 model(s) dropped by the probe before the run, their jobs not run: bad/embedder: " \
        "wrong\\_mode" in summary
    assert "one deployment answered for good/a, good/alias" in summary
    found = manifest(run)
    assert sorted(job["model"] for job in found["jobs"]) == ["good/a", "good/alias", "good/b"]
    assert {m: v["status"] for m, v in found["probe"].items()} == EXPECTED
    # The failing backend saw the probe (one request per model) and nothing of any job.
    assert sorted(failing_backend[1][before:]) == sorted(FAILING)
    assert "probe: bad/gone [chat] dropped, not_found" in err


def test_apply_no_probe_runs_the_failing_jobs(
    proxy: LiteLLMProxy, failing_backend: tuple[str, list[str]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _workspace(tmp_path, proxy.url, monkeypatch, proxy.master_key)
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(results),
                             "--no-report", "--no-probe", "--limit", "bad/gone")
    assert code == 1, out + err  # the job ran and failed: no probe dropped it
    [run] = run_dirs(results, "probed")
    assert "probe" not in manifest(run)


def test_a_wrong_key_says_check_the_key(proxy: LiteLLMProxy, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The inventory refuses a wrong key first; from the fallback inventory, the probe drops
    every model as unauthorized (LiteLLM without a database: 400 "No connected db.")."""
    plan = _workspace(tmp_path, proxy.url, monkeypatch, "sk-wrong-key-0000")
    code, _, err = run_cli(capsys, "plan", str(plan), "--probe")
    assert code == EXIT_INVENTORY
    assert "rejected the API key from $PROXY_KEY" in err
    code, _, err = run_cli(capsys, "apply", str(plan), "--source", "fallback",
                           "--results", str(tmp_path / "results"))
    assert code == EXIT_INVENTORY, err
    assert "the probe dropped every selected model" in err
    assert "unauthorized" in err and "check the key" in err
    assert "sk-wrong-key-0000" not in err
    server = Server("proxy", proxy.url, api_key_env="PROXY_KEY")
    report = run_probe([ProbeTarget(server, "good/a", {"endpoint": "chat"})],
                       {"PROXY_KEY": "sk-wrong-key-0000"})
    assert [r.status for r in report.results] == ["unauthorized"]
