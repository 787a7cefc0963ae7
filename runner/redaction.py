"""Keeping API keys out of everything runner prints or stores.

A server may echo the key it was sent: whole, cut short (`sk-abcdefgh…`), inside an error body,
a finish reason or an exception's message. Text from outside passes through `redact_keys` where
it is kept (request records, inventory reasons and errors), so neither a key nor a prefix of it
of `MIN_PREFIX` characters or more reaches a file or a terminal."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TypeVar, cast
from urllib.parse import parse_qs, urlsplit

from runner.errors import Problem, RunnerError

MIN_PREFIX = 8  # a shorter start of a key is no secret, and too common to hide
_MIN_SECRET = 4  # a whole key this short is still hidden (the simulator's test keys)
_HIDDEN = "***"
_SECRET = re.compile(r"\bsk-[A-Za-z0-9_\-]{4,}")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"']+@")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s\"']*):[^@/\s\"']*@")
_QUERY_PASSWORD = re.compile(r"(?i)(\bpassword=)[^&\s\"']*")

E = TypeVar("E", bound=RunnerError)


def redact_keys(text: str, keys: Iterable[str]) -> str:
    """`text` with every key of `keys`, and every run of 8 or more characters that starts like a
    key, shown as `***`; anything shaped like an `sk-` key is hidden too (`sk-***`)."""
    for key in keys:
        if len(key) >= MIN_PREFIX:
            text = _without_prefixes(text, key)
        elif len(key) >= _MIN_SECRET:
            text = text.replace(key, _HIDDEN)
    return _SECRET.sub("sk-" + _HIDDEN, text)


def _without_prefixes(text: str, key: str) -> str:
    """`text` with each occurrence of the key's first MIN_PREFIX characters, extended as far as
    the text goes on like the key, replaced; linear in len(text) per occurrence."""
    head = key[:MIN_PREFIX]
    start = text.find(head)
    if start < 0:
        return text
    parts, done = [], 0
    while start >= 0:
        end = start + MIN_PREFIX
        while end < len(text) and end - start < len(key) and text[end] == key[end - start]:
            end += 1
        parts += [text[done:start], _HIDDEN]
        done = end
        start = text.find(head, done)
    return "".join([*parts, text[done:]])


def header_keys(headers: Mapping[str, str]) -> list[str]:
    """The secrets in request headers: each value, and a bearer token without `Bearer `."""
    return [secret for value in headers.values()
            for secret in dict.fromkeys((value, value.removeprefix("Bearer ")))]


def redact(text: str, headers: Mapping[str, str]) -> str:
    """`text` without the header values (API keys), their prefixes, or `sk-` shaped keys."""
    return redact_keys(text, header_keys(headers))


def redact_error(error: E, keys: Iterable[str]) -> E:
    """The same error with the keys taken out of every problem's message."""
    keys = list(keys)
    problems = [Problem(redact_keys(p.message, keys), p.where) for p in error.problems]
    return cast(E, type(error).many(problems))


def hide_url_credentials(text: str) -> str:
    """`text` with the `user:password@` of every URL in it shown as `***@`."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def hide_url_password(text: str) -> str:
    """`text` with the password of every URL in it (`user:password@`, or a `password=` query
    parameter as libpq reads it) shown as `***`; the user name stays, to say who connected."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", text))


def url_password(url: str) -> str | None:
    """The password `url` carries (in its user part, else a `password=` query parameter)."""
    try:
        parts = urlsplit(url)
        given = parts.password or parse_qs(parts.query).get("password", [None])[0]
    except ValueError:
        return None
    return given or None
