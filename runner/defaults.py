"""The one place for default values (tests keep schemas/*.json `default`s equal to these)."""

from __future__ import annotations

from typing import Any

# Flat job parameters that have a fixed default.
PARAMS: dict[str, Any] = {
    "endpoint": "chat",
    "batch_size": 1,  # inputs per embeddings request (workload.embeddings); embeddings jobs only
    "input_tokens_stddev": 0,
    "max_tokens": 256,
    "temperature": 0,
    "seed": 0,
    "stream": True,
    "arrival": "poisson",
    "warmup_requests": 0,
    # Two guards on one request (issue 10 §6). The total deadline was 300 s, and a reasoning
    # answer (10-30 min of tokens arriving) failed as a timeout while it was being written: it
    # is now an hour, twice the longest such answer. Silence is what a dead or wedged server
    # shows: no byte for stall_timeout_s (queueing and a long prompt's prefill included, which
    # send nothing) fails the request as `stalled`. 300 s keeps issue 9's bound: a server that
    # accepts and never answers still ends a default job (100 requests, concurrency 1) after
    # 3 x 300 s = 15 min, as `unresponsive`.
    "request_timeout_s": 3600,
    "stall_timeout_s": 300,
}

# Load shapes and early stop (issue 13), when the plan leaves them out: gamma arrivals are
# Poisson-like (vLLM's default burstiness), a ramp starts at a tenth of its target, and the
# error-rate early stop waits for 20 finished requests (one failure among 3 is noise).
BURSTINESS = 1.0
RAMP_START_FRACTION = 0.1
EARLY_STOP_MIN_REQUESTS = 20

# load.repeat and load.repeat_pause_s when unset (kept out of a job's params then, so a job
# planned without them keeps its params and its lock): one run of the load, no pause.
REPEAT = 1
REPEAT_PAUSE_S = 0.0

# The plan parameter `prompt_reuse` when unset (kept out of a job's params then, so jobs planned
# before it existed keep theirs): synthetic prompts are a job's and a run's own.
PROMPT_REUSE = "none"

# workload.synthetic.calibrate when unset (kept out of a job's params then, as prompt_reuse is):
# synthetic prompts are sized for each model by what its server counts (issue 14 §6).
CALIBRATE = "auto"
# workload.trace_format and load.replay.speed when unset (kept out of a job's params then):
# runner's own JSONL, replayed in its recorded time (issue 14 §5).
TRACE_FORMAT = "runner"
REPLAY_SPEED = 1.0
# A shared prefix's (workload.synthetic.prefix) optional keys: requests take the prefixes in
# turn, and each prefix is sent once before the warm-ups (issue 14 §1).
PREFIX: dict[str, Any] = {"pick": "round_robin", "prime": True}

# Defaults that apply only when no alternative was chosen (see `complete_params`).
INPUT_TOKENS = 256  # when no prompt source (synthetic, dataset, template) is given
CONCURRENCY = 1  # when neither concurrency nor rate is given
REQUESTS = 100  # when neither requests nor duration_s is given
SESSION_THINK_TIME_S = 0.0  # workload.session: no pause between a turn's answer and the next
# After duration_s, requests in flight may finish for duration_grace_s, then they are cancelled.
# Its default is duration_s itself, at most this (AIPerf's grace period is 30 s): a duration job
# takes at most twice its duration, and at most 30 s more.
DURATION_GRACE_MAX_S = 30.0


def duration_grace_s(duration_s: float) -> float:
    """The default grace after `duration_s` (seconds) for requests still in flight."""
    return min(float(duration_s), DURATION_GRACE_MAX_S)


BENCHMARK: dict[str, Any] = {"on_empty": "error", "retries": 0, "max_error_rate": 0}
PLAN: dict[str, Any] = {"fallback": True, "gate": False, "include_wildcard_expansions": False}
SERVER: dict[str, Any] = {
    "verify_tls": True, "timeout_s": 10, "kind": "litellm",
    "ttft_ms": 50, "itl_ms": 10, "output_tokens": 128,  # kind: mock simulator timings
    "tokens_per_word": 1.0, "tokenize": True,  # kind: mock simulated tokenizer (issue 14 §6)
    # kind: mock: its prefix cache (runner.mock.prefixcache), off unless asked: no hashing and
    # no /metrics, so a simulator behind a plain URL is not scraped (its scrapes cost the
    # client's event loop a few ms on a busy machine: client_bound in timing tests)
    "prefix_cache_blocks": 0,
    "scrape_interval_s": 1,  # the server's /metrics, read this often during each job
    "reasoning_tokens": 0,  # kind: mock: chat answers reason this many tokens first
}

# What runner asks a LiteLLM proxy to do behind its back (servers.yaml `gateway`): false = ask
# for none (header `x-litellm-num-retries: 0`, body `disable_fallbacks: true`), so a benchmark
# sees every failure instead of a retried or rerouted answer (issue 12).
GATEWAY: dict[str, bool] = {"retries": False, "fallbacks": False}

# What runner accepts from a server (servers.yaml `limits`): beyond it a request fails as
# `response_too_large`, the inventory falls back. Sized far above what a sane server sends.
LIMITS: dict[str, int] = {
    "line_bytes": 4 << 20,  # one SSE line or event, or a whole non-streamed answer
    "chunks": 1 << 18,  # content chunks of one answer: a timing each in the request's record
    "error_bytes": 64 << 10,  # read of an error answer (non-2xx); the rest is never read
    "inventory_bytes": 32 << 20,  # a /v1/models or /model/info answer
    "metrics_bytes": 8 << 20,  # one scrape of the server's /metrics
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

# A capacity search's (load.search) optional keys: relative precision, most trials per model.
SEARCH: dict[str, Any] = {"precision": 0.1, "max_jobs": 12}
# A sweep's (load.sweep) throughput job: streams in flight.
SWEEP: dict[str, Any] = {"concurrency": 64}

# `runner apply --workers auto` (issue 15 §1): one worker process per WORKER_STREAMS streams of
# a closed loop, or per WORKER_RATE req/s of an open loop, at most one per core. A rule of
# thumb, not a measured knee: against a zero-delay simulator one process's send lag p99 passes
# the 10 ms client_bound threshold at 64 streams already (benchmarks/loadgen.py, part a), while
# a real server's answers last far longer and leave the client idle most of the time; a
# worker costs ~0.3 CPU-s to start and ~25% more CPU per request (part c).
WORKER_STREAMS = 128
WORKER_RATE = 200.0
