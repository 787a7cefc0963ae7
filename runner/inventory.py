"""The model inventory: live from a LiteLLM proxy's /v1/models, else the fallback models file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runner.config import ModelEntry, ModelsConfig, Server
from runner.errors import InventoryError

# LiteLLM lists these pseudo-models for keys scoped to teams; they are not servable models.
SPECIAL_IDS = frozenset({"all-team-models", "all-proxy-models", "no-default-models"})
CONNECT_TIMEOUT_S = 3.0
SOURCES = ("auto", "live", "fallback")
_EXCERPT_CHARS = 200

# httpx is imported inside the functions that talk HTTP: commands that only read the fallback
# file (`--source fallback`) then start about 80 ms faster.
if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Model:
    """One model of an inventory, with the metadata the proxy or the fallback file gave."""

    id: str
    mode: str | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "max_input_tokens": self.max_input_tokens,
            "max_output_tokens": self.max_output_tokens,
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        return cls(
            id=data["id"],
            mode=data.get("mode"),
            max_input_tokens=data.get("max_input_tokens"),
            max_output_tokens=data.get("max_output_tokens"),
            tags=tuple(data.get("tags") or ()),
        )


@dataclass(frozen=True)
class Inventory:
    """The models of one server, where they came from (live or fallback), when and why."""

    source: str
    server: str
    url: str
    fetched_at: str
    fallback_reason: str | None
    models: tuple[Model, ...]

    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def summary(self) -> dict[str, Any]:
        """Where the inventory came from, without the models."""
        return {
            "source": self.source,
            "server": self.server,
            "url": self.url,
            "fetched_at": self.fetched_at,
            "fallback_reason": self.fallback_reason,
            "model_count": len(self.models),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "models": [m.to_json() for m in self.models]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inventory:
        """The inverse of `to_json` (plan locks and run manifests store that shape)."""
        return cls(
            source=data["source"],
            server=data["server"],
            url=data["url"],
            fetched_at=data["fetched_at"],
            fallback_reason=data.get("fallback_reason"),
            models=_unique_sorted(Model.from_json(m) for m in data["models"]),
        )


class LiveUnavailable(Exception):
    """The live inventory could not be had for a reason that allows the fallback."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fetch_live(
    client: httpx.Client,
    server: Server,
    env: Mapping[str, str],
    *,
    retries: int = 2,
    backoff_s: float = 0.25,
    enrich: bool = True,
    now: Callable[[], datetime] | None = None,
) -> Inventory:
    """GET /v1/models (with retries), optionally enriched from /model/info.

    Raises LiveUnavailable when the fallback is allowed, InventoryError when it is not.
    """
    root = _root_url(server.url)
    headers = _auth_headers(server, env)
    url = f"{root}/v1/models"
    status, body = _get_with_retries(client, url, headers, server.timeout_s, retries, backoff_s)
    _check_status(status, body, server, env)
    models = _parse_models(_decode(body, url), url)
    if enrich and any(_lacks_metadata(m) for m in models):
        models = _enrich(client, f"{root}/model/info", headers, server.timeout_s, models)
    return Inventory("live", server.name, server.url, _stamp(now), None, models)


def from_fallback(
    server: Server,
    models: ModelsConfig,
    reason: str | None,
    now: Callable[[], datetime] | None = None,
) -> Inventory:
    """The inventory that the fallback models file lists for `server`."""
    listed = _unique_sorted(_from_entry(e) for e in models.for_server(server.name))
    return Inventory("fallback", server.name, server.url, _stamp(now), reason, listed)


def load_inventory(
    server: Server,
    models: ModelsConfig,
    env: Mapping[str, str],
    *,
    source: str = "auto",
    allow_fallback: bool = True,
    client: httpx.Client | None = None,
) -> Inventory:
    """The inventory for `server` by `source` ("auto", "live" or "fallback")."""
    if source not in SOURCES:
        raise ValueError(f"unknown inventory source {source!r}")
    if source == "fallback":
        return _fallback(server, models, "--source fallback")
    try:
        return _fetch(server, env, client)
    except LiveUnavailable as exc:
        where = f"server {server.name!r} ({server.url}) is unreachable: {exc.reason}"
        if source == "live":
            raise InventoryError(f"{where}; --source live forbids the fallback") from None
        if not allow_fallback:
            raise InventoryError(
                f"{where}; the plan's `inventory.fallback: false` forbids the fallback"
            ) from None
        return _fallback(server, models, exc.reason)


def _fetch(server: Server, env: Mapping[str, str], client: httpx.Client | None) -> Inventory:
    import httpx

    if client is not None:
        return fetch_live(client, server, env)
    with httpx.Client(verify=server.verify_tls, timeout=_timeout(server.timeout_s)) as own:
        return fetch_live(own, server, env)


def _fallback(server: Server, models: ModelsConfig, reason: str) -> Inventory:
    inventory = from_fallback(server, models, reason)
    if not inventory.models:
        raise InventoryError(
            f"no usable inventory: {reason}, and {models.path} lists no models"
            f" for server {server.name!r}"
        )
    return inventory


# --- HTTP -----------------------------------------------------------------------------------


def _root_url(url: str) -> str:
    root = url.rstrip("/")
    return root.removesuffix("/v1")


def _api_key(server: Server, env: Mapping[str, str]) -> str | None:
    """The key from the server's variable; an empty variable counts as unset."""
    if server.api_key_env is None:
        return None
    return env.get(server.api_key_env) or None


def _auth_headers(server: Server, env: Mapping[str, str]) -> dict[str, str]:
    key = _api_key(server, env)
    return {"Authorization": f"Bearer {key}"} if key else {}


def _timeout(timeout_s: float) -> httpx.Timeout:
    import httpx

    return httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))


def _get(
    client: httpx.Client, url: str, headers: Mapping[str, str], timeout_s: float
) -> tuple[int, bytes]:
    """One GET whose whole answer must arrive within `timeout_s` (a slow drip cannot hang us)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    with client.stream("GET", url, headers=headers, timeout=_timeout(timeout_s)) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout(f"answer not complete after {timeout_s:g}s")
        return response.status_code, bytes(body)


def _get_with_retries(
    client: httpx.Client,
    url: str,
    headers: Mapping[str, str],
    timeout_s: float,
    retries: int,
    backoff_s: float,
) -> tuple[int, bytes]:
    """GET with exponential backoff, retrying only connection errors, timeouts and 5xx."""
    import httpx

    attempts = max(retries, 0) + 1
    reason = ""
    for attempt in range(attempts):
        try:
            status, body = _get(client, url, headers, timeout_s)
        except httpx.TransportError as exc:
            reason = _transport_reason(exc, url, timeout_s)
        else:
            if status < 500 or _is_auth_error(status, _error_of(body)):
                return status, body
            reason = f"HTTP {status} from {url}"
        if attempt < retries:
            time.sleep(backoff_s * 2**attempt)
    tries = f" ({attempts} attempts)" if attempts > 1 else ""
    raise LiveUnavailable(reason + tries)


def _transport_reason(exc: httpx.TransportError, url: str, timeout_s: float) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out after {min(CONNECT_TIMEOUT_S, timeout_s):g}s connecting to {url}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout_s:g}s waiting for {url}"
    if isinstance(exc, httpx.ConnectError):
        detail = str(exc)
        if "refused" in detail.lower():
            return f"connection refused to {url}"
        return f"cannot connect to {url}: {detail or type(exc).__name__}"
    return f"connection to {url} failed: {exc or type(exc).__name__}"


def _decode(body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise LiveUnavailable(f"answer from {url} is not JSON") from None


# --- classification of refusals -------------------------------------------------------------


def _check_status(status: int, body: bytes, server: Server, env: Mapping[str, str]) -> None:
    """Refusals (4xx, and anything but 2xx below 500) are configuration errors: no fallback."""
    if 200 <= status < 300:
        return
    error = _error_of(body)
    if _is_auth_error(status, error):
        raise InventoryError(_auth_message(status, error, server, env))
    detail = _scrub(str(error.get("message") or ""), _api_key(server, env))
    said = f": {detail}" if detail else ""
    raise InventoryError(
        f"server {server.name!r} ({server.url}) answered HTTP {status} to GET /v1/models{said};"
        " check the server's url in configs/servers.yaml"
    )


def _error_of(body: bytes) -> dict[str, Any]:
    """The `error` object of a LiteLLM/OpenAI error answer, or {}."""
    try:
        payload = json.loads(body)
    except ValueError:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _is_auth_error(status: int, error: Mapping[str, Any]) -> bool:
    # Some LiteLLM versions answer a missing key with a 500 labelled auth_error: not an outage.
    return status in (401, 403) or _is_no_db(status, error) or error.get("type") == "auth_error"


def _is_no_db(status: int, error: Mapping[str, Any]) -> bool:
    # LiteLLM without a database answers an unknown key this way instead of 401.
    no_db = "no_db_connection" in (error.get("type"), error.get("code"))
    return status == 400 and (no_db or error.get("message") == "No connected db.")


def _auth_message(
    status: int, error: Mapping[str, Any], server: Server, env: Mapping[str, str]
) -> str:
    head = f"server {server.name!r} ({server.url})"
    code = f"HTTP {status}"
    if _is_no_db(status, error):
        code += " 'No connected db.', LiteLLM's answer to an unknown key when it has no database"
    var = server.api_key_env
    if var is None:
        return (
            f"{head} requires an API key ({code}) and none is configured:"
            " set api_key_env for it in configs/servers.yaml and export that variable"
        )
    if _api_key(server, env) is None:
        return f"{head} requires an API key ({code}) but ${var} is unset: export it"
    if status == 403:
        return (
            f"{head} refused the API key from ${var} ({code}):"
            " check that the key may list models on this proxy"
        )
    return (
        f"{head} rejected the API key from ${var} ({code}):"
        " check that the variable holds a valid LiteLLM key"
    )


def _scrub(text: str, key: str | None) -> str:
    """A short excerpt of the server's words, without the key should the server echo it."""
    if key:
        text = text.replace(key, "***")
    text = " ".join(text.split())
    return text[:_EXCERPT_CHARS]


# --- parsing ----------------------------------------------------------------------------------


def _parse_models(payload: Any, url: str) -> tuple[Model, ...]:
    """Models from an OpenAI-style list, deduplicated, without wildcards or LiteLLM's specials."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise LiveUnavailable(f"answer from {url} has no 'data' list")
    models = []
    for entry in data:
        model_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(model_id, str) or not model_id:
            raise LiveUnavailable(f"answer from {url} has an entry without an 'id'")
        if "*" not in model_id and model_id not in SPECIAL_IDS:
            models.append(_with_metadata(Model(model_id), entry))
    return _unique_sorted(models)


def _with_metadata(model: Model, info: Mapping[str, Any]) -> Model:
    """`model` with the metadata it lacks taken from `info` (well-typed values only)."""
    # LiteLLM's legacy `max_tokens` is ignored: for embedding models it is an input limit.
    mode = info.get("mode")
    return replace(
        model,
        mode=model.mode or (mode if isinstance(mode, str) and mode else None),
        max_input_tokens=_first(model.max_input_tokens, _token_limit(info.get("max_input_tokens"))),
        max_output_tokens=_first(
            model.max_output_tokens, _token_limit(info.get("max_output_tokens"))
        ),
    )


def _token_limit(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def _first(a: int | None, b: int | None) -> int | None:
    return a if a is not None else b


def _lacks_metadata(model: Model) -> bool:
    return None in (model.mode, model.max_input_tokens, model.max_output_tokens)


def _enrich(
    client: httpx.Client,
    url: str,
    headers: Mapping[str, str],
    timeout_s: float,
    models: tuple[Model, ...],
) -> tuple[Model, ...]:
    """Fill missing metadata from /model/info; it is optional, so any failure leaves `models`."""
    import httpx

    try:
        status, body = _get(client, url, headers, timeout_s)
        infos = _model_infos(json.loads(body)) if status == 200 else {}
    except (httpx.HTTPError, ValueError):
        return models
    return tuple(_with_metadata(m, infos[m.id]) if m.id in infos else m for m in models)


def _model_infos(payload: Any) -> dict[str, Mapping[str, Any]]:
    """model_name -> model_info; `litellm_params` (backend credentials) is never read."""
    data = payload.get("data") if isinstance(payload, dict) else None
    infos: dict[str, Mapping[str, Any]] = {}
    for entry in data if isinstance(data, list) else ():
        if not isinstance(entry, dict):
            continue
        name, info = entry.get("model_name"), entry.get("model_info")
        if isinstance(name, str) and isinstance(info, dict):
            infos.setdefault(name, info)
    return infos


def _from_entry(entry: ModelEntry) -> Model:
    return Model(
        entry.id, entry.mode, entry.max_input_tokens, entry.max_output_tokens, tuple(entry.tags)
    )


def _unique_sorted(models: Iterable[Model]) -> tuple[Model, ...]:
    """One model per id, sorted by id; a repeated id adds only the metadata still missing."""
    by_id: dict[str, Model] = {}
    for model in models:
        seen = by_id.get(model.id)
        by_id[model.id] = model if seen is None else _with_metadata(seen, model.to_json())
    return tuple(by_id[i] for i in sorted(by_id))


def _stamp(now: Callable[[], datetime] | None) -> str:
    moment = now() if now is not None else datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
