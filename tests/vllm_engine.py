"""Start and stop a real vLLM (CPU build) on a loopback port, for the real-engine tests.

The engine and its tiny local models are installed by `.ci/install-vllm` into $RUNNER_VLLM_HOME
(default ~/.cache/runner-ci/vllm): `venv/` and `models/<name>/`. Start-up takes 1-3 minutes on two
busy cores (imports, weight loading, the CPU backend's warm-up), so the tests share one server per
model for the whole session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from litellm_proxy import free_port
from served import ServedProcess, wait_ready

MODELS = ("tiny-qwen3", "tiny-qwen3-bytes")
SERVED_NAME = "tiny"
MAX_MODEL_LEN = 2048
READY_DEADLINE_S = 900.0
# Only what the engine needs: never the caller's API keys or cloud credentials.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def vllm_home() -> Path:
    """Where .ci/install-vllm put the engine and the models."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "runner-ci/vllm"
    return Path(os.environ.get("RUNNER_VLLM_HOME") or default)


def installed(home: Path) -> str | None:
    """None when the engine and both models are there, else what is missing."""
    if not (home / "venv" / "bin" / "python").is_file():
        return f"no vLLM venv in {home}"
    for name in MODELS:
        if not (home / "models" / name / "config.json").is_file():
            return f"no model {name} in {home / 'models'}"
    return None


@dataclass
class VLLMServer(ServedProcess):
    """A running engine: its base url (no /v1), served model name, process and log."""

    url: str
    model: str
    process: subprocess.Popen[bytes]
    log_path: Path
    STOP_SIGNAL = signal.SIGINT  # vLLM ignores SIGTERM while starting

    def stop(self, grace_s: float = 30.0) -> None:
        super().stop(grace_s)


def start_vllm(home: Path, model: str, workdir: Path) -> VLLMServer:
    """Start the OpenAI-compatible server for `models/<model>` as SERVED_NAME on a free loopback
    port and wait until /v1/models lists it. Raises RuntimeError (with the log's tail) when the
    engine exits or is not ready within READY_DEADLINE_S."""
    port = free_port()
    log_path = workdir / f"vllm-{model}.log"
    command = [
        str(home / "venv" / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(home / "models" / model), "--served-model-name", SERVED_NAME,
        "--host", "127.0.0.1", "--port", str(port), "--max-model-len", str(MAX_MODEL_LEN),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=_engine_env(workdir), cwd=workdir)
    server = VLLMServer(f"http://127.0.0.1:{port}", SERVED_NAME, process, log_path)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _engine_env(workdir: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.setdefault("HOME", str(workdir))
    env.update({
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",  # no hub: nothing is downloaded
        "VLLM_HOST_IP": "127.0.0.1",  # its internal sockets otherwise bind the external address
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache: plenty for a tiny model
        "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
    })
    return env


def _wait_ready(server: VLLMServer) -> None:
    def serves_the_model() -> bool:
        answer = httpx.get(server.url + "/v1/models", timeout=5.0)
        return answer.status_code == 200 and SERVED_NAME in answer.text

    wait_ready(server, "vLLM", serves_the_model, READY_DEADLINE_S, poll_s=1.0)


PROMPTS = ("Explain what a cache does.", "Write a short poem about the river.",
           "List three colors and a number.", "Why is the queue long at night?")


def engine_project(tmp_path: Path, server: VLLMServer, plan: str, monkeypatch: Any) -> Path:
    """A project in `tmp_path` whose server `engine` is `server`: configs/servers.yaml,
    prompts.jsonl (PROMPTS) and plan.yaml (`plan`); the test's config dir and working folder
    point there (`monkeypatch`: pytest's). Returns the plan's path."""
    configs = tmp_path / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "servers.yaml").write_text(f"servers:\n  engine:\n    url: {server.url}\n")
    (tmp_path / "prompts.jsonl").write_text(
        "".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    path = tmp_path / "plan.yaml"
    path.write_text(plan)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.chdir(tmp_path)
    return path


def tokenize(server: VLLMServer, text: str) -> int:
    """How many tokens the engine makes of `text` as one user message (its /tokenize, with the
    chat template applied as a chat request is)."""
    body = {"model": server.model, "messages": [{"role": "user", "content": text}]}
    answer = httpx.post(server.url + "/tokenize", json=body, timeout=30.0)
    answer.raise_for_status()
    return int(answer.json()["count"])
