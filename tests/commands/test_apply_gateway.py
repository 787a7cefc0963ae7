"""`runner apply` through a real LiteLLM proxy that retries and falls back (issue 12): by default
runner asks for neither and sees every failure; allowed, the retries and fallbacks the proxy
made are recorded and judged; every answer's x-litellm-* headers are recorded.

The backends are small fake OpenAI servers (tests/flaky_backend.py), because the fault under
test (a 500 on the first call, or on every call) is one a real engine will not produce on
demand; the proxy in front of them is the real `litellm[proxy]`, configured as a production
one may be: `num_retries: 2` and a fallback group."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import jsonl_lines, manifest, run_dirs
from cli_helpers import run_cli
from conftest import require_litellm
from flaky_backend import Backend, flaky_backend
from litellm_proxy import LiteLLMProxy, start_proxy
from vllm_engine import VLLMServer

from runner.errors import EXIT_JOBS_FAILED, EXIT_OK

pytestmark = pytest.mark.litellm

REQUESTS = 4
ROUTER = {"num_retries": 2, "retry_after": 0, "fallbacks": [{"broken": ["spare"]}],
          "model_group_alias": {"steady-alias": "steady"}}


class Gateway:
    """The proxy and its backends, by model group."""

    def __init__(self, proxy: LiteLLMProxy, backends: dict[str, Backend]) -> None:
        self.proxy, self.backends = proxy, backends


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    binary = require_litellm()
    backends = {"flaky-default": Backend(fail_first=1), "flaky-retried": Backend(fail_first=1),
                "broken": Backend(fail_first=1 << 30), "spare": Backend(), "steady": Backend()}
    with ExitStack() as stack:
        models = []
        for name, backend in backends.items():
            url = stack.enter_context(flaky_backend(backend))
            models.append({"model_name": name, "litellm_params": {
                "model": f"openai/{name}-engine", "api_base": url, "api_key": "sk-backend"}})
        proxy = start_proxy(binary, tmp_path_factory.mktemp("gateway"), models, ROUTER)
        stack.callback(proxy.stop)
        yield Gateway(proxy, backends)


def plan(model: str) -> str:
    return f"""\
version: 1
name: gw
inventory: {{server: proxy, fallback: false}}
benchmarks:
  - name: gw
    models: "{model}"
    workload: {{synthetic: {{input_tokens: 8}}, max_tokens: 4}}
    load: {{requests: {REQUESTS}, concurrency: 1}}
"""


def apply(gw: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str], model: str, allowed: str = "",
          probe: bool = False) -> tuple[int, str, Path, dict[str, Any], list[dict[str, Any]]]:
    """Run `model`'s job; returns (exit code, output, run dir, job summary, its records).
    Without the probe unless `probe`: its request would take a flaky backend's first failure."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        f"servers:\n  proxy:\n    url: {gw.proxy.url}\n    api_key_env: PROXY_KEY\n{allowed}")
    (tmp_path / "gw.yaml").write_text(plan(model))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.setenv("PROXY_KEY", gw.proxy.master_key)
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", str(tmp_path / "gw.yaml"), "--results",
                             str(results), *(() if probe else ("--no-probe",)))
    [run] = run_dirs(results, "gw")
    [job] = manifest(run)["jobs"]
    summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
    records = jsonl_lines(run / "jobs" / f"{job['slug']}.requests.jsonl")
    return code, out + err, run, summary, records


def gateway_reasons(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in summary["metrics"]["validity"]["reasons"]
            if r["code"] in ("gateway_retries", "gateway_fallbacks", "deployment_mismatch")]


def test_by_default_a_failing_first_call_is_recorded_not_retried(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _, summary, records = apply(gateway, tmp_path, monkeypatch, capsys,
                                           "flaky-default")
    assert code == EXIT_JOBS_FAILED, out  # 1 of 4 failed: above max_error_rate 0
    calls = gateway.backends["flaky-default"].calls
    assert len(calls) == REQUESTS  # one call per request
    assert not any("disable_fallbacks" in c for c in calls)  # the proxy keeps it to itself
    first = records[0]
    assert (first["ok"], first["error_kind"], first["http_status"]) == (False, "http", 500)
    assert first["gateway"]["call_id"]  # the id to find the failure in the proxy's logs
    assert all(r["ok"] for r in records[1:])
    assert all(r["gateway"]["attempted_retries"] == 0 for r in records[1:])
    gw = summary["metrics"]["gateway"]
    assert gw["retries"] == {"requests": 0, "total": 0} and gw["requests"] == REQUESTS
    assert gateway_reasons(summary) == []


def test_retries_allowed_are_recorded_and_the_job_is_degraded(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, run, summary, records = apply(gateway, tmp_path, monkeypatch, capsys,
                                             "flaky-retried", "    gateway: {retries: true}\n")
    assert code == EXIT_OK, out
    assert len(gateway.backends["flaky-retried"].calls) == REQUESTS + 1  # the hidden retry
    assert all(r["ok"] for r in records)  # the failure is hidden from the client...
    assert [r["gateway"]["attempted_retries"] for r in records] == [1, 0, 0, 0]  # ...not here
    gw = summary["metrics"]["gateway"]
    assert gw["retries"] == {"requests": 1, "total": 1}
    # Other reasons (client_bound on a busy machine) may join: the gateway's must be there.
    [reason] = gateway_reasons(summary)
    assert reason["code"] == "gateway_retries" and reason["severity"] == "degraded"
    assert "1 of 4 requests retried by the proxy" in reason["figure"]
    assert summary["metrics"]["validity"]["verdict"] != "valid"
    assert "gateway_retries" in (run / "summary.md").read_text()


def test_by_default_a_fallback_is_refused_and_the_failure_recorded(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    spare = len(gateway.backends["spare"].calls)
    code, out, _, summary, records = apply(gateway, tmp_path, monkeypatch, capsys, "broken")
    assert code == EXIT_JOBS_FAILED, out
    assert [(r["ok"], r["http_status"]) for r in records] == [(False, 500)] * REQUESTS
    assert len(gateway.backends["spare"].calls) == spare  # never fell back
    assert summary["metrics"]["gateway"]["fallbacks"] == {"requests": 0, "total": 0}


def test_the_probe_asks_for_no_fallback_either(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Before: the probe sent no disable_fallbacks, so `spare` answered it for `broken` (ok,
    # kept) while every request of the job, which asks for no fallback, failed.
    spare = len(gateway.backends["spare"].calls)
    code, out, run, _, records = apply(gateway, tmp_path, monkeypatch, capsys, "broken",
                                       probe=True)
    assert code == EXIT_JOBS_FAILED, out
    assert len(gateway.backends["spare"].calls) == spare
    probed = manifest(run)["probe"]["broken"]
    assert (probed["status"], probed["http_status"]) == ("server_error", 500), probed
    assert [r["http_status"] for r in records] == [500] * REQUESTS


def test_a_fallback_allowed_is_detected_and_the_job_is_invalid(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    spare = len(gateway.backends["spare"].calls)
    code, out, run, summary, records = apply(gateway, tmp_path, monkeypatch, capsys, "broken",
                                             "    gateway: {fallbacks: true}\n")
    assert code == EXIT_OK, out  # every answer came... from another model
    assert len(gateway.backends["spare"].calls) == spare + REQUESTS
    assert all(r["ok"] and r["gateway"]["attempted_fallbacks"] == 1 for r in records)
    assert {r["gateway"]["model_group"] for r in records} == {"spare"}
    gw = summary["metrics"]["gateway"]
    assert gw["fallbacks"] == {"requests": REQUESTS, "total": REQUESTS}
    assert gw["model_groups"] == {"spare": REQUESTS}
    assert [r["code"] for r in gateway_reasons(summary)] == ["gateway_fallbacks"]
    assert summary["metrics"]["validity"]["verdict"] == "invalid"
    report = (run / "report.html").read_text()
    assert "gateway_fallbacks" in report and "<h3>Gateway</h3>" in report


def test_every_answer_records_the_gateway_headers_host_only(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, run, summary, records = apply(gateway, tmp_path, monkeypatch, capsys, "steady")
    assert code == EXIT_OK, out
    [backend_url] = {r["gateway"]["api_base"] for r in records}
    assert backend_url.startswith("127.0.0.1:")  # host:port: no scheme, user, path or query
    for r in records:
        g = r["gateway"]
        assert g["litellm_version"] == "1.106.2" and g["model_group"] == "steady"
        assert g["overhead_ms"] is not None and 0 <= g["overhead_ms"] <= r["e2e_ms"]
        assert g["duration_ms"] is not None and len(g["deployment_id"]) == 64
        assert (g["attempted_retries"], g["attempted_fallbacks"]) == (0, 0)
    assert len({r["gateway"]["call_id"] for r in records}) == REQUESTS
    gw = summary["metrics"]["gateway"]
    assert gw["overhead_ms"]["count"] == gw["model_time_ms"]["count"] == REQUESTS
    assert gw["model_time_ms"]["p50"] <= summary["metrics"]["e2e_ms"]["p50"]
    assert list(gw["deployments"].values()) == [REQUESTS] and gw["mismatched"] == 0
    assert gateway_reasons(summary) == []
    assert manifest(run)["gateway"] == {"litellm_versions": ["1.106.2"],
                                        "deployments": gw["deployments"],
                                        "shared_deployments": {}}
    assert "**Gateway**" in (run / "summary.md").read_text()
    stored = "".join(p.read_text() for p in run.rglob("*") if p.is_file())
    for secret in ("sk-backend", gateway.proxy.master_key):
        assert secret not in out + stored


def test_an_alias_and_its_target_share_a_deployment_in_the_manifest(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """LiteLLM reports the alias as its own model group: only the run sees one deployment
    answer both ids."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        f"servers:\n  proxy:\n    url: {gateway.proxy.url}\n    api_key_env: PROXY_KEY\n")
    (tmp_path / "gw.yaml").write_text(plan("steady, steady-alias"))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.setenv("PROXY_KEY", gateway.proxy.master_key)
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", str(tmp_path / "gw.yaml"), "--results",
                             str(results))
    assert code == EXIT_OK, out + err
    [run] = run_dirs(results, "gw")
    block = manifest(run)["gateway"]
    [(deployment, models)] = block["shared_deployments"].items()
    assert models == ["steady", "steady-alias"] and block["deployments"][deployment] == 2 * REQUESTS


@pytest.mark.vllm
def test_an_engine_without_a_proxy_takes_what_runner_asks_and_has_no_gateway(
        vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """vLLM ignores `disable_fallbacks` (a warning in its log) and the header: the job runs."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(f"servers:\n  proxy:\n    url: {vllm_server.url}\n")
    (tmp_path / "gw.yaml").write_text(plan("tiny").replace(
        "inventory: {server: proxy, fallback: false}", "inventory: {server: proxy}"))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", str(tmp_path / "gw.yaml"), "--results",
                             str(results))
    assert code == EXIT_OK, out + err
    [run] = run_dirs(results, "gw")
    [job] = manifest(run)["jobs"]
    summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
    assert summary["metrics"]["requests"]["ok"] == REQUESTS
    assert summary["metrics"]["gateway"] is None and manifest(run)["gateway"] is None
