"""Inventory against a real LiteLLM proxy (see .ci/install-litellm and tests/conftest.py)."""

from __future__ import annotations

import json

import httpx
import pytest
from litellm_proxy import DESCRIBED_ID, DESCRIBED_INFO, SERVED_IDS, LiteLLMProxy

from runner.errors import InventoryError
from runner.inventory.config import ModelEntry, ModelsConfig, Server
from runner.inventory.listing import Inventory
from runner.inventory.proxyclient import SPECIAL_IDS, fetch_live
from runner.inventory.source import load_inventory

pytestmark = pytest.mark.litellm

VAR = "LITELLM_API_KEY"
FALLBACK = ModelsConfig(path="configs/models.yaml", models=(ModelEntry("fallback/model"),))


def server_for(url: str) -> Server:
    return Server(name="local", url=url, api_key_env=VAR, timeout_s=10.0)


def fetch(proxy: LiteLLMProxy, key: str | None = None) -> Inventory:
    env = {VAR: key if key is not None else proxy.master_key}
    with httpx.Client() as client:
        return fetch_live(client, server_for(proxy.url), env, retries=0)


@pytest.fixture(scope="module")
def live(litellm_proxy: LiteLLMProxy) -> Inventory:
    return fetch(litellm_proxy)


def test_configured_ids_are_listed_intact(live: Inventory) -> None:
    assert set(SERVED_IDS) <= set(live.ids())
    assert "llama3.1:8b" in live.ids()
    assert "Qwen/Qwen3-Coder-30B-A3B-Instruct" in live.ids()


def test_metadata_comes_from_model_info(live: Inventory) -> None:
    described = next(m for m in live.models if m.id == DESCRIBED_ID)
    assert described.mode == DESCRIBED_INFO["mode"]
    assert described.max_input_tokens == DESCRIBED_INFO["max_input_tokens"]
    assert described.max_output_tokens == DESCRIBED_INFO["max_output_tokens"]


def test_wildcard_is_expanded_deduplicated_and_clean(
    litellm_proxy: LiteLLMProxy, live: Inventory
) -> None:
    assert litellm_proxy.wildcard_ids, "the wildcard route contributed no ids"
    assert live.ids() == sorted(set(SERVED_IDS) | set(litellm_proxy.wildcard_ids))
    assert len(live.ids()) == len(set(live.ids()))
    assert not [i for i in live.ids() if "*" in i or i in SPECIAL_IDS]


def test_backend_settings_appear_nowhere(litellm_proxy: LiteLLMProxy, live: Inventory) -> None:
    dumped = json.dumps(live.to_json())
    assert "litellm_params" not in dumped
    assert litellm_proxy.backend_key not in dumped
    assert "mock_response" not in dumped
    assert litellm_proxy.master_key not in dumped


def test_a_wrong_key_is_an_auth_error_without_fallback(litellm_proxy: LiteLLMProxy) -> None:
    wrong = "sk-wrong-" + litellm_proxy.master_key[-6:]
    with pytest.raises(InventoryError) as caught:
        load_inventory(server_for(litellm_proxy.url), FALLBACK, {VAR: wrong}, source="auto")
    message = str(caught.value)
    assert caught.value.exit_code == 3
    assert "server 'local'" in message
    assert f"${VAR}" in message
    assert wrong not in message
    assert litellm_proxy.master_key not in message


def test_no_key_is_an_auth_error_naming_the_unset_variable(litellm_proxy: LiteLLMProxy) -> None:
    with pytest.raises(InventoryError, match=r"\$LITELLM_API_KEY is unset"):
        load_inventory(server_for(litellm_proxy.url), FALLBACK, {}, source="auto")


def test_a_dead_url_falls_back_with_a_reason(dead_url: str) -> None:
    inv = load_inventory(server_for(dead_url), FALLBACK, {VAR: "sk-whatever"}, source="auto")
    assert (inv.source, inv.ids()) == ("fallback", ["fallback/model"])
    assert inv.fallback_reason == f"connection refused to {dead_url}/v1/models (3 attempts)"


def test_a_dead_url_with_source_live_is_an_inventory_error(dead_url: str) -> None:
    with pytest.raises(InventoryError, match="--source live forbids the fallback"):
        load_inventory(server_for(dead_url), FALLBACK, {VAR: "sk-whatever"}, source="live")


def test_model_info_has_the_shape_the_enrichment_reads(litellm_proxy: LiteLLMProxy) -> None:
    headers = {"Authorization": f"Bearer {litellm_proxy.master_key}"}
    answer = httpx.get(f"{litellm_proxy.url}/model/info", headers=headers, timeout=10.0)
    entries = {e["model_name"]: e for e in answer.json()["data"]}
    described = entries[DESCRIBED_ID]
    assert {"model_name", "litellm_params", "model_info"} <= set(described)
    assert {k: described["model_info"][k] for k in DESCRIBED_INFO} == DESCRIBED_INFO


def test_enrichment_agrees_with_the_models_list(
    litellm_proxy: LiteLLMProxy, live: Inventory
) -> None:
    env = {VAR: litellm_proxy.master_key}
    with httpx.Client() as client:
        plain = fetch_live(client, server_for(litellm_proxy.url), env, enrich=False)
    marked = [(m.id, m.wildcard_expansion) for m in plain.models]
    assert marked == [(m.id, m.wildcard_expansion) for m in live.models]
