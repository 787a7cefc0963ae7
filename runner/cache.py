"""A content-addressed cache of validated documents, so a big unchanged file is parsed once."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from runner import __version__
from runner.atomicfile import write_atomic


def cache_dir(env: Mapping[str, str]) -> str:
    """$RUNNER_CACHE_DIR, else $XDG_CACHE_HOME/runner, else ~/.cache/runner."""
    explicit = env.get("RUNNER_CACHE_DIR")
    if explicit:
        return explicit
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "runner")


def document_key(raw: bytes, *salts: bytes) -> str:
    """The key of a file's content as read by this runner version and these schemas."""
    digest = hashlib.sha256(__version__.encode())
    for salt in salts:
        digest.update(hashlib.sha256(salt).digest())
    digest.update(hashlib.sha256(raw).digest())
    return digest.hexdigest()


def get(folder: str, key: str) -> Any | None:
    """The cached value for `key`, or None (a missing or damaged entry is a miss)."""
    try:
        with open(os.path.join(folder, "documents", f"{key}.json"), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def put(folder: str, key: str, value: Any) -> None:
    """Store `value` atomically; a cache that cannot be written is silently skipped."""
    target = os.path.join(folder, "documents")
    try:
        text = json.dumps(value, separators=(",", ":"))
        os.makedirs(target, exist_ok=True)
        write_atomic(os.path.join(target, f"{key}.json"), text)
    except (OSError, TypeError, ValueError):
        return
