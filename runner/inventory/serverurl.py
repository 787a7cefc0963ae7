"""A server's URL: the one root every client joins paths to, and the URLs no client can use."""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import urlsplit

from runner.errors import Problem
from runner.redaction import hide_url_credentials
from runner.yamlfile import Document


def base_url(url: str) -> str:
    """The root every client joins `/v1/...` to: `url` without a trailing `/` or `/v1`, so the
    usual copy from OpenAI configs (`http://host:4000/v1`, `.../v1/`) is `http://host:4000`."""
    return url.strip().rstrip("/").removesuffix("/v1").rstrip("/")


_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_ENDPOINTS = ("/chat/completions", "/completions", "/models", "/embeddings", "/responses")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a server's base URL for runner's HTTP clients (httpx for the inventory,
    aiohttp for the load), or None. The checks that those clients would otherwise fail on in the
    middle of a command: host, port, control characters, a query, an endpoint's path."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return "holds a space or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if parts.username is not None or parts.password is not None:
        return "holds credentials (user:password@): the key goes in api_key_env's variable"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "takes no ?query or #fragment: runner appends /v1/... to the base URL"
    problem = _host_problem(parts.hostname or "") or ("has port 0" if port == 0 else None)
    if problem is None and base_url(url).endswith(_ENDPOINTS):
        problem = "names an endpoint: give the server's base URL, without /v1/..."
    return problem or _client_problem(url)


def _host_problem(host: str) -> str | None:
    if not host:
        return "names no host"
    if ":" in host or re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return f"has an invalid IP address {host!r}"
        return None
    if not host.isascii():
        return "has a non-ASCII host: write it in its ASCII (punycode) form, xn--..."
    if len(host) > 253 or not _HOSTNAME.fullmatch(host):
        return f"has an invalid host name {host!r} (letters, digits, - and _ between dots)"
    return None


def _client_problem(url: str) -> str | None:
    """What the HTTP clients' own URL parsers refuse, whatever the checks above missed."""
    import httpx
    import yarl

    try:
        httpx.URL(url)
        yarl.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        return f"is refused by runner's HTTP clients ({exc})"
    return None


_EXAMPLES = {"url": "http://127.0.0.1:4000", "metrics_url": "http://127.0.0.1:8000/metrics"}


def url_problems(doc: Document, key: str = "url") -> list[Problem]:
    """servers.yaml's URLs (under `key`: url or metrics_url) that `url_problem` refuses, each
    at its place."""
    servers = doc.data.get("servers") if isinstance(doc.data, dict) else None
    problems = []
    for name, spec in (servers if isinstance(servers, dict) else {}).items():
        url = spec.get(key) if isinstance(spec, dict) else None
        problem = url_problem(url) if isinstance(url, str) else None
        if problem and isinstance(url, str):
            shown = json.dumps(hide_url_credentials(url))
            example = _EXAMPLES[key]
            problems.append(Problem(f"{key} {shown} {problem}; e.g. {example}",
                                    doc.where(("servers", name, key))))
    return problems
