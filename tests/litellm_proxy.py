"""Start and stop a real LiteLLM proxy on a loopback port, for the integration tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from served import ServedProcess, wait_ready

READY_PATH = "/health/liveliness"
SERVED_IDS = (
    "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-8B-FP8",
    "meta-llama/Llama-3.1-8B-Instruct",
    "llama3.1:8b",
    "mistralai/Codestral-22B",
)
# The one model whose metadata the config declares (model_info).
DESCRIBED_ID = "llama3.1:8b"
DESCRIBED_INFO = {"mode": "chat", "max_input_tokens": 131072, "max_output_tokens": 8192}
WILDCARD = "openai/*"
# Only what the proxy needs to run: never the caller's API keys or cloud credentials.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")
BIND_ATTEMPTS = 3


def free_port() -> int:
    """A loopback port with nothing listening on it (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def new_master_key() -> str:
    """A random master key; the proxy refuses an empty one or `sk-1234`."""
    return f"sk-test-{secrets.token_hex(12)}"


def model_list(backend_key: str) -> list[dict[str, Any]]:
    """Mock-answering models with ids holding `/` and `:`, one with metadata, and a wildcard."""
    models: list[dict[str, Any]] = []
    for model_id in SERVED_IDS:
        params = {"model": f"openai/{model_id}", "mock_response": "hi", "api_key": backend_key}
        entry: dict[str, Any] = {"model_name": model_id, "litellm_params": params}
        if model_id == DESCRIBED_ID:
            entry["model_info"] = dict(DESCRIBED_INFO)
        models.append(entry)
    models.append(
        {"model_name": WILDCARD, "litellm_params": {"model": WILDCARD, "mock_response": "hi"}}
    )
    return models


def write_config(path: Path, model_list: Sequence[Mapping[str, Any]], master_key: str,
                 router_settings: Mapping[str, Any] | None = None) -> None:
    """The proxy's config: `router_settings` are merged over `num_retries: 0` (e.g.
    `num_retries`, `fallbacks`: a proxy that retries or falls back as a production one may;
    `model_group_alias`, whose aliases LiteLLM lists and routes to the group's deployments)."""
    config = {
        "model_list": list(model_list),
        "general_settings": {"master_key": master_key},
        "litellm_settings": {"drop_params": True},
        "router_settings": {"num_retries": 0, **(router_settings or {})},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


@dataclass
class LiteLLMProxy(ServedProcess):
    """A running proxy: its url, master key and process; `stop()` ends it."""

    url: str
    master_key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    backend_key: str = ""
    model_names: list[str] = field(default_factory=list)  # configured, without the wildcard
    wildcard_ids: list[str] = field(default_factory=list)  # what the wildcard route adds


def start_proxy(
    litellm_bin: Path,
    workdir: Path,
    model_list: Sequence[Mapping[str, Any]],
    router_settings: Mapping[str, Any] | None = None,
    *,
    deadline_s: float = 90.0,
) -> LiteLLMProxy:
    """Write a config (see write_config), start `litellm` on a free loopback port and wait
    until it is live.

    LiteLLM binds its port only after ~10 s of start-up: if another process took the port
    meanwhile, it exits with "address already in use" and is started again on another port."""
    master_key = new_master_key()
    config = workdir / "litellm.yaml"
    write_config(config, model_list, master_key, router_settings)
    names = [str(m["model_name"]) for m in model_list]
    for _ in range(BIND_ATTEMPTS - 1):
        with contextlib.suppress(PortTaken):
            return _start(litellm_bin, config, workdir, master_key, names, deadline_s)
    return _start(litellm_bin, config, workdir, master_key, names, deadline_s)


class PortTaken(RuntimeError):
    """LiteLLM could not bind its port: another process listens there."""


def _start(litellm_bin: Path, config: Path, workdir: Path, master_key: str, names: list[str],
           deadline_s: float) -> LiteLLMProxy:
    port = free_port()
    log_path = workdir / "litellm.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(litellm_bin), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_proxy_env(workdir),
            cwd=workdir,
        )
    running = LiteLLMProxy(f"http://127.0.0.1:{port}", master_key, process, log_path)
    running.model_names = [n for n in names if "*" not in n]
    try:
        _wait_ready(running, deadline_s)
    except BaseException:
        running.stop()
        raise
    return running


def _proxy_env(workdir: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.setdefault("HOME", str(workdir))
    # No internet here: without this the proxy tries to download its model price map.
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # For model names containing "llama", LiteLLM counts streamed tokens with a Hugging Face
    # tokenizer it tries to download: offline, that adds ~23 s to every request.
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _wait_ready(proxy: LiteLLMProxy, deadline_s: float) -> None:
    def port_taken() -> None:
        if "address already in use" in proxy.log_tail():
            raise PortTaken(f"{proxy.url} was taken before litellm could bind it")

    def live() -> bool:
        return httpx.get(proxy.url + READY_PATH, timeout=2.0).status_code == 200

    wait_ready(proxy, "litellm", live, deadline_s, poll_s=0.25, on_exit=port_taken)


def listed_ids(proxy: LiteLLMProxy) -> list[str]:
    """The raw ids of the proxy's /v1/models, duplicates included, read without the runner."""
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    answer = httpx.get(f"{proxy.url}/v1/models", headers=headers, timeout=10.0)
    answer.raise_for_status()
    return [str(entry["id"]) for entry in answer.json()["data"]]
