"""The one place for default values (tests keep schemas/*.json `default`s equal to these)."""

from __future__ import annotations

from typing import Any

# Flat job parameters that have a fixed default.
PARAMS: dict[str, Any] = {
    "endpoint": "chat",
    "input_tokens_stddev": 0,
    "max_tokens": 256,
    "temperature": 0,
    "seed": 0,
    "stream": True,
    "arrival": "poisson",
    "warmup_requests": 0,
    "request_timeout_s": 600,
}

# Defaults that apply only when no alternative was chosen (see `complete_params`).
INPUT_TOKENS = 256  # when no prompt source (synthetic, dataset, template) is given
CONCURRENCY = 1  # when neither concurrency nor rate is given
REQUESTS = 100  # when neither requests nor duration_s is given

BENCHMARK: dict[str, Any] = {"on_empty": "error", "retries": 0, "max_error_rate": 0}
PLAN: dict[str, Any] = {"fallback": True, "gate": False}
SERVER: dict[str, Any] = {
    "verify_tls": True, "timeout_s": 10, "kind": "litellm",
    "ttft_ms": 50, "itl_ms": 10, "output_tokens": 128,  # kind: mock simulator timings
}

MAX_JOBS = 10_000
CONFIG_DIR = "configs"

# `runner init`: the LiteLLM proxy a new project starts with.
INIT_SERVER = "litellm"
INIT_URL = "http://127.0.0.1:4000"
INIT_API_KEY_ENV = "LITELLM_API_KEY"

# The most runner reads of one input file (plans, configs, locks; datasets): a larger file, or
# one that is not a regular file (a FIFO, /dev/urandom), is refused with exit 2, never read.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_DATASET_BYTES = 256 * 1024 * 1024
