"""Choosing an inventory source: live from a LiteLLM proxy's /v1/models, else the fallback file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from runner.errors import InventoryError, RunnerError
from runner.inventory.config import ModelsConfig, Server, api_key
from runner.inventory.listing import (
    Inventory,
    LiveUnavailable,
    from_fallback,
    with_file_metadata,
)
from runner.redaction import redact_error, redact_keys

SOURCES = ("auto", "live", "fallback")

# The HTTP client (runner.inventory.proxyclient, which imports httpx) is imported only when a live
# inventory is wanted: commands that only read the fallback file start about 80 ms faster.
if TYPE_CHECKING:
    import httpx


def load_inventory(
    server: Server,
    models: ModelsConfig,
    env: Mapping[str, str],
    *,
    source: str = "auto",
    allow_fallback: bool = True,
    client: httpx.Client | None = None,
) -> Inventory:
    """The inventory for `server` by `source` ("auto", "live" or "fallback"). The server's key
    (or a prefix of it) never shows in the fallback reason or an error, whatever it echoed."""
    if source not in SOURCES:
        raise ValueError(f"unknown inventory source {source!r}")
    key = api_key(server, env)
    keys = [key] if key else []
    try:
        inventory = _load(server, models, env, source, allow_fallback, client)
    except RunnerError as exc:
        raise redact_error(exc, keys) from None
    reason = inventory.fallback_reason
    return replace(inventory, fallback_reason=reason and redact_keys(reason, keys))


def _load(server: Server, models: ModelsConfig, env: Mapping[str, str], source: str,
          allow_fallback: bool, client: httpx.Client | None) -> Inventory:
    if source == "fallback":
        return _fallback(server, models, "--source fallback")
    from runner.inventory import proxyclient

    try:
        return with_file_metadata(proxyclient.fetch(server, env, client), models)
    except LiveUnavailable as exc:
        where = f"server {server.name!r} ({server.url}) is unreachable: {exc.reason}"
        if source == "live":
            raise InventoryError(f"{where}; --source live forbids the fallback") from None
        if not allow_fallback:
            raise InventoryError(
                f"{where}; the plan's `inventory.fallback: false` forbids the fallback"
            ) from None
        return _fallback(server, models, exc.reason)


def _fallback(server: Server, models: ModelsConfig, reason: str) -> Inventory:
    inventory = from_fallback(server, models, reason)
    if not inventory.models:
        fallback = models.missing or f"{models.path} lists no models for server {server.name!r}"
        raise InventoryError(f"no usable inventory: {reason}, and {fallback}")
    return inventory
