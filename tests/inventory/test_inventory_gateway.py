"""Issue 12 §1 against a real LiteLLM proxy: `/v1/models` is a listing, not the truth.

The proxy of this file serves, all with mock answers: a wildcard route `openai/*` (listed as
LiteLLM's price-list names), a configured `openai/gpt-4o` the route would also match, two real
models, an alias of one of them (another name for the same backend model), a model group with
two deployments (one id), a model in `embedding` mode and a model whose metadata the config
declares (read from /model_group/info).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli, run_json, write_configs, write_plan
from litellm_proxy import LiteLLMProxy, listed_ids, start_proxy
from scripted_server import Script, scripted_server

from runner.errors import EXIT_INVENTORY, EXIT_OK

pytestmark = pytest.mark.litellm

EXPLICIT = "openai/gpt-4o"  # configured by name, and matched by the wildcard route too
CHAT_IDS = ("Qwen/Qwen3-8B", "qwen-alias", "duo", "described", EXPLICIT)
EMBEDDER = "embedder"


def _gateway_models(backend_key: str) -> list[dict[str, Any]]:
    def mock(model: str, **info: Any) -> dict[str, Any]:
        params = {"model": model, "mock_response": "hi", "api_key": backend_key}
        return {"litellm_params": params, **({"model_info": info} if info else {})}

    return [
        {"model_name": "Qwen/Qwen3-8B", **mock("openai/Qwen/Qwen3-8B")},
        {"model_name": "qwen-alias", **mock("openai/Qwen/Qwen3-8B")},
        {"model_name": "duo", **mock("openai/duo-a")},
        {"model_name": "duo", **mock("openai/duo-b")},
        {"model_name": "described",
         **mock("openai/described", mode="chat", max_input_tokens=4096, max_output_tokens=512)},
        {"model_name": EMBEDDER, **mock("openai/text-embedding-3-small", mode="embedding")},
        {"model_name": EXPLICIT, **mock("openai/gpt-4o")},
        {"model_name": "openai/*", **mock("openai/*")},
    ]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMProxy]:
    from conftest import require_litellm

    binary = require_litellm()
    key = f"fake-backend-key-{secrets.token_hex(8)}"
    proxy = start_proxy(binary, tmp_path_factory.mktemp("gateway"), _gateway_models(key))
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway: LiteLLMProxy) -> Path:
    folder = write_configs(tmp_path / "configs", gateway.url)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(folder))
    monkeypatch.setenv("TEST_LITELLM_KEY", gateway.master_key)
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    return folder


def _expansions(gateway: LiteLLMProxy) -> list[str]:
    configured = {*CHAT_IDS, EMBEDDER}
    return sorted({i for i in listed_ids(gateway) if i not in configured and "*" not in i})


def _plan(tmp_path: Path, models: str, inventory: str = "") -> Path:
    body = f"version: 1\nname: gw\n{inventory}benchmarks:\n  - name: b\n    models: \"{models}\"\n"
    return write_plan(tmp_path, body)


def test_inventory_marks_expansions_and_says_where_metadata_came_from(
    configs: Path, gateway: LiteLLMProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    expansions = _expansions(gateway)
    assert len(expansions) > 20, "the wildcard route listed no price-list names"
    code, data, err = run_json(capsys, "inventory", "--json")
    assert code == EXIT_OK and err == ""
    models = {m["id"]: m for m in data["models"]}
    assert sorted(i for i, m in models.items() if m["wildcard_expansion"]) == expansions
    for model_id in (*CHAT_IDS, EMBEDDER):  # `duo`, two deployments, is one id
        assert models[model_id]["wildcard_expansion"] is False, model_id
    assert data["wildcard_expansions"] == len(expansions)
    described = models["described"]
    assert (described["max_input_tokens"], described["max_output_tokens"]) == (4096, 512)
    assert described["metadata_source"] == "model_group_info"
    assert models[EMBEDDER]["mode"] == "embedding"
    # The proxy knows nothing of it; the fallback file (tests/cli_helpers.py) says chat.
    assert (models["Qwen/Qwen3-8B"]["mode"], models["Qwen/Qwen3-8B"]["metadata_source"]) == (
        "chat", "models.yaml")
    code, out, _ = run_cli(capsys, "inventory")
    row = next(line.split() for line in out.splitlines() if line.startswith(expansions[0] + " "))
    assert row[-1] == "wildcard"
    assert f"{len(expansions)} of these ids exist only because a wildcard route" in out


def test_all_leaves_expansions_and_other_modes_out_and_says_so(
    configs: Path, tmp_path: Path, gateway: LiteLLMProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    expansions = _expansions(gateway)
    code, data, err = run_json(capsys, "plan", str(_plan(tmp_path, "all")), "--json")
    assert code == EXIT_OK, err
    [bench] = data["benchmarks"]
    assert bench["models"] == sorted(CHAT_IDS)
    assert bench["skipped_by_mode"] == [{"id": EMBEDDER, "mode": "embedding"}]
    assert bench["wildcard_expansions_left_out"] == len(expansions)
    code, out, _ = run_cli(capsys, "plan", str(_plan(tmp_path, "all")))
    assert code == EXIT_OK
    assert f"  skipped (mode embedding): {EMBEDDER}" in out.splitlines()
    assert f"{len(expansions)} wildcard expansions left out" in out
    assert "include_wildcard_expansions: true" in out


def test_the_switch_or_an_exact_id_selects_expansions(
    configs: Path, tmp_path: Path, gateway: LiteLLMProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    expansions = _expansions(gateway)
    code, data, err = run_json(capsys, "plan", str(_plan(tmp_path, "openai/*")), "--json")
    assert code == EXIT_OK, err
    assert data["benchmarks"][0]["models"] == [EXPLICIT]  # the configured one only
    switch = "inventory: {include_wildcard_expansions: true}\n"
    code, data, err = run_json(capsys, "plan", str(_plan(tmp_path, "openai/*", switch)),
                               "--json")
    assert code == EXIT_OK, err
    [bench] = data["benchmarks"]
    chosen = set(bench["models"])  # with the chat-mode (or unknown) expansions
    other_modes = {m["id"] for m in bench["skipped_by_mode"]}  # gpt-image-1, ...
    assert chosen | other_modes == {EXPLICIT, *(i for i in expansions if i.startswith("openai/"))}
    assert len(chosen) > 20 and bench["wildcard_expansions_left_out"] == 0
    named = sorted(chosen - {EXPLICIT})[0]  # a chat-mode expansion, named exactly
    code, data, err = run_json(capsys, "plan", str(_plan(tmp_path, named)), "--json")
    assert code == EXIT_OK, err
    assert data["benchmarks"][0]["models"] == [named]


def test_mode_term_selects_by_metadata_and_a_chat_benchmark_refuses_embeddings(
    configs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, _ = run_json(capsys, "inventory", "--json", "mode=embedding")
    assert code == EXIT_OK
    assert [m["id"] for m in data["models"]] == [EMBEDDER]
    code, data, _ = run_json(capsys, "inventory", "--json", "described, embedder, !mode=chat")
    assert (code, [m["id"] for m in data["models"]]) == (EXIT_OK, [EMBEDDER])
    code, data, _ = run_json(capsys, "inventory", "--json", "*wen*, &mode=unknown")
    assert (code, [m["id"] for m in data["models"]]) == (EXIT_OK, ["qwen-alias"])
    code, _, err = run_cli(capsys, "plan", str(_plan(tmp_path, "mode=embedding")))
    assert code == EXIT_INVENTORY
    assert "matches only models whose mode does not fit its endpoint (embedding)" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_placeholder_only_listing_explains_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A LiteLLM key whose team grants its models gets only the placeholder `all-team-models`
    from /v1/models. Team keys need a database-backed proxy, so a small fake /v1/models server
    (tests/scripted_server.py) stands in for the real proxy in this one case."""
    script = Script(events=(), models=("all-team-models",))
    with scripted_server(script) as url:
        folder = write_configs(tmp_path / "configs", url, api_key_env=None)
        monkeypatch.setenv("RUNNER_CONFIG_DIR", str(folder))
        monkeypatch.delenv("RUNNER_SERVER", raising=False)
        code, out, err = run_cli(capsys, "inventory", "--source", "live")
        assert code == EXIT_OK
        assert "(no models)" in out
        assert err.startswith("WARNING: server 'local' listed only LiteLLM's placeholder "
                              "'all-team-models'") and err.count("\n") == 1
        code, _, err = run_cli(capsys, "plan", str(_plan(tmp_path, "all")), "--source", "live")
    assert code == EXIT_INVENTORY
    assert "benchmark 'b' matches no model: server 'local' listed only LiteLLM's placeholder" in err
    assert "configs/models.yaml" in err and "check the pattern" not in err
