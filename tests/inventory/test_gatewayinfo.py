"""Wildcard expansions, /model_group/info and placeholders, from answers shaped like LiteLLM
1.106.2's (the real proxy is in test_inventory_gateway.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runner.inventory.config import ModelEntry, ModelsConfig, Server
from runner.inventory.gatewayinfo import MAX_ROUTE_MATCHES, expansion_ids, group_infos
from runner.inventory.listing import Inventory, Model, with_file_metadata
from runner.inventory.proxyclient import fetch_live
from runner.schema import validate
from runner.yamlfile import load_text


def listing(*ids: str) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": i, "object": "model"} for i in ids]}


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        # configured names, then each route before its price-list names, then aliases
        (("Qwen/Qwen3-8B", "openai/gpt-4o", "openai/*", "openai/gpt-4o", "openai/o1",
          "fake/*", "fake/x", "my-alias"), {"openai/o1", "fake/x"}),
        (("a", "b"), set()),  # no route listed: a proxy that ignores the query
        (("openai/o1", "openai/*"), set()),  # listed before the route: configured
        (("anthropic/*", "openai/o1"), set()),  # matches no route listed before it
    ],
)
def test_expansions_are_what_a_route_lists_after_itself(
    ids: tuple[str, ...], expected: set[str]
) -> None:
    assert expansion_ids(listing(*ids)) == expected


@pytest.mark.parametrize("payload", [None, [], {"data": "x"}, {"data": [1, {"id": 2}]}])
def test_garbage_gives_no_expansions_and_no_groups(payload: Any) -> None:
    assert expansion_ids(payload) == frozenset()
    assert group_infos(payload) == {}


def test_a_failing_wildcard_query_marks_nothing_and_keeps_the_inventory() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.query:
            return httpx.Response(403, json={"error": {"message": "no"}})
        if request.url.path == "/model_group/info":
            return httpx.Response(200, content=b"<html>")
        return httpx.Response(200, json=listing("m", "openai/x"))

    server = Server(name="s", url="http://p")
    inv = fetch_live(httpx.Client(transport=httpx.MockTransport(handle)), server, {})
    assert [(m.id, m.wildcard_expansion) for m in inv.models] == [("m", False),
                                                                  ("openai/x", False)]


def test_a_listing_of_thousands_of_routes_is_refused_not_matched_for_minutes() -> None:
    # 1,500 routes then 1,500 ids: 2.25 million glob matches (30,000 of each, 1 MB, took
    # minutes); the inventory keeps its models, none marked.
    n = 1_500
    assert n * n > MAX_ROUTE_MATCHES
    hostile = listing(*[f"r{i}/*" for i in range(n)], *[f"r{i}/x" for i in range(n)])
    with pytest.raises(ValueError, match="route matches"):
        expansion_ids(hostile)

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=hostile if request.url.query else listing("m", "r0/x"))

    inv = fetch_live(httpx.Client(transport=httpx.MockTransport(handle)),
                     Server(name="s", url="http://p"), {}, enrich=False)
    assert [(m.id, m.wildcard_expansion) for m in inv.models] == [("m", False),
                                                                  ("r0/x", False)]


def test_placeholders_are_kept_and_explain_an_empty_inventory() -> None:
    payload = listing("all-team-models", "no-default-models")
    client = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json=payload)))
    inv = fetch_live(client, Server(name="s", url="http://p"), {})
    assert (inv.models, inv.placeholders) == ((), ("all-team-models", "no-default-models"))
    cause = inv.empty_cause() or ""
    assert "'all-team-models', 'no-default-models'" in cause and "models.yaml" in cause
    assert Inventory.from_json(inv.to_json()) == inv


def test_an_inventory_with_one_configured_model_has_no_empty_cause() -> None:
    inv = Inventory("live", "s", "u", "t", None,
                    (Model("a"), Model("b", wildcard_expansion=True)), ("all-team-models",))
    assert inv.empty_cause() is None


def test_the_fallback_file_is_the_last_metadata_source() -> None:
    models = ModelsConfig(path="m.yaml", models=(ModelEntry("a", mode="chat",
                                                            max_input_tokens=9),))
    inv = Inventory("live", "s", "u", "t", None, (Model("a", max_input_tokens=5,
                                                        metadata_source="model_group_info"),
                                                  Model("b")))
    assert with_file_metadata(inv, models).models == (
        Model("a", "chat", 5, metadata_source="model_group_info"), Model("b"))
    bare = Inventory("live", "s", "u", "t", None, (Model("a"),))
    assert with_file_metadata(bare, models).models == (
        Model("a", "chat", 9, metadata_source="models.yaml"),)


def test_a_mode_that_no_proxy_names_is_unknown_not_printed() -> None:
    modes = {"a": "x" * 100_000, "b": "chat\x1b[31m", "c": "chat\nnext", "d": "",
             "e": "audio_transcription"}
    groups = {"data": [{"model_group": k, "mode": v} for k, v in modes.items()]}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/model_group/info":
            return httpx.Response(200, json=groups)
        return httpx.Response(200, json=listing(*modes))

    inv = fetch_live(httpx.Client(transport=httpx.MockTransport(handle)),
                     Server(name="s", url="http://p"), {})
    assert [m.mode for m in inv.models] == [None, None, None, None, "audio_transcription"]


def test_a_token_limit_no_float_holds_is_unknown() -> None:
    # Before: a 400-digit max_model_len was kept, and apply crashed (exit 70) indexing the
    # job's metrics.model_limits, which cannot be a float.
    huge = int("9" * 400)
    entries = [{"id": "v", "max_model_len": huge}, {"id": "w", "max_model_len": 2**53},
               {"id": "x", "max_model_len": 2**53 - 1}]
    client = httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json={"data": entries})))
    inv = fetch_live(client, Server(name="s", url="http://p"), {})
    assert [m.max_model_len for m in inv.models] == [None, None, 2**53 - 1]
    text = f"models:\n  - {{id: v, max_model_len: {huge}}}\n"
    [problem] = validate(load_text(text, "models.yaml"), "models")
    assert "at most 9007199254740991" in problem.render()
