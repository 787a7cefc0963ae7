"""The files `runner init` starts a project with: servers, the fallback models, an example plan.

Pure: the texts depend only on the proxy's settings and the models it served (when known), so
running init again with the same answers writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner import defaults
from runner.inventory.listing import Model
from runner.plan import newplan

SERVERS_FILE = "configs/servers.yaml"
MODELS_FILE = "configs/models.yaml"
EXAMPLE_PLAN = "plans/example.yaml"
SCHEMAS_DIR = "schemas"
DEMO_SERVER = "demo"
TEXT_FILES = (SERVERS_FILE, MODELS_FILE, EXAMPLE_PLAN)
Notes = dict[tuple[str, ...], str]

_DEMO: dict[str, Any] = {
    "kind": "mock", "models": ["Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct"],
    "ttft_ms": 40, "itl_ms": 4, "output_tokens": 64,
}
_GROUPS = {"quantized": ["*-FP8", "*-AWQ", "*-GPTQ*"]}
_EXAMPLE = {"concurrency": [1, 2], "max_tokens": 32, "input_tokens": 64, "requests": 6}
_METADATA = ("mode", "max_input_tokens", "max_output_tokens")


@dataclass(frozen=True)
class Proxy:
    """The LiteLLM proxy a project starts with."""

    name: str = defaults.INIT_SERVER
    url: str = defaults.INIT_URL
    api_key_env: str = defaults.INIT_API_KEY_ENV


def starter_files(proxy: Proxy, models: Sequence[Model] | None) -> dict[str, str]:
    """Path (relative to the project, '/'-separated) -> text, for every YAML file init writes.
    `models`: what the proxy serves now, or None when that is not known."""
    return {SERVERS_FILE: servers_yaml(proxy), MODELS_FILE: models_yaml(proxy, models),
            EXAMPLE_PLAN: example_plan(proxy)}


def _ref(path: str, schema: str) -> str:
    return newplan.schema_ref(path.rsplit("/", 1)[0], f"{SCHEMAS_DIR}/{schema}.schema.json")


def servers_yaml(proxy: Proxy) -> str:
    """configs/servers.yaml: the proxy (the default server) and the `demo` simulator."""
    data = {"default": proxy.name,
            "servers": {proxy.name: {"url": proxy.url, "api_key_env": proxy.api_key_env},
                        DEMO_SERVER: _DEMO}}
    notes: Notes = {
        ("default",): "used when neither --server, $RUNNER_SERVER nor a plan names one",
        ("servers", proxy.name): "your LiteLLM proxy",
        ("servers", proxy.name, "api_key_env"): "the NAME of the variable holding the key",
        ("servers", DEMO_SERVER): "the built-in simulator: runner starts it on a free port",
    }
    header = ["Named endpoints. Keys never live here: api_key_env names the environment "
              "variable that holds one."]
    return newplan.render_yaml(data, _ref(SERVERS_FILE, "servers"), header, notes)


def models_yaml(proxy: Proxy, models: Sequence[Model] | None) -> str:
    """configs/models.yaml: groups, and the proxy's models when known (else a commented
    example of an entry)."""
    header = ["The fallback inventory: the models runner uses, with a WARNING, when a server is",
              "unreachable; and named groups of model patterns for plans (`models: \"@name\"`)."]
    data: dict[str, Any] = {"groups": _GROUPS}
    if models:
        header.append(f"The models are those server '{proxy.name}' ({proxy.url}) served when "
                      "`runner init` asked it.")
        data["models"] = [_entry(m, proxy.name) for m in models]
    else:
        header += ["List the models of your proxy here (`runner inventory` shows them), e.g.:",
                   "models:", "  - id: Qwen/Qwen3-8B",
                   f"    servers: [{proxy.name}]     # optional; default: every server",
                   "    mode: chat",
                   "    max_input_tokens: 32768", "    max_output_tokens: 8192"]
    notes: Notes = {("groups",): "members are patterns, so groups work on the live inventory too"}
    return newplan.render_yaml(data, _ref(MODELS_FILE, "models"), header, notes)


def _entry(model: Model, server: str) -> dict[str, Any]:
    known = {key: value for key, value in model.to_json().items()
             if key in _METADATA and _usable(value)}
    return {"id": model.id, "servers": [server], **known}


def _usable(value: Any) -> bool:
    """Metadata the models schema accepts: a mode name, or a token limit of at least 1."""
    return bool(value) if isinstance(value, str) else isinstance(value, int) and value >= 1


def example_plan(proxy: Proxy) -> str:
    """plans/example.yaml: a short closed-loop latency benchmark of every model."""
    bench = newplan.PRESETS["latency"].benchmark(("all",), _EXAMPLE)
    plan = {"version": 1, "name": "example",
            "description": "A first look: latency of every model at concurrency 1 and 2.",
            "benchmarks": [bench]}
    header = [f"Runs on the default server of {SERVERS_FILE} ('{proxy.name}');",
              f"`--server {DEMO_SERVER}` runs it on the built-in simulator instead.",
              "`runner plan plans/example.yaml` shows the models and jobs without running them."]
    notes: Notes = {("benchmarks", "models"): "every model the server serves: narrow it, "
                                              'e.g. "Qwen/*"'}
    return newplan.render_plan(plan, _ref(EXAMPLE_PLAN, "plan"), header, notes)


def non_chat(models: Sequence[Model]) -> list[str]:
    """The ids of models the proxy says are not chat models (embeddings, images, ...)."""
    return [m.id for m in models if m.mode is not None and m.mode != "chat"]

