"""What a LiteLLM proxy says about each answer in its `x-litellm-*` response headers, read once
per response into the request record's `gateway` block (issue 12).

Names and meanings checked in LiteLLM 1.106.2 (proxy/common_request_processing.py
`get_custom_headers`, router_utils/add_retry_fallback_headers.py, router.py): the deployment
that answered (`x-litellm-model-id`, a hash of its params) and its model group, the backend's
URL without its query, the call id (also on error answers), the proxy's version, the response
cost in USD, the whole call's duration and the proxy's own overhead in ms, and the retries and
fallbacks the router attempted before this answer. A header that is absent, or a value that is
not what LiteLLM sends (not a number, negative, not finite, absurdly large), is None: a hostile
or broken gateway can make a field unknown, never wrong or huge."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from runner.load.chunks import short

TEXT_LIMIT = 160  # a deployment id is 64 hex digits, a call id 36: room for longer names
MAX_MS = 1e9  # 11.6 days: a duration beyond it is not a measurement
MAX_COST_USD = 1e6
MAX_ATTEMPTS = 10_000
_HOST = re.compile(r"[A-Za-z0-9._-]{1,253}|[0-9A-Fa-f:.]{2,45}")  # a DNS name, IPv4 or IPv6


def read_gateway(headers: Mapping[str, str]) -> dict[str, Any] | None:
    """The record's `gateway` block from an answer's headers; None when it carries neither
    `x-litellm-call-id` nor `x-litellm-model-id` (not a LiteLLM proxy: two lookups, the only
    cost for a server that is not one). Error answers carry the call id (and cost 0) only."""
    call_id, model_id = headers.get("x-litellm-call-id"), headers.get("x-litellm-model-id")
    if call_id is None and model_id is None:
        return None
    get = headers.get
    return {
        "deployment_id": _text(model_id),
        "model_group": _text(get("x-litellm-model-group")),
        "api_base": api_host(get("x-litellm-model-api-base")),
        "call_id": _text(call_id),
        "litellm_version": _text(get("x-litellm-version")),
        "cost_usd": _number(get("x-litellm-response-cost"), MAX_COST_USD),
        "duration_ms": _number(get("x-litellm-response-duration-ms"), MAX_MS),
        "overhead_ms": _number(get("x-litellm-overhead-duration-ms"), MAX_MS),
        "attempted_retries": _count(get("x-litellm-attempted-retries")),
        "attempted_fallbacks": _count(get("x-litellm-attempted-fallbacks")),
    }


@functools.lru_cache(maxsize=256)  # a job sees a few backends: parsed once each, not per answer
def api_host(value: str | None) -> str | None:
    """`host[:port]` of a backend URL: never its scheme, credentials, path or query (LiteLLM
    cuts only the query: a path can hold an Azure deployment, a user:password@ a secret).
    None for what is not a URL with a plain host name or address."""
    if not value:
        return None
    text = value.strip()
    try:
        parts = urlsplit(text if "://" in text else "//" + text)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    if not host or not _HOST.fullmatch(host):
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    text = short(value, TEXT_LIMIT)
    return text if text and text.isprintable() else None


def _number(value: str | None, ceiling: float) -> float | None:
    if value is None or len(value) > 40:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and 0 <= number <= ceiling else None


def _count(value: str | None) -> int | None:
    if value is None or len(value) > 12:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 <= number <= MAX_ATTEMPTS else None
