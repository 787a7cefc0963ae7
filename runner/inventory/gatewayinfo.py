"""What a LiteLLM proxy says beyond /v1/models: wildcard expansions and /model_group/info.

Facts from LiteLLM 1.106.2 (litellm/proxy/auth/model_checks.py, proxy_server.py):
- `get_complete_model_list` returns the configured names first, then, for each wildcard route
  (`openai/*`), the names `get_known_models_from_wildcard` takes from LiteLLM's price list.
  With `?return_wildcard_routes=true` (`_get_wildcard_models`) the route itself is listed just
  before its expansions; without it the route is dropped and only the expansions remain.
  Key or team aliases are appended after all of them (`alias_listing_entries`).
- `/model_group/info` is the endpoint meant for clients: one entry per model group with
  `mode`, `max_input_tokens`/`max_output_tokens` (floats), `supports_*`, and no
  `litellm_params`. It expands wildcard routes too, so it cannot tell expansions apart.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from runner.inventory.listing import Model

WILDCARD_QUERY = "return_wildcard_routes=true"
# Route-by-id glob matches one answer may cost (about 0.3 s): a real proxy lists a few dozen
# routes and some thousands of expansions (10^5); a hostile answer of 30,000 routes and as many
# ids asked for 10^9 matches, minutes of CPU, within limits.inventory_bytes.
MAX_ROUTE_MATCHES = 2_000_000


def expansion_ids(payload: Any) -> frozenset[str]:
    """The ids of a `/v1/models?return_wildcard_routes=true` answer that exist only because a
    wildcard route was expanded: first listed after a route (an id containing `*`) and matched
    by that route's glob. A configured name is listed before every route, so it is never one,
    even if a route would also match it; an alias appended at the end matches no route unless
    it is named like one. A proxy that ignores the query lists no route: no expansions.

    Raises ValueError for an answer that would take more than MAX_ROUTE_MATCHES glob matches
    (routes x ids listed after them): no real proxy lists that many routes."""
    data = payload.get("data") if isinstance(payload, dict) else None
    seen: set[str] = set()
    routes: list[re.Pattern[str]] = []
    found: set[str] = set()
    matches = 0
    for entry in data if isinstance(data, list) else ():
        model_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(model_id, str):
            continue
        if "*" in model_id:
            routes.append(re.compile(fnmatch.translate(model_id)))
        elif model_id not in seen and routes:
            matches += len(routes)
            if matches > MAX_ROUTE_MATCHES:
                raise ValueError(f"wildcard listing asks for more than {MAX_ROUTE_MATCHES} "
                                 "route matches")
            if any(r.match(model_id) for r in routes):
                found.add(model_id)
        seen.add(model_id)
    return frozenset(found)


def group_infos(payload: Any) -> dict[str, Mapping[str, Any]]:
    """model_group -> its /model_group/info entry (`litellm_params` is never there to read)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    infos: dict[str, Mapping[str, Any]] = {}
    for entry in data if isinstance(data, list) else ():
        name = entry.get("model_group") if isinstance(entry, dict) else None
        if isinstance(name, str):
            infos.setdefault(name, entry)
    return infos


def model_infos(payload: Any) -> dict[str, Mapping[str, Any]]:
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


def is_proxy_listing(payload: Mapping[str, Any]) -> bool:
    """False for an engine's own listing (vLLM, SGLang: every entry carries `max_model_len`,
    which LiteLLM does not pass on): only a LiteLLM proxy has /model/info to ask."""
    data = payload.get("data") or []
    return not all(isinstance(e, dict) and "max_model_len" in e for e in data)


def lacks_metadata(model: Model) -> bool:
    """Whether a mode or a token limit of `model` is still unknown."""
    return None in (model.mode, model.max_input_tokens, model.max_output_tokens)
