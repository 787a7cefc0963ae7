"""The Prometheus text an engine serves: parsed by prometheus_client's parser into flat samples,
and the series runner knows by name for vLLM, SGLang, TGI and LiteLLM."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Known:
    """A series runner summarises: its kind ("gauge": mean/max; "counter": delta and rate), its
    unit, and the sample name each engine gives it, in the order they are looked for."""

    kind: str
    unit: str
    definition: str
    samples: tuple[str, ...]
    combine: str = "sum"  # how label sets (e.g. one per model) add up: "sum" or "max"


# Names as each engine exposes them. vLLM: vllm/v1/metrics/loggers.py of vLLM 0.32 (counters
# get `_total` from prometheus_client); SGLang: docs/references/production_metrics.md; TGI: its
# metrics docs (token counts are histograms: their `_sum` is the total); older vLLM releases
# named the KV-cache gauge gpu_cache_usage_perc, and an untyped exposition shows a counter without
# `_total`; LiteLLM's own (callbacks: ["prometheus"]): docs/proxy/prometheus.md.
KNOWN: dict[str, Known] = {
    "requests_running": Known(
        "gauge", "requests", "requests the engine is running (in its batch)",
        ("vllm:num_requests_running", "sglang:num_running_reqs", "tgi_batch_current_size")),
    "requests_waiting": Known(
        "gauge", "requests", "requests queued in the engine, not yet scheduled",
        ("vllm:num_requests_waiting", "sglang:num_queue_reqs", "tgi_queue_size")),
    "kv_cache_usage": Known(
        "gauge", "fraction", "share of the KV cache in use (0..1)",
        ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"),
        combine="max"),
    "preemptions": Known(
        "counter", "preemptions", "requests preempted (evicted from the batch and redone)",
        ("vllm:num_preemptions_total", "vllm:num_preemptions")),
    "prefix_cache_queries": Known(
        "counter", "tokens", "prompt tokens looked up in the prefix cache",
        ("vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries")),
    "prefix_cache_hits": Known(
        "counter", "tokens", "prompt tokens found in the prefix cache",
        ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits")),
    "prompt_tokens": Known(
        "counter", "tokens", "prompt tokens the server processed",
        ("vllm:prompt_tokens_total", "sglang:prompt_tokens_total", "tgi_request_input_length_sum",
         "litellm_input_tokens_metric_total")),
    "generation_tokens": Known(
        "counter", "tokens", "output tokens the server generated",
        ("vllm:generation_tokens_total", "sglang:generation_tokens_total",
         "tgi_request_generated_tokens_sum", "litellm_output_tokens_metric_total")),
}


# No reading of a known series is larger: 10^15 tokens is 300 years of 10^5 tok/s. A hostile or
# broken endpoint's 1e308 is finite, but a sum or a difference of two is not (the summary held
# Infinity, which JSON cannot, and the report's chart scale crashed on it).
MAX_READING = 1e15


class NotMetrics(ValueError):
    """The answer is not the Prometheus text format (an HTML page, JSON, garbage)."""


def parse(text: str) -> dict[str, float]:
    """Every sample of a Prometheus (or OpenMetrics-compatible) text exposition, keyed
    `name{label="value",...}` (labels sorted; no braces without labels). NaN and infinite values
    are left out (JSON cannot hold them). Raises NotMetrics when the text does not parse or holds
    no sample at all (a page that is not metrics parses as nothing)."""
    samples: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if math.isfinite(sample.value):
                    samples[sample_key(sample.name, sample.labels)] = float(sample.value)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise NotMetrics(f"not Prometheus text format ({_short(exc)})") from None
    if not samples:
        raise NotMetrics("no metric samples in the answer")
    return samples


def sample_key(name: str, labels: Mapping[str, str]) -> str:
    """`name{a="x",b="y"}` with the labels sorted and escaped as in the text format."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def known_values(samples: Mapping[str, float]) -> dict[str, float]:
    """runner's name -> value for each known series present in `samples`: the first engine
    name (in KNOWN's order) that has any sample, its label sets combined. A reading beyond
    ±MAX_READING is left out, as NaN is."""
    by_name: dict[str, list[float]] = {}
    for key, value in samples.items():
        if not abs(value) <= MAX_READING:
            continue
        by_name.setdefault(key.split("{", 1)[0], []).append(value)
    found: dict[str, float] = {}
    for name, known in KNOWN.items():
        values = next((by_name[s] for s in known.samples if s in by_name), None)
        if values is not None:
            found[name] = max(values) if known.combine == "max" else sum(values)
    return found
