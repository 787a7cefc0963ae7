"""A PostgreSQL results index's URL: checked, shown without its password, turned into
connection options with bounded timeouts, and psycopg's errors turned into one line each."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runner.errors import InputError, RunnerError, UnreachableIndexError
from runner.redaction import hide_url_password, redact_keys, url_password

SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT_S = 10  # libpq's connect_timeout, unless the URL gives its own
# A server that stops answering mid-write: TCP keepalives and a user timeout end the wait
# (libpq has no read timeout); statement and lock timeouts bound a busy server's wait.
DEFAULTS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_S, "keepalives": 1, "keepalives_idle": 10,
    "keepalives_interval": 5, "keepalives_count": 3, "tcp_user_timeout": 30_000,
    "application_name": "runner",
    "options": "-c statement_timeout=60000 -c lock_timeout=60000",
}
_AUTH_STATES = ("28000", "28P01")  # invalid authorization, invalid password
_AUTH_SAID = ("authentication failed", "no pg_hba.conf entry", "password is required",
              "does not exist")  # a role or database that does not exist
# libpq's checks of the URL's options before it connects (sslmode=bogus: psycopg raises them
# as OperationalError, like a server that is down): "invalid sslmode value", "invalid
# target_session_attrs value", "invalid integer value"
_BAD_OPTION = re.compile(r"\binvalid [\w ]+ value\b")
FORM = "postgresql://USER@HOST:PORT/DATABASE"
HINT = ("or, to keep the index in results/index.sqlite, unset RUNNER_INDEX_URL (and "
        "servers.yaml's results.index_url)")


def is_postgres(location: str) -> bool:
    """Whether `location` (an index path or URL) names a PostgreSQL index."""
    return location.split("://", 1)[0].lower() in SCHEMES and "://" in location


def shown(url: str) -> str:
    """`url` as it may be printed or stored: its password shown as `***`."""
    return hide_url_password(url)


def check_url(url: str) -> None:
    """InputError (one line, password hidden) for a URL no connection could be made from:
    not postgresql://, or a port that is no number (libpq's several hosts are left to it)."""
    try:
        parts = urlsplit(url)
        if "," not in parts.netloc:
            parts.port  # noqa: B018  (ValueError when the port is not a number)
    except ValueError as exc:
        raise InputError(f"{shown(url)}: not a usable PostgreSQL URL ({shown(str(exc))}); "
                         f"expected {FORM}") from None
    if not is_postgres(url):
        raise InputError(f"{shown(url)}: not a PostgreSQL URL; expected {FORM}")


def connect_options(url: str) -> dict[str, Any]:
    """psycopg.connect's arguments: the URL, and every default of DEFAULTS it does not set."""
    check_url(url)
    given = set(parse_qs(urlsplit(url).query))
    return {"conninfo": url, **{k: v for k, v in DEFAULTS.items() if k not in given}}


def failure(url: str, exc: Exception) -> RunnerError:
    """The one-line error for a psycopg error met using the index at `url`: InputError (exit
    2) for a bad URL, credentials, database name or an index it cannot update;
    UnreachableIndexError (exit 74) for a server that is down, gone or too slow."""
    said, secret = " ".join(str(exc).split()), url_password(url)
    if secret:  # libpq does not echo it, but a message quoting the URL would
        said = redact_keys(said, [secret]).replace(secret, "***")
    said = shown(said)
    where, state = shown(url), getattr(exc, "sqlstate", None) or ""
    if not state and (type(exc).__name__ == "ProgrammingError" or _BAD_OPTION.search(said)):
        return InputError(f"{where}: not a usable PostgreSQL URL ({said}); expected {FORM}")
    if state in (*_AUTH_STATES, "3D000") or (not state and any(s in said for s in _AUTH_SAID)):
        return InputError(f"{where}: the server refused the connection ({said}); check the "
                          "user, database and password ($PGPASSWORD or ~/.pgpass)")
    if state == "42501":
        return InputError(f"{where}: not allowed to use the results index ({said}); grant "
                          "the user CREATE and write access on its schema")
    if not any(c.__name__ in ("OperationalError", "InterfaceError") for c in type(exc).__mro__):
        return InputError(f"{where}: cannot update the results index ({said})")
    if "timeout expired" in said or state == "57014":
        return UnreachableIndexError(f"{where}: the results index did not answer in time "
                                     f"({said})", f"check the server, {HINT}")
    return UnreachableIndexError(f"{where}: cannot use the results index ({said})",
                                 f"check that the server runs and the URL, {HINT}")
