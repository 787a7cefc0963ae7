"""Shared fixtures: a real LiteLLM proxy, a real vLLM and a real PostgreSQL (one each per
session), and a URL where nothing listens."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from litellm_proxy import LiteLLMProxy, listed_ids, model_list, start_proxy
from postgres_server import PostgresServer, start_postgres
from postgres_server import missing as missing_postgres
from vllm_engine import VLLMServer, installed, start_vllm, vllm_home

REPO = Path(__file__).resolve().parent.parent


def litellm_binary() -> Path:
    """`litellm` from $RUNNER_LITELLM_VENV, else from the repo's .venv-litellm."""
    venv = os.environ.get("RUNNER_LITELLM_VENV") or str(REPO / ".venv-litellm")
    return Path(venv) / "bin" / "litellm"


def require_litellm() -> Path:
    """The litellm binary; skips the test locally when it is missing, fails it in CI."""
    binary = litellm_binary()
    if not binary.exists():
        message = f"no LiteLLM proxy at {binary}: run .ci/install-litellm"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture(autouse=True)
def private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests never read or write the user's ~/.cache/runner."""
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def litellm_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMProxy]:
    """A real LiteLLM proxy serving mock models; skipped locally if not installed, failed in CI."""
    binary = require_litellm()
    backend_key = f"fake-backend-key-{secrets.token_hex(8)}"
    proxy = start_proxy(binary, tmp_path_factory.mktemp("litellm"), model_list(backend_key))
    try:
        proxy.backend_key = backend_key
        configured = set(proxy.model_names)
        proxy.wildcard_ids = sorted({i for i in listed_ids(proxy) if i not in configured})
        yield proxy
    finally:
        proxy.stop()


def require_vllm() -> Path:
    """The engine's home; skips the test locally when it is not installed, fails it in CI."""
    home = vllm_home()
    missing = installed(home)
    if missing:
        message = f"{missing}: run .ci/install-vllm"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return home


def _serving(model: str, factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    server = start_vllm(require_vllm(), model, factory.mktemp("vllm"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """A real vLLM serving the tiny model (whole characters per token) as `tiny`."""
    yield from _serving("tiny-qwen3", tmp_path_factory)


@pytest.fixture(scope="session")
def vllm_bytes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """A real vLLM serving the tiny model that can emit partial UTF-8: tokens with no text."""
    yield from _serving("tiny-qwen3-bytes", tmp_path_factory)


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback URL where connecting is refused: its port stays bound to this test (so nothing
    else can start listening there meanwhile) but is never listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (tests/postgres_server.py); skipped locally when
    PostgreSQL is not installed, failed in CI."""
    why = missing_postgres()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """The URL (password in it) of a new, empty database of the session's cluster."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def index_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """Where a test's results index is: None (results/index.sqlite, the default), or a new
    PostgreSQL database; tests that take it run on both backends."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_url")
    return url
