"""Helpers for CLI tests: a config folder and plan files in tmp_path, and `main` in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.main import main

FALLBACK_MODELS = """\
groups:
  coder: ["*Coder*", "~(?i).*codestral"]
models:
  - {id: Qwen/Qwen3-Coder-30B-A3B-Instruct, mode: chat, max_input_tokens: 262144}
  - {id: Qwen/Qwen3-8B, mode: chat}
  - {id: Qwen/Qwen3-8B-FP8, mode: chat}
  - {id: "llama3.1:8b", mode: chat}
  - {id: mistralai/Codestral-22B, servers: [other]}
"""


def write_configs(folder: Path, url: str, api_key_env: str | None = "TEST_LITELLM_KEY") -> Path:
    """servers.yaml with one server `local` at `url`, and the fallback models.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    key = f"\n    api_key_env: {api_key_env}" if api_key_env else ""
    (folder / "servers.yaml").write_text(
        f"default: local\nservers:\n  local:\n    url: {url}{key}\n    timeout_s: 30\n"
        f"  other:\n    url: {url}\n")
    (folder / "models.yaml").write_text(FALLBACK_MODELS)
    return folder


def write_plan(folder: Path, body: str, name: str = "plan.yaml") -> Path:
    path = folder / name
    path.write_text(body)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code, out, err = run_cli(capsys, *argv)
    return code, json.loads(out) if out.strip() else None, err
