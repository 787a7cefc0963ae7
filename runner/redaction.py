"""Keeping API keys out of the error messages the load generator records."""

from __future__ import annotations

import re
from collections.abc import Mapping

_SECRET = re.compile(r"\bsk-[A-Za-z0-9_\-]{4,}")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"']+@")


def redact(text: str, headers: Mapping[str, str]) -> str:
    """`text` without the header values (API keys) or anything shaped like an `sk-` key."""
    for value in headers.values():
        for secret in (value, value.removeprefix("Bearer ")):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
    return _SECRET.sub("sk-***", text)


def hide_url_credentials(text: str) -> str:
    """`text` with the `user:password@` of every URL in it shown as `***@`."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)
