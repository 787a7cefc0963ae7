"""Inventory: parsing and classification of proxy answers, through httpx.MockTransport."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from runner.errors import InventoryError
from runner.inventory.config import ModelEntry, ModelsConfig, Server
from runner.inventory.listing import Inventory, LiveUnavailable, Model, from_fallback
from runner.inventory.proxyclient import fetch_live
from runner.inventory.source import load_inventory

KEY = "sk-unit-secret-5f1c9a"
BACKEND_KEY = "fake-backend-key-77d2"
ENV = {"LITELLM_API_KEY": KEY}
SERVER = Server(name="local", url="http://proxy.test:4000", api_key_env="LITELLM_API_KEY")
FALLBACK = ModelsConfig(
    path="configs/models.yaml",
    models=(
        ModelEntry("Qwen/Qwen3-8B", mode="chat", tags=("small",)),
        ModelEntry("llama3.1:8b", servers=("local",)),
        ModelEntry("elsewhere/model", servers=("other",)),
    ),
)
Handler = Callable[[httpx.Request], httpx.Response]


def models_answer(*entries: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"object": "list", "data": list(entries)})


def info_entry(name: str, **model_info: Any) -> dict[str, Any]:
    params = {"model": f"openai/{name}", "api_key": BACKEND_KEY}
    return {"model_name": name, "litellm_params": params, "model_info": model_info}


def proxy(
    models: httpx.Response | Callable[[], httpx.Response],
    info: httpx.Response | None = None,
    calls: list[httpx.Request] | None = None,
) -> httpx.Client:
    """A client whose transport answers /v1/models and /model/info like a proxy would."""

    def handle(request: httpx.Request) -> httpx.Response:
        if calls is not None:
            calls.append(request)
        if request.url.path == "/v1/models":
            return models() if callable(models) else models
        if request.url.path == "/model/info" and info is not None:
            return info
        return httpx.Response(404, json={"detail": "Not Found"})

    return httpx.Client(transport=httpx.MockTransport(handle))


def raising(exc: Exception, calls: list[httpx.Request] | None = None) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        if calls is not None:
            calls.append(request)
        raise exc

    return httpx.Client(transport=httpx.MockTransport(handle))


def fixed_now() -> datetime:
    return datetime(2026, 11, 24, 23, 59, 1, tzinfo=UTC)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    delays: list[float] = []
    monkeypatch.setattr(time, "sleep", delays.append)
    return delays


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["b", "a", "c"], ["a", "b", "c"]),
        (["openai/sora-2", "openai/sora-2", "x"], ["openai/sora-2", "x"]),
        (["openai/*", "*", "Qwen/Qwen3-8B"], ["Qwen/Qwen3-8B"]),
        (["all-team-models", "all-proxy-models", "no-default-models", "m"], ["m"]),
        (
            ["llama3.1:8b", "Qwen/Qwen3-Coder-30B-A3B-Instruct"],
            ["Qwen/Qwen3-Coder-30B-A3B-Instruct", "llama3.1:8b"],
        ),
        ([], []),
    ],
)
def test_live_ids_are_deduplicated_filtered_and_sorted(ids: list[str], expected: list[str]) -> None:
    client = proxy(models_answer(*({"id": i, "object": "model"} for i in ids)))
    assert fetch_live(client, SERVER, ENV, enrich=False).ids() == expected


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"id": "m", "mode": "chat", "max_input_tokens": 32768, "max_output_tokens": 4096},
            Model("m", "chat", 32768, 4096, metadata_source="listing"),
        ),
        ({"id": "m", "max_input_tokens": "32768", "max_output_tokens": 1.5}, Model("m")),
        ({"id": "m", "max_input_tokens": True, "max_output_tokens": -1, "mode": 3}, Model("m")),
        ({"id": "m", "max_tokens": 2048}, Model("m")),
        ({"id": "m", "owned_by": "openai", "created": 1677610602}, Model("m")),
    ],
)
def test_live_metadata_keeps_only_well_typed_values(entry: dict[str, Any], expected: Model) -> None:
    client = proxy(models_answer(entry))
    assert fetch_live(client, SERVER, ENV, enrich=False).models == (expected,)


def test_duplicate_ids_merge_their_metadata() -> None:
    client = proxy(models_answer({"id": "m", "mode": "chat"}, {"id": "m", "max_input_tokens": 8}))
    assert fetch_live(client, SERVER, ENV, enrich=False).models == (
        Model("m", "chat", 8, metadata_source="listing"),)


def test_live_inventory_records_source_server_and_time() -> None:
    client = proxy(models_answer({"id": "m"}))
    inv = fetch_live(client, SERVER, ENV, enrich=False, now=fixed_now)
    assert (inv.source, inv.server, inv.url, inv.fallback_reason) == (
        "live",
        "local",
        SERVER.url,
        None,
    )
    assert inv.fetched_at == "2026-11-24T23:59:01Z"


@pytest.mark.parametrize(
    "url",
    [
        "http://proxy.test:4000",
        "http://proxy.test:4000/",
        "http://proxy.test:4000/v1",
        "http://proxy.test:4000/v1/",
    ],
)
def test_urls_are_built_without_doubling_v1(url: str) -> None:
    calls: list[httpx.Request] = []
    client = proxy(models_answer({"id": "m"}), httpx.Response(200, json={"data": []}), calls)
    fetch_live(client, Server(name="s", url=url), {})
    assert [str(c.url) for c in calls] == [
        "http://proxy.test:4000/v1/models",
        "http://proxy.test:4000/v1/models?return_wildcard_routes=true",
        "http://proxy.test:4000/model_group/info",
        "http://proxy.test:4000/model/info",
    ]


@pytest.mark.parametrize(
    ("api_key_env", "env", "expected"),
    [
        ("LITELLM_API_KEY", ENV, f"Bearer {KEY}"),
        ("LITELLM_API_KEY", {}, None),
        ("LITELLM_API_KEY", {"LITELLM_API_KEY": ""}, None),
        (None, ENV, None),
    ],
)
def test_auth_header_is_sent_only_when_the_variable_is_set(
    api_key_env: str | None, env: dict[str, str], expected: str | None
) -> None:
    calls: list[httpx.Request] = []
    client = proxy(models_answer({"id": "m"}), httpx.Response(200, json={"data": []}), calls)
    fetch_live(client, Server(name="s", url="http://p", api_key_env=api_key_env), env)
    assert [c.headers.get("Authorization") for c in calls] == [expected] * 4


# --- enrichment -------------------------------------------------------------------------------


def test_enrichment_fills_only_missing_metadata_and_drops_litellm_params() -> None:
    info = httpx.Response(
        200,
        json={
            "data": [
                info_entry("a", mode="completion", max_input_tokens=1, max_output_tokens=2),
                info_entry("b", mode="chat", max_input_tokens=8192, max_output_tokens=1024),
                info_entry("not-listed", mode="chat"),
            ]
        },
    )
    client = proxy(models_answer({"id": "a", "mode": "chat"}, {"id": "b"}), info)
    inv = fetch_live(client, SERVER, ENV)
    # /model/info comes before the listing's own metadata.
    assert inv.models == (Model("a", "completion", 1, 2, metadata_source="model_info"),
                          Model("b", "chat", 8192, 1024, metadata_source="model_info"))
    dumped = json.dumps(inv.to_json())
    assert "litellm_params" not in dumped
    assert BACKEND_KEY not in dumped
    assert "openai/" not in dumped


@pytest.mark.parametrize(
    "info",
    [
        httpx.Response(500, json={"error": {"message": "boom"}}),
        httpx.Response(401, json={"error": {"message": "no"}}),
        httpx.Response(200, content=b"<html>"),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"data": [1, {"model_name": "m", "model_info": "x"}]}),
        httpx.Response(
            200, json={"data": [{"model_name": "m", "model_info": {"max_tokens": "9"}}]}
        ),
    ],
)
def test_enrichment_failures_are_ignored(info: httpx.Response) -> None:
    client = proxy(models_answer({"id": "m", "mode": "chat"}), info)
    assert fetch_live(client, SERVER, ENV).models == (
        Model("m", "chat", metadata_source="listing"),)


def test_enrichment_transport_errors_are_ignored() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/model/info":
            raise httpx.ReadTimeout("slow", request=request)
        return models_answer({"id": "m"})

    client = httpx.Client(transport=httpx.MockTransport(handle))
    assert fetch_live(client, SERVER, ENV).models == (Model("m"),)


def test_enrichment_is_skipped_when_disabled() -> None:
    calls: list[httpx.Request] = []
    client = proxy(models_answer({"id": "m"}), httpx.Response(200, json={"data": []}), calls)
    fetch_live(client, SERVER, ENV, enrich=False)
    # The second asks for the wildcard routes, to mark expansions; no metadata is asked for.
    assert [c.url.path for c in calls] == ["/v1/models", "/v1/models"]


def test_model_group_info_comes_first_and_model_info_is_then_not_asked() -> None:
    calls: list[httpx.Request] = []
    group = {"model_group": "m", "mode": "embedding", "max_input_tokens": 8191.0,
             "max_output_tokens": 7.0, "supports_vision": False}

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.url.path == "/model_group/info":
            return httpx.Response(200, json={"data": [group]})
        return models_answer({"id": "m", "mode": "chat", "max_input_tokens": 1})

    client = httpx.Client(transport=httpx.MockTransport(handle))
    inv = fetch_live(client, SERVER, ENV)
    assert inv.models == (Model("m", "embedding", 8191, 7, metadata_source="model_group_info"),)
    assert [c.url.path for c in calls] == ["/v1/models", "/v1/models", "/model_group/info"]


# What vLLM 0.32 lists for `--served-model-name tiny --max-model-len 2048` (seen on the real one).
VLLM_ENTRY = {"id": "tiny", "object": "model", "created": 1764547200, "owned_by": "vllm",
              "root": "/models/tiny-qwen3", "parent": None, "max_model_len": 2048,
              "permission": [{"id": "modelperm-1", "object": "model_permission"}]}


def test_an_engines_listing_gives_its_context_and_is_not_asked_for_model_info() -> None:
    calls: list[httpx.Request] = []
    client = proxy(models_answer(VLLM_ENTRY), httpx.Response(200, json={"data": []}), calls)
    inv = fetch_live(client, SERVER, ENV)
    assert inv.models == (Model("tiny", max_model_len=2048, metadata_source="listing"),)
    assert inv.to_json()["models"][0]["max_model_len"] == 2048
    # /model/info exists only on a LiteLLM proxy, which never lists max_model_len.
    assert [c.url.path for c in calls] == ["/v1/models"]


def test_a_proxy_listing_beside_an_engine_entry_is_still_enriched() -> None:
    calls: list[httpx.Request] = []
    info = httpx.Response(200, json={"data": [info_entry("b", mode="chat")]})
    client = proxy(models_answer(VLLM_ENTRY, {"id": "b"}), info, calls)
    inv = fetch_live(client, SERVER, ENV)
    assert inv.models == (Model("b", "chat", metadata_source="model_info"),
                          Model("tiny", max_model_len=2048, metadata_source="listing"))
    assert [c.url.path for c in calls] == ["/v1/models", "/v1/models", "/model_group/info",
                                           "/model/info"]


# --- refusals: configuration errors, never a fallback -----------------------------------------

NO_DB = {
    "error": {
        "message": "No connected db.",
        "type": "no_db_connection",
        "param": None,
        "code": "400",
    }
}
NO_KEY = {
    "error": {
        "message": "Authentication Error, No api key passed in.",
        "type": "auth_error",
        "code": "401",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "api_key_env", "env", "fragments"),
    [
        (
            400,
            NO_DB,
            "LITELLM_API_KEY",
            ENV,
            ["rejected the API key from $LITELLM_API_KEY", "HTTP 400", "No connected db."],
        ),
        (
            401,
            NO_KEY,
            "LITELLM_API_KEY",
            ENV,
            ["rejected the API key from $LITELLM_API_KEY", "HTTP 401", "a key this server accepts"],
        ),
        (401, NO_KEY, "LITELLM_API_KEY", {}, ["$LITELLM_API_KEY is unset", "HTTP 401"]),
        (500, NO_KEY, "LITELLM_API_KEY", {}, ["$LITELLM_API_KEY is unset", "HTTP 500"]),
        # set but empty (or blank) is not unset: exporting it again would not help
        (401, NO_KEY, "LITELLM_API_KEY", {"LITELLM_API_KEY": ""},
         ["$LITELLM_API_KEY is empty: put the key in it", "HTTP 401"]),
        (401, NO_KEY, "LITELLM_API_KEY", {"LITELLM_API_KEY": " \n"},
         ["$LITELLM_API_KEY is empty: put the key in it", "HTTP 401"]),
        (401, NO_KEY, None, ENV, ["none is configured", "api_key_env", "configs/servers.yaml"]),
        (
            403,
            {"error": {"message": "forbidden"}},
            "LITELLM_API_KEY",
            ENV,
            ["refused the API key from $LITELLM_API_KEY", "HTTP 403"],
        ),
        (
            404,
            {"detail": "Not Found"},
            "LITELLM_API_KEY",
            ENV,
            ["HTTP 404", "check the server's url"],
        ),
        (
            400,
            {"error": {"message": f"bad key {KEY}"}},
            "LITELLM_API_KEY",
            ENV,
            ["HTTP 400", "bad key ***"],
        ),
        (301, b"", "LITELLM_API_KEY", ENV, ["HTTP 301"]),
    ],
)
def test_refusals_are_inventory_errors_naming_server_and_variable(
    status: int,
    body: dict[str, Any] | bytes,
    api_key_env: str | None,
    env: dict[str, str],
    fragments: list[str],
) -> None:
    calls: list[httpx.Request] = []
    answer = (
        httpx.Response(status, content=body)
        if isinstance(body, bytes)
        else httpx.Response(status, json=body)
    )
    server = Server(name="local", url="http://proxy.test:4000", api_key_env=api_key_env)
    with pytest.raises(InventoryError) as caught:
        fetch_live(proxy(answer, calls=calls), server, env)
    message = str(caught.value)
    assert caught.value.exit_code == 3
    assert "server 'local' (http://proxy.test:4000)" in message
    for fragment in fragments:
        assert fragment in message
    assert KEY not in message
    assert "\n" not in message
    assert len(calls) == 1  # a refusal is not retried


# --- unavailability: reasons that allow the fallback ------------------------------------------

MODELS_URL = "http://proxy.test:4000/v1/models"


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (proxy(httpx.Response(503, text="busy")), f"HTTP 503 from {MODELS_URL}"),
        (proxy(httpx.Response(500, json={"error": {"type": "x"}})), f"HTTP 500 from {MODELS_URL}"),
        (
            raising(httpx.ConnectError("[Errno 111] Connection refused")),
            f"connection refused to {MODELS_URL}",
        ),
        (
            raising(httpx.ConnectError("Name or service not known")),
            f"cannot connect to {MODELS_URL}: Name or service not known",
        ),
        (raising(httpx.ConnectTimeout("")), f"timed out after 3s connecting to {MODELS_URL}"),
        (raising(httpx.ReadTimeout("")), f"timed out after 10s waiting for {MODELS_URL}"),
        (
            raising(httpx.RemoteProtocolError("peer closed")),
            f"connection to {MODELS_URL} failed: peer closed",
        ),
        (
            proxy(httpx.Response(200, text="<html>hi</html>")),
            f"answer from {MODELS_URL} is not JSON",
        ),
        (proxy(httpx.Response(200, json=["a"])), f"answer from {MODELS_URL} has no 'data' list"),
        (
            proxy(httpx.Response(200, json={"data": {"id": "m"}})),
            f"answer from {MODELS_URL} has no 'data' list",
        ),
        (
            proxy(models_answer({"name": "m"})),
            f"answer from {MODELS_URL} has an entry without an 'id'",
        ),
        (
            proxy(httpx.Response(200, json={"data": ["m"]})),
            f"answer from {MODELS_URL} has an entry without an 'id'",
        ),
    ],
)
def test_unavailable_answers_give_a_reason(
    client: httpx.Client, reason: str, no_sleep: list[float]
) -> None:
    with pytest.raises(LiveUnavailable) as caught:
        fetch_live(client, SERVER, ENV, retries=0)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("client_for", "attempts"),
    [
        (lambda calls: proxy(httpx.Response(503), calls=calls), 3),
        (lambda calls: raising(httpx.ConnectError("refused"), calls), 3),
        (lambda calls: raising(httpx.ReadTimeout("slow"), calls), 3),
        (lambda calls: proxy(httpx.Response(200, text="nope"), calls=calls), 1),
    ],
)
def test_only_retryable_failures_are_retried_with_exponential_backoff(
    client_for: Callable[[list[httpx.Request]], httpx.Client], attempts: int, no_sleep: list[float]
) -> None:
    calls: list[httpx.Request] = []
    with pytest.raises(LiveUnavailable) as caught:
        fetch_live(client_for(calls), SERVER, ENV, retries=2, backoff_s=0.25)
    assert len(calls) == attempts
    assert no_sleep == [0.25, 0.5][: attempts - 1]
    assert caught.value.reason.endswith("(3 attempts)") == (attempts == 3)


def test_a_retry_that_succeeds_gives_the_live_inventory(no_sleep: list[float]) -> None:
    answers = iter([httpx.Response(502), httpx.Response(503), models_answer({"id": "m"}),
                    models_answer({"id": "m"})])  # the last: ?return_wildcard_routes=true
    calls: list[httpx.Request] = []
    inv = fetch_live(proxy(lambda: next(answers), calls=calls), SERVER, ENV, enrich=False)
    assert inv.ids() == ["m"]
    assert len(calls) == 4


class DripStream(httpx.SyncByteStream):
    """A body of 100 bytes, one each 0.02 s of `clock`: 2 s, slower than the deadline allows.
    `read` counts the bytes each answer gave before the client stopped reading."""

    def __init__(self, clock: SimpleNamespace, read: list[int]) -> None:
        self.clock, self.read = clock, read

    def __iter__(self) -> Iterator[bytes]:
        self.read.append(0)
        for _ in range(100):
            self.clock.now += 0.02
            self.read[-1] += 1
            yield b" "


def test_a_slow_drip_answer_is_cut_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client's clock is the drip's: time passes only as bytes come, whatever the machine.
    clock, read = SimpleNamespace(now=0.0), list[int]()
    fake_time = SimpleNamespace(monotonic=lambda: clock.now, sleep=lambda seconds: None)
    monkeypatch.setattr("runner.inventory.proxyclient.time", fake_time)
    server = Server(name="local", url="http://proxy.test:4000", timeout_s=0.1)
    client = proxy(lambda: httpx.Response(200, stream=DripStream(clock, read)))
    with pytest.raises(LiveUnavailable) as caught:
        fetch_live(client, server, {}, retries=1, backoff_s=0.0)
    assert len(read) == 2 and all(5 <= n <= 6 for n in read)  # cut after 0.1 s of 2 s, twice
    assert caught.value.reason == f"timed out after 0.1s waiting for {MODELS_URL} (2 attempts)"


# --- fallback and load_inventory --------------------------------------------------------------


def test_from_fallback_lists_the_server_models_sorted() -> None:
    inv = from_fallback(SERVER, FALLBACK, "why", now=fixed_now)
    assert inv.models == (
        Model("Qwen/Qwen3-8B", mode="chat", tags=("small",), metadata_source="models.yaml"),
        Model("llama3.1:8b"),
    )
    assert (inv.source, inv.fallback_reason, inv.fetched_at) == (
        "fallback",
        "why",
        "2026-11-24T23:59:01Z",
    )


def test_source_fallback_never_calls_the_proxy() -> None:
    calls: list[httpx.Request] = []
    inv = load_inventory(
        SERVER, FALLBACK, ENV, source="fallback", client=proxy(models_answer(), calls=calls)
    )
    assert (inv.source, inv.fallback_reason, calls) == ("fallback", "--source fallback", [])


@pytest.mark.parametrize("source", ["auto", "live"])
def test_live_sources_use_the_proxy(source: str) -> None:
    client = proxy(models_answer({"id": "live/model"}))
    inv = load_inventory(SERVER, FALLBACK, ENV, source=source, client=client)
    assert (inv.source, inv.ids()) == ("live", ["live/model"])


def test_auto_falls_back_with_the_reason(no_sleep: list[float]) -> None:
    client = proxy(httpx.Response(503))
    inv = load_inventory(SERVER, FALLBACK, ENV, client=client)
    assert inv.source == "fallback"
    assert inv.fallback_reason == f"HTTP 503 from {MODELS_URL} (3 attempts)"
    assert inv.ids() == ["Qwen/Qwen3-8B", "llama3.1:8b"]


@pytest.mark.parametrize(
    ("source", "allow_fallback", "fragment"),
    [
        ("live", True, "--source live forbids the fallback"),
        ("auto", False, "the plan's `inventory.fallback: false` forbids the fallback"),
    ],
)
def test_forbidden_fallback_is_an_inventory_error(
    source: str, allow_fallback: bool, fragment: str, no_sleep: list[float]
) -> None:
    client = proxy(httpx.Response(503))
    with pytest.raises(InventoryError) as caught:
        load_inventory(
            SERVER, FALLBACK, ENV, source=source, allow_fallback=allow_fallback, client=client
        )
    assert str(caught.value) == (
        f"server 'local' (http://proxy.test:4000) is unreachable: HTTP 503 from {MODELS_URL}"
        f" (3 attempts); {fragment}"
    )


def test_auth_errors_never_fall_back() -> None:
    client = proxy(httpx.Response(400, json=NO_DB))
    with pytest.raises(InventoryError, match="rejected the API key from"):
        load_inventory(SERVER, FALLBACK, ENV, source="auto", client=client)


@pytest.mark.parametrize(
    ("source", "reason"),
    [("fallback", "--source fallback"), ("auto", f"HTTP 503 from {MODELS_URL} (3 attempts)")],
)
def test_an_empty_fallback_is_an_inventory_error(
    source: str, reason: str, no_sleep: list[float]
) -> None:
    empty = ModelsConfig(path="configs/models.yaml", models=(ModelEntry("x", servers=("other",)),))
    with pytest.raises(InventoryError) as caught:
        load_inventory(
            SERVER, empty, ENV, source=source, client=proxy(httpx.Response(503))
        )
    assert str(caught.value) == (
        f"no usable inventory: {reason}, and configs/models.yaml lists no models for server 'local'"
    )
    assert caught.value.exit_code == 3


def test_an_unknown_source_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown inventory source"):
        load_inventory(SERVER, FALLBACK, ENV, source="cache")


def test_load_inventory_makes_and_closes_its_own_client(
    dead_url: str, no_sleep: list[float]
) -> None:
    server = Server(name="local", url=dead_url, timeout_s=2.0)
    inv = load_inventory(server, FALLBACK, {})
    assert inv.source == "fallback"
    assert inv.fallback_reason == f"connection refused to {dead_url}/v1/models (3 attempts)"


# --- serialisation ----------------------------------------------------------------------------


def test_inventory_json_has_a_stable_shape_and_round_trips() -> None:
    inv = Inventory(
        "fallback",
        "local",
        "http://p",
        "2026-11-24T23:59:01Z",
        "HTTP 503",
        (Model("a", tags=("x", "y")), Model("b", "chat", 10, 20)),
    )
    data = inv.to_json()
    assert data == {
        "source": "fallback",
        "server": "local",
        "url": "http://p",
        "fetched_at": "2026-11-24T23:59:01Z",
        "fallback_reason": "HTTP 503",
        "model_count": 2,
        "wildcard_expansions": 0,
        "placeholders": [],
        "models": [
            {
                "id": "a",
                "mode": None,
                "max_input_tokens": None,
                "max_output_tokens": None,
                "max_model_len": None,
                "tags": ["x", "y"],
                "metadata_source": None,
                "wildcard_expansion": False,
            },
            {
                "id": "b",
                "mode": "chat",
                "max_input_tokens": 10,
                "max_output_tokens": 20,
                "max_model_len": None,
                "tags": [],
                "metadata_source": None,
                "wildcard_expansion": False,
            },
        ],
    }
    assert Inventory.from_json(json.loads(json.dumps(data))) == inv


def test_fetched_at_is_utc_whatever_the_clock_zone() -> None:
    def paris() -> datetime:
        return datetime(2026, 11, 25, 0, 59, 1, 999, tzinfo=timezone(timedelta(hours=1)))

    inv = fetch_live(proxy(models_answer()), SERVER, ENV, enrich=False, now=paris)
    assert inv.fetched_at == "2026-11-24T23:59:01Z"


def test_a_missing_fallback_file_is_named_as_missing_not_empty() -> None:
    why = ("no models.yaml found: searched configs, ../configs; create configs/models.yaml "
           "beside your plans, or pass --config-dir DIR")
    missing = ModelsConfig(path="configs/models.yaml", missing=why)
    with pytest.raises(InventoryError) as caught:
        load_inventory(SERVER, missing, ENV, source="fallback")
    assert str(caught.value) == f"no usable inventory: --source fallback, and {why}"
