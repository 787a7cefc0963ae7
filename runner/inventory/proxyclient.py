"""The LiteLLM proxy client behind the live inventory: GET /v1/models, its wildcard expansions
marked, enriched from /model_group/info then /model/info."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import httpx

from runner.defaults import LIMITS
from runner.errors import InventoryError
from runner.inventory.config import Server, api_key, auth_headers, key_state
from runner.inventory.gatewayinfo import (
    WILDCARD_QUERY,
    expansion_ids,
    group_infos,
    is_proxy_listing,
    lacks_metadata,
    model_infos,
)
from runner.inventory.listing import (
    Inventory,
    LiveUnavailable,
    Model,
    stamp,
    unique_sorted,
    with_metadata,
)
from runner.inventory.serverurl import base_url
from runner.printable import lone_surrogate

# LiteLLM lists these pseudo-models for keys scoped to teams; they are not servable models.
SPECIAL_IDS = frozenset({"all-team-models", "all-proxy-models", "no-default-models"})
CONNECT_TIMEOUT_S = 3.0
_EXCERPT_CHARS = 200
_T = TypeVar("_T")


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
    """GET /v1/models (with retries); for a LiteLLM proxy, marks the wildcard expansions
    (from `?return_wildcard_routes=true`) and optionally fills metadata from /model_group/info,
    then /model/info. Those three are optional: any failure of theirs leaves the listing as is.

    Raises LiveUnavailable when the fallback is allowed, InventoryError when it is not.
    """
    root = _root_url(server.url)
    get = _Getter(client, auth_headers(server, env), server.timeout_s,
                  server.limits.get("inventory_bytes", LIMITS["inventory_bytes"]))
    url = f"{root}/v1/models"
    status, body = _get_with_retries(get, url, retries, backoff_s)
    _check_status(status, body, server, env)
    payload = _decode(body, url)
    models, placeholders = _parse_models(payload, url)
    if models and is_proxy_listing(payload):
        expanded = _optional(get, f"{url}?{WILDCARD_QUERY}", expansion_ids) or frozenset()
        # /model_group/info comes first, the listing's own metadata (LiteLLM 1.106 copies
        # model_info's mode and limits into /v1/models) last: start from bare models.
        bare = tuple(Model(m.id, tags=m.tags, wildcard_expansion=m.id in expanded)
                     for m in models)
        enriched = _enrich(get, root, bare) if enrich else bare
        models = tuple(with_metadata(e, listed.to_json(), "listing")
                       for e, listed in zip(enriched, models, strict=True))
    return Inventory("live", server.name, server.url, stamp(now), None, models, placeholders)


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


@dataclass(frozen=True)
class _Getter:
    """GETs whose whole answer must arrive within `timeout_s` (a slow drip cannot hang us) and
    hold at most `max_bytes` (a 1 GB /v1/models took 10 s and GBs of memory). Identity encoding
    only: a gzip bomb inflates before any limit could look at it, so a compressed answer is
    refused."""

    client: httpx.Client
    headers: Mapping[str, str]
    timeout_s: float
    max_bytes: int

    def __call__(self, url: str) -> tuple[int, bytes]:
        """(status, body); raises httpx.HTTPError, or LiveUnavailable for an answer too large
        or compressed."""
        deadline = time.monotonic() + self.timeout_s
        headers = {**self.headers, "Accept-Encoding": "identity"}
        with self.client.stream("GET", url, headers=headers,
                                timeout=_timeout(self.timeout_s)) as response:
            encoding = response.headers.get("Content-Encoding", "").strip().lower()
            if encoding not in ("", "identity"):
                raise LiveUnavailable(f"answer from {url} is {_scrub(encoding, None)[:24]}-"
                                      "compressed, though runner asks for identity")
            body = bytearray()
            for chunk in response.iter_bytes():  # not decoded: identity, checked above
                body += chunk
                if len(body) > self.max_bytes:
                    raise LiveUnavailable(
                        f"answer from {url} is larger than {self.max_bytes} bytes"
                        " (limits.inventory_bytes in servers.yaml)")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"answer not complete after {self.timeout_s:g}s")
            return response.status_code, bytes(body)


def _get_with_retries(get: _Getter, url: str, retries: int, backoff_s: float) -> tuple[int, bytes]:
    """GET with exponential backoff, retrying only connection errors, timeouts and 5xx."""
    attempts = max(retries, 0) + 1
    reason = ""
    for attempt in range(attempts):
        try:
            status, body = get(url)
        except httpx.HTTPError as exc:
            reason = _transport_reason(exc, url, get.timeout_s)
        else:
            if status < 500 or _is_auth_error(status, _error_of(body)):
                return status, body
            reason = f"HTTP {status} from {url}"
        if attempt < retries:
            time.sleep(backoff_s * 2**attempt)
    tries = f" ({attempts} attempts)" if attempts > 1 else ""
    raise LiveUnavailable(reason + tries)


def _transport_reason(exc: httpx.HTTPError, url: str, timeout_s: float) -> str:
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
    except RecursionError:
        raise LiveUnavailable(f"answer from {url} is JSON nested too deeply to parse") from None


# --- classification of refusals -------------------------------------------------------------


def _check_status(status: int, body: bytes, server: Server, env: Mapping[str, str]) -> None:
    """Refusals (4xx, and anything but 2xx below 500) are configuration errors: no fallback."""
    if 200 <= status < 300:
        return
    error = _error_of(body)
    if _is_auth_error(status, error):
        raise InventoryError(_auth_message(status, error, server, env))
    message = error.get("message")
    detail = _scrub(message if isinstance(message, str) else "", api_key(server, env))
    said = f": {detail}" if detail else ""
    raise InventoryError(
        f"server {server.name!r} ({server.url}) answered HTTP {status} to GET /v1/models{said};"
        " check the server's url in configs/servers.yaml"
    )


def _error_of(body: bytes) -> dict[str, Any]:
    """The `error` object of a LiteLLM/OpenAI error answer, or {}."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
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
        " check that the variable holds a key this server accepts (for a LiteLLM proxy, a"
        " virtual key or its master key)"
    )


def _scrub(text: str, key: str | None) -> str:
    """A short excerpt of the server's words, without the key should the server echo it."""
    if key:
        text = text.replace(key, "***")
    text = " ".join(text[: _EXCERPT_CHARS * 4].split())
    return text[:_EXCERPT_CHARS]


# --- parsing ----------------------------------------------------------------------------------


def _parse_models(payload: Any, url: str) -> tuple[tuple[Model, ...], tuple[str, ...]]:
    """Models from an OpenAI-style list, deduplicated, without wildcards or LiteLLM's specials;
    and the specials it listed."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise LiveUnavailable(f"answer from {url} has no 'data' list")
    models, specials = [], []
    for entry in data:
        model_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(model_id, str) or not model_id:
            raise LiveUnavailable(f"answer from {url} has an entry without an 'id'")
        if (bad := lone_surrogate(model_id)) is not None:
            raise LiveUnavailable(f"answer from {url} has an id with {bad}, half of a surrogate "
                                  "pair, which no request or file can carry")
        if model_id in SPECIAL_IDS:
            specials.append(model_id)
        elif "*" not in model_id:
            models.append(with_metadata(Model(model_id), entry, "listing"))
    return unique_sorted(models), tuple(sorted(set(specials)))


def _enrich(get: _Getter, root: str, models: tuple[Model, ...]) -> tuple[Model, ...]:
    """Fill missing metadata from /model_group/info, then /model/info (each asked only while
    some model lacks metadata)."""
    for path, source, parse in (("/model_group/info", "model_group_info", group_infos),
                                ("/model/info", "model_info", model_infos)):
        if not any(lacks_metadata(m) for m in models):
            break
        infos = _optional(get, root + path, parse) or {}
        models = tuple(with_metadata(m, infos[m.id], source) if m.id in infos else m
                       for m in models)
    return models


def _optional(get: _Getter, url: str, parse: Callable[[Any], _T]) -> _T | None:
    """`parse` of the JSON answer to GET `url`; None for any failure (403, garbage, ...)."""
    try:
        status, body = get(url)
        return parse(json.loads(body)) if status == 200 else None
    except (httpx.HTTPError, LiveUnavailable, ValueError, RecursionError):
        return None
