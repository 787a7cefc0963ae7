"""The LiteLLM proxy client behind the live inventory: GET /v1/models, enriched from /model/info."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from runner.errors import InventoryError
from runner.inventory.config import Server, api_key, auth_headers, key_state
from runner.inventory.listing import (
    Inventory,
    LiveUnavailable,
    Model,
    stamp,
    unique_sorted,
    with_metadata,
)
from runner.inventory.serverurl import base_url

# LiteLLM lists these pseudo-models for keys scoped to teams; they are not servable models.
SPECIAL_IDS = frozenset({"all-team-models", "all-proxy-models", "no-default-models"})
CONNECT_TIMEOUT_S = 3.0
_EXCERPT_CHARS = 200


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
    headers = auth_headers(server, env)
    url = f"{root}/v1/models"
    status, body = _get_with_retries(client, url, headers, server.timeout_s, retries, backoff_s)
    _check_status(status, body, server, env)
    models = _parse_models(_decode(body, url), url)
    if enrich and any(_lacks_metadata(m) for m in models):
        models = _enrich(client, f"{root}/model/info", headers, server.timeout_s, models)
    return Inventory("live", server.name, server.url, stamp(now), None, models)


def fetch(server: Server, env: Mapping[str, str], client: httpx.Client | None) -> Inventory:
    """`fetch_live` through `client`, or through a client of its own configured for `server`."""
    if client is not None:
        return fetch_live(client, server, env)
    with httpx.Client(verify=server.verify_tls, timeout=_timeout(server.timeout_s)) as own:
        return fetch_live(own, server, env)


# --- HTTP -----------------------------------------------------------------------------------


def _root_url(url: str) -> str:
    return base_url(url)  # a Server's url is already one; a URL from elsewhere gets the same


def _timeout(timeout_s: float) -> httpx.Timeout:
    return httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))


def _get(
    client: httpx.Client, url: str, headers: Mapping[str, str], timeout_s: float
) -> tuple[int, bytes]:
    """One GET whose whole answer must arrive within `timeout_s` (a slow drip cannot hang us)."""
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
    detail = _scrub(str(error.get("message") or ""), api_key(server, env))
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
            f" set api_key_env for it in {server.source} and export that variable"
        )
    if api_key(server, env) is None:
        state = key_state(var, env)
        todo = "export it" if state == "unset" else "put the key in it"
        return f"{head} requires an API key ({code}) but ${var} is {state}: {todo}"
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
            models.append(with_metadata(Model(model_id), entry))
    return unique_sorted(models)


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
    try:
        status, body = _get(client, url, headers, timeout_s)
        infos = _model_infos(json.loads(body)) if status == 200 else {}
    except (httpx.HTTPError, ValueError):
        return models
    return tuple(with_metadata(m, infos[m.id]) if m.id in infos else m for m in models)


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
