"""`runner inventory` and `runner plan` end to end against a real LiteLLM proxy."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli, run_json, write_configs, write_plan
from litellm_proxy import SERVED_IDS, LiteLLMProxy

from runner.errors import EXIT_INVENTORY, EXIT_OK

pytestmark = pytest.mark.litellm

PLAN = """\
version: 1
name: live
inventory: {include_wildcard_expansions: true}  # the `wildcard` benchmark selects expansions
benchmarks:
  - name: qwen
    models: "Qwen/*, !*-FP8"
    matrix: {concurrency: [1, 8]}
  - name: colon
    models: "llama3.1:8b"
  - name: wildcard
    models: "~openai/gpt-4o, &*mini*"
  - name: coders
    models: "@coder"
"""


@pytest.fixture
def configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, litellm_proxy: LiteLLMProxy
) -> Path:
    folder = write_configs(tmp_path / "configs", litellm_proxy.url)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(folder))
    monkeypatch.setenv("TEST_LITELLM_KEY", litellm_proxy.master_key)
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    return folder


def test_inventory_is_live_and_keeps_ids_intact(
    configs: Path, litellm_proxy: LiteLLMProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, err = run_json(capsys, "inventory", "--json")
    assert code == EXIT_OK and err == ""
    assert data["source"] == "live" and data["fallback_reason"] is None
    ids = [m["id"] for m in data["models"]]
    assert set(SERVED_IDS) <= set(ids)
    assert ids == sorted(set(ids)) and not any("*" in i for i in ids)
    assert len(ids) == len(SERVED_IDS) + len(litellm_proxy.wildcard_ids)


def test_plan_resolves_patterns_against_the_live_inventory(
    configs: Path, tmp_path: Path, litellm_proxy: LiteLLMProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, data, err = run_json(capsys, "plan", str(write_plan(tmp_path, PLAN)), "--json")
    assert code == EXIT_OK and err == ""
    assert data["inventory"]["source"] == "live"
    models = {b["name"]: b["models"] for b in data["benchmarks"]}
    assert models["qwen"] == ["Qwen/Qwen3-8B", "Qwen/Qwen3-Coder-30B-A3B-Instruct"]
    assert models["colon"] == ["llama3.1:8b"]
    assert models["wildcard"] and all(m.startswith("openai/gpt-4o") and "mini" in m
                                      for m in models["wildcard"])
    assert models["coders"] == ["Qwen/Qwen3-Coder-30B-A3B-Instruct", "mistralai/Codestral-22B"]
    assert "qwen/Qwen/Qwen3-8B/concurrency=8" in [j["id"] for j in data["jobs"]]


def test_plan_text_says_live(
    configs: Path, tmp_path: Path, litellm_proxy: LiteLLMProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "plan", str(write_plan(tmp_path, PLAN)))
    assert code == EXIT_OK
    assert f"inventory: live from server 'local' ({litellm_proxy.url})" in out
    assert litellm_proxy.master_key not in out


def test_wrong_key_is_exit_3_without_fallback(
    configs: Path, tmp_path: Path, litellm_proxy: LiteLLMProxy,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_LITELLM_KEY", "sk-wrong-key-0123456789")
    code, out, err = run_cli(capsys, "plan", str(write_plan(tmp_path, PLAN)))
    assert code == EXIT_INVENTORY and out == ""
    assert err.count("\n") == 1
    assert "'local'" in err and "TEST_LITELLM_KEY" in err
    assert "sk-wrong-key" not in err and "fallback" not in err.lower()


def test_missing_key_is_exit_3(
    configs: Path, litellm_proxy: LiteLLMProxy, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TEST_LITELLM_KEY")
    code, _, err = run_cli(capsys, "inventory")
    assert code == EXIT_INVENTORY and "TEST_LITELLM_KEY" in err


def test_proxy_down_falls_back_with_warning_and_records_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_url: str,
    litellm_proxy: LiteLLMProxy, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(write_configs(tmp_path / "c", dead_url)))
    body = PLAN.replace('"~openai/gpt-4o, &*mini*"', "openai/*\n    on_empty: skip")
    plan = write_plan(tmp_path, body)
    code, data, err = run_json(capsys, "plan", str(plan), "--json")
    assert code == EXIT_OK and "WARNING: inventory from the fallback file" in err
    assert data["inventory"]["source"] == "fallback"
    assert "connection refused" in data["inventory"]["fallback_reason"]
    assert data["benchmarks"][2]["skipped"] is True
    code, _, err = run_cli(capsys, "plan", str(plan), "--source", "live")
    assert code == EXIT_INVENTORY and "--source live forbids the fallback" in err
