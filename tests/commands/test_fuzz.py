"""The property: any document that `runner validate` accepts, `runner plan` runs without exit 70
(and `apply` too, on a few cases against the simulator with tiny loads).

Valid plans and configs are mutated with a fixed seed: random values of random types at random
places, hostile strings (NUL, control characters, huge numbers, unicode, path traversal, empty,
very long), keys removed, added or copied. Each case runs in-process through `main`; its exit code
must be one the README documents for the command, never 70, and stderr never holds a traceback.
A failure names the case, so `mutated(N)` rebuilds it."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply_helpers import simulator
from cli_helpers import FALLBACK_MODELS, run_cli

SEED = 20261130
PLAN_CASES, APPLY_CASES, LOCK_CASES, CHUNK = 600, 12, 30, 50
EXITS = {"validate": {0, 2}, "plan": {0, 2, 3}, "apply": {0, 1, 2, 3, 4, 5}}

PLAN: dict[str, Any] = yaml.safe_load("""\
version: 1
name: fuzzed
description: seed
inventory: {server: local, fallback: true, include_wildcard_expansions: false}
vars: {mt: 8, who: world}
defaults:
  tags: [nightly]
  workload:
    endpoint: chat
    synthetic: {input_tokens: 16, input_tokens_stddev: 2, calibrate: auto,
                prefix: {count: 2, tokens: 8}}
    max_tokens: "{{ mt }}"
    temperature: 0.5
    seed: 7
    prompt_reuse: across_jobs
    extra_body: {ignore_eos: true}
  load: {requests: 4, warmup_requests: 1, request_timeout_s: 5, stall_timeout_s: 4,
         job_timeout_s: 20}
  slo: {error_rate: 0.5}
  retries: 0
benchmarks:
  - name: latency
    models: "Qwen/*, !*-FP8"
    tags: [latency]
    matrix:
      concurrency: [1, 2]
      input_tokens: [8, 16]
      exclude: [{concurrency: 2, input_tokens: 16}]
      include: [{concurrency: 1, max_tokens: 4}]
    slo: {ttft_ms: {p95: 1000}, tpot_ms: {p50: 50}, ttfo_ms: {p95: 2000}}
  - name: open
    models: ["@coder", "llama3.1:8b"]
    on_empty: skip
    workload: {template: "Say {{ who }} {{ i }}",
               session: {turns: 2, think_time_s: 0.01, user_tokens: 4}}
    load: {rate: 50, arrival: constant, max_concurrency: 4, requests: 3}
    max_error_rate: 0.5
  - name: replay
    models: "llama3.1:8b"
    workload: {trace: trace.jsonl, trace_format: runner, max_tokens: 4}
    load: {replay: {speed: 4}, max_concurrency: 2, requests: 3}
  - name: embed
    models: ["Qwen/Qwen3-8B"]
    on_empty: skip
    workload: {endpoint: embeddings, embeddings: {batch_size: 2}}
  - name: resp
    models: "Qwen/Qwen3-8B"
    on_empty: skip
    workload: {endpoint: responses, stream: false}
    load: {requests: 2}
""")
TRACE = ('{"timestamp_ms": 100, "input_tokens": 8, "output_tokens": 2}\n'
         '{"timestamp_ms": 120, "prompt": "hello"}\n{"timestamp_ms": 180, "input_tokens": 4}\n')
SERVERS: dict[str, Any] = {
    "default": "local",
    "servers": {
        "local": {"url": "http://127.0.0.1:9", "api_key_env": "FUZZ_KEY", "timeout_s": 5,
                  "metrics_url": "http://127.0.0.1:9/metrics", "scrape_interval_s": 0.5,
                  "gateway": {"retries": False, "fallbacks": True}},
        "sim": {"kind": "mock", "models": ["Qwen/Qwen3-8B"], "ttft_ms": 1, "itl_ms": 1,
                "reasoning_tokens": 2, "tokens_per_word": 1.3},
    },
}
MODELS: dict[str, Any] = yaml.safe_load(FALLBACK_MODELS)

STRINGS: list[Any] = [
    "", " ", "\x00", "a\x00b", "\x1b[2J\x1b]0;title\x07", "a\nb", "\r", "\t", "..", ".", "/",
    "../../x", "/etc/passwd", "x" * 5000, "🙂", "é", "\u202e", "\ufeff", "NaN", "inf", "-1",
    "1e999", "index.sqlite", "latest", "con", "--help", "-x", "a,b", "*", "!*", "&all", "@nope",
    "~(a+)+$", "~[", "{{ mt }}", "{{ nope }}", "{% for x in y %}", "{{ 'a' * 3 }}", "Qwen/*",
    "http://[::1", "http://999.999.999.999/", "http://127.0.0.1:9/v1", "ftp://x", "all",
]
NUMBERS: list[Any] = [0, 1, -1, 2, 7, 100, 10**7, 10**8, 86400, 604800, 10**30, -(10**30), 2**63,
                      0.5, -0.0, 0.001, 1e308, -1e308, 5e-324, 1e-300, 1000000.5]
OTHERS: list[Any] = [True, False, None, [], {}, [1, "a"], {"a": 1}, {"api_key": "sk-x"}, [[[]]],
                     {"model": "m"}]
HOSTILE = STRINGS + NUMBERS + OTHERS
# Values that pass a schema at a key of that name, and that runner went on to fail on.
NEAR: dict[str, list[Any]] = {
    "url": ["http://[::1", "http://999.999.999.999/", "http://127.0.0.1:99999", "http://h/\x00",
            "http://h?x=1", "http://127.0.0.1:9/v1/", "http://:80", "http://h:0",
            "http://h/v1/chat/completions", "http://a..b/", "http://01.2.3.4/"],
    "name": ["index.sqlite", "INDEX.sqlite-wal", "latest", "con", "a.", "x" * 64, "x" * 65,
             "a..b", "Previous"],
    "models": ["--help", "-x", "a,b", "m\x00", "~(a+)+$", "!all", "&x", "@coder", "~.*",
               "mode=embedding", "!mode=chat", "colour=red"],
    "extra_body": [{"api_key": "sk-x"}, {"model": "x"}, {"stream": False}, {"n": 2},
                   {"stream_options": None}, {"messages": []}, {"X-Api-Key": "x"}, {},
                   {"disable_fallbacks": "no"}],
    "gateway": [{"retries": True}, {"fallbacks": "yes"}, {"nope": True}, {}, None],
    "id": ["--help", "a,b", "\x1b[2J", "x" * 300, "../../x", "Qwen/Qwen3-8B"],
    "dataset": ["nope.jsonl", "..", "/", "a\x00b", "../plan.yaml"],
    "template": ["{{ i / 0 }}", "{{ nope }}", "{% for %}", "{{ i }}", "{{ who * 3 }}"],
    "rate": [0.001, 1e6, 0.0011, 1000000.5],
    "prompt_reuse": ["none", "across_runs", "always", "ALWAYS", ""],
    "calibrate": ["auto", "off", "AUTO", ""], "tokens_per_word": [1e-9, 0.001, 100, 101],
    "tokenizer": ["nope.json", "..", "/", "a\x00b", "plan.yaml", "configs/servers.yaml"],
    "tokenize": [False, True, "no"],
    "stall_timeout_s": [0.001, 3600, 1e-9, 86400], "scrape_interval_s": [0.05, 60, 1e-9],
    "metrics_url": [False, True, "http://[::1", "file:///etc/passwd", "http://h/\x00",
                    "http://127.0.0.1:9/metrics?x=1"],
    "burstiness": [0.01, 1000, 0.5], "max_streams": [1, 100000],
    "prefix_cache_blocks": [0, 1, 10**7, 10**7 + 1, -1],
    "arrival": ["gamma", "constant", "poisson"],
    "ramp_up": [{"duration_s": 1e-9}, {"duration_s": 604800, "shape": "exponential"},
                {"duration_s": 1, "start": 0.001, "shape": "exponential"},
                {"duration_s": 1, "start": 1e6}],
    "early_stop": [{"min_requests": 1, "error_rate": 0}, {"error_rate": False,
                                                           "saturation": False}, {}],
    "duration_s": [604800, 1e-9, 604801],
    "ttft_ms": [0, 600000, 600001], "itl_ms": [0, 60000], "output_tokens": [1, 10**7],
    "api_key_env": ["A" * 300, "_", "PATH"],
    "server": ["sim", "local", "nope"], "default": ["sim", "nope"],
    "tags": ["always", "never", "all"], "timeout_s": [600, 1e-9, 601],
    "vars": [{"api_key": "x"}, {"mt": "\x00"}, {"mt": 10**30}],
    "search": [{"over": "concurrency", "from": 1, "to": 2, "max_jobs": 2},
               {"over": "rate", "from": 50, "to": 100, "precision": 1},
               {"over": "concurrency", "from": 1.5, "to": 3}, {"over": "rate", "from": 2, "to": 1}],
    "sweep": [{"rates": 1, "concurrency": 2}, {"rates": 0}, {"rates": 51}],
    "repeat": [1, 2, 3, 0, 101], "repeat_pause_s": [0, 0.001, 0.01, 3601, -1],
    "session": [{"turns": 2}, {"turns": 1000, "think_time_s": 3600}, {"turns": 1},
                {"turns": 3, "user_tokens": 1000000}, {"turns": 2, "think_time_s": 0}, {}],
    "reasoning_tokens": [0, 10**7, 10**7 + 1, -1], "ttfo_ms": [{"p95": 1e-9}, {"max": 1e308}],
    "trace": ["trace.jsonl", "nope.jsonl", "..", "/", "plan.yaml", "configs/servers.yaml",
              "a\x00b"],
    "trace_format": ["runner", "mooncake", "csv", ""],
    "replay": [{"speed": 1e6}, {"speed": 0.001}, {}, {"speed": 0}, {"speed": -1}, None],
    "endpoint": ["embeddings", "responses", "chat", "completions", "embedding"],
    "batch_size": [1, 2, 2048, 0, 2049], "embeddings": [{"batch_size": 2}, {}, {"size": 1}],
    "prefix": [{"count": 1, "tokens": 1}, {"count": 3, "tokens": 5, "pick": "random"},
               {"count": 2, "tokens": 4, "prime": False}, {"count": 100000, "tokens": 10**7},
               {"count": 0, "tokens": 1}, {"count": 1, "tokens": 2, "pick": "first"}],
    "pick": ["round_robin", "random", "RANDOM"], "prime": [True, False, "yes"],
}
KEYS = ["name", "models", "workload", "load", "matrix", "slo", "tags", "dataset", "template",
        "rate", "concurrency", "requests", "duration_s", "extra_body", "include", "exclude",
        "url", "kind", "api_key_env", "id", "servers", "groups", "p95", "model", "stream",
        "gateway", "burstiness", "ramp_up", "early_stop", "max_streams",
        "search", "sweep", "repeat", "repeat_pause_s", "session", "ttfo_ms", "reasoning_tokens",
        "calibrate", "tokenizer", "tokens_per_word", "tokenize", "trace",
        "trace_format", "replay", "endpoint", "batch_size",
        "embeddings", "prefix", "pick", "prime", "prefix_cache_blocks"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, (*path, key))


def _value(rng: random.Random, doc: Any, old: Any, key: Any = None) -> Any:
    """Often a value that passes a schema at `key` but was trouble once; else mostly a hostile
    value of the old one's type (the kind that passes a schema), else any."""
    draw = rng.random()
    if key in NEAR and draw < 0.4:
        return copy.deepcopy(rng.choice(NEAR[key]))
    if draw < 0.15:  # a value from elsewhere in the same document
        return copy.deepcopy(_at(doc, rng.choice(list(_paths(doc)))))
    if draw < 0.75 and isinstance(old, str):
        return rng.choice(STRINGS)
    if draw < 0.75 and isinstance(old, int | float) and not isinstance(old, bool):
        return rng.choice(NUMBERS)
    if draw < 0.75 and isinstance(old, list) and old:
        return [_value(rng, doc, item, key) for item in old[:rng.randint(1, len(old))]]
    return copy.deepcopy(rng.choice(HOSTILE))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _mutate(doc: Any, rng: random.Random) -> None:
    """One random change somewhere in `doc` (never at its root)."""
    paths = [p for p in _paths(doc) if p]
    names = [next((part for part in reversed(p) if isinstance(part, str)), None) for p in paths]
    [(path, name)] = rng.choices(list(zip(paths, names, strict=True)),
                                 [4 if name in NEAR else 1 for name in names])
    parent, key = _at(doc, path[:-1]), path[-1]
    action = rng.random()
    if action < 0.65:
        parent[key] = _value(rng, doc, parent[key], name)
    elif action < 0.75 and isinstance(parent, dict):
        del parent[key]
    elif action < 0.88 and isinstance(parent, dict):
        new = rng.choice([*KEYS, str(rng.choice(HOSTILE))])
        parent[new] = _value(rng, doc, None, new)
    elif isinstance(parent, list):
        parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(parent[key]))
    else:
        parent[key] = copy.deepcopy(rng.choice(HOSTILE))


@dataclass
class Case:
    """One mutated project: which file was changed, the three documents and any -e option."""

    target: str
    plan: dict[str, Any]
    servers: dict[str, Any]
    models: dict[str, Any]
    extra: list[str]

    def write(self, folder: Path) -> Path:
        (folder / "configs").mkdir(parents=True, exist_ok=True)
        for name, data in (("servers.yaml", self.servers), ("models.yaml", self.models)):
            (folder / "configs" / name).write_text(yaml.safe_dump(data, allow_unicode=True))
        plan = folder / "plan.yaml"
        plan.write_text(yaml.safe_dump(self.plan, allow_unicode=True, sort_keys=False))
        (folder / "trace.jsonl").write_text(TRACE)
        return plan


def seed_case(url: str) -> Case:
    """The valid documents every case starts from, with server `local` at `url`."""
    servers = copy.deepcopy(SERVERS)
    servers["servers"]["local"]["url"] = url
    return Case("plan", copy.deepcopy(PLAN), servers, copy.deepcopy(MODELS), [])


def mutated(number: int, url: str, plan_only: bool = False) -> Case:
    """Case `number` of the fixed sequence: one document changed one to three times."""
    rng = random.Random(SEED * 1000 + number)
    case = seed_case(url)
    case.target = "plan" if plan_only else rng.choices(["plan", "servers", "models"],
                                                       [6, 2, 2])[0]
    for _ in range(rng.choice([1, 1, 2, 3])):
        _mutate(getattr(case, case.target), rng)
    if rng.random() < 0.1:
        case.extra = ["-e", f"mt={rng.choice(HOSTILE)}"]
    return case


def check(capsys: pytest.CaptureFixture[str], number: int, *argv: str) -> int:
    code, _, err = run_cli(capsys, *argv)
    assert code in EXITS[argv[0]] and "Traceback" not in err, (
        f"case {number}: `runner {' '.join(argv)}` exited {code}: {err[-2000:]}")
    return code


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    """A simulator serving some of the fallback file's models: the live inventory of `local`."""
    with simulator("--models", "Qwen/Qwen3-8B,llama3.1:8b,Qwen/Qwen3-Coder-30B-A3B-Instruct",
                   "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        yield url


@pytest.mark.parametrize("start", range(0, PLAN_CASES, CHUNK))
def test_what_validate_accepts_plan_runs(
    start: int, sim_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`local` is the simulator: a live inventory through servers.yaml's URL. Now and then the
    plan runs on `sim`, the embedded simulator that runner starts from servers.yaml."""
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    for number in range(start, start + CHUNK):
        case = mutated(number, sim_url)
        folder = tmp_path / str(number)
        plan = case.write(folder)
        configs = str(folder / "configs")
        files = [str(plan), f"{configs}/servers.yaml", f"{configs}/models.yaml"]
        if check(capsys, number, "validate", *files, *case.extra) != 0:
            continue
        server = ["--server", "sim"] if case.target == "servers" and number % 3 == 0 else []
        check(capsys, number, "plan", str(plan), *server, *case.extra)


def test_what_validate_accepts_apply_runs_against_the_simulator(
    sim_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Plans only, and only those whose jobs are tiny."""
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    ran = 0
    for number in range(10_000, 10_000 + 50 * APPLY_CASES):
        case = mutated(number, sim_url, plan_only=True)
        folder = tmp_path / str(number)
        plan = case.write(folder)
        if check(capsys, number, "validate", str(plan), *case.extra) != 0 or not _tiny(plan):
            continue
        check(capsys, number, "apply", str(plan), "--results", str(folder / "results"),
              *case.extra)
        ran += 1
        if ran == APPLY_CASES:
            break
    assert ran == APPLY_CASES  # enough mutated plans stayed valid and tiny to run


def _tiny(plan: Path) -> bool:
    """At most 10 jobs of at most 10 short requests each, sent at 1/s or faster (a replay at
    speed 1 or more)."""
    from runner.plan.expand import expand_matrix
    from runner.plan.planfile import complete_params, load_plan

    loaded = load_plan(str(plan))
    return _tiny_jobs([complete_params(b.params, p) for b in loaded.benchmarks
                       for p in expand_matrix(b.matrix)])


def _tiny_jobs(jobs: list[dict[str, Any]]) -> bool:
    return len(jobs) <= 10 and all(
        j.get("requests", 10**9) * _session(j).get("turns", 1) + j.get("warmup_requests", 0) <= 10
        and _session(j).get("think_time_s", 0) <= 1 and _session(j).get("user_tokens", 0) <= 4096
        and j.get("max_tokens", 0 if j.get("endpoint") == "embeddings" else 256) <= 64
        and j.get("input_tokens", 0) * j.get("batch_size", 1) <= 4096
        and j.get("input_tokens_stddev", 0) <= 100 and j.get("rate", 1) >= 1
        and float((j.get("replay") or {}).get("speed", 1)) >= 1
        and (j.get("prefix") or {}).get("count", 0) <= 4
        and (j.get("prefix") or {}).get("tokens", 0) <= 4096
        for j in jobs)


def _session(job: dict[str, Any]) -> dict[str, Any]:
    session = job.get("session")
    return session if isinstance(session, dict) else {}


def test_what_validate_accepts_in_a_lock_apply_runs(
    sim_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A lock made from the seed plan, mutated as plans are; tiny accepted ones are applied."""
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    plan = seed_case(sim_url).write(tmp_path)
    made = tmp_path / "made.json"
    assert check(capsys, -1, "plan", str(plan), "--out", str(made)) == 0
    applied = 0
    for number in range(20_000, 20_000 + LOCK_CASES):
        data = json.loads(made.read_text())
        rng = random.Random(SEED * 1000 + number)
        for _ in range(rng.choice([1, 1, 2])):
            _mutate(data, rng)
        lock = tmp_path / f"{number}.json"
        lock.write_text(json.dumps(data, indent=1))
        if check(capsys, number, "validate", str(lock)) != 0:
            continue
        if _tiny_jobs([job["params"] for job in json.loads(lock.read_text())["jobs"]]):
            check(capsys, number, "apply", str(lock), "--results", str(tmp_path / "results"))
            applied += 1
    assert applied >= 5, applied  # enough mutated locks stayed valid and tiny to run


# --- what the property found, each a named regression -----------------------------------------


@pytest.mark.parametrize("retries", ["1.0", "-0.0"])
def test_a_whole_float_where_an_integer_goes_runs(
    retries: str, sim_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`retries: -0.0` is a valid JSON Schema integer: apply exited 70 (range() refuses floats)."""
    case = seed_case(sim_url)
    case.plan = yaml.safe_load(
        "version: 1\nname: whole\nbenchmarks:\n  - name: b\n    models: Qwen/Qwen3-8B\n"
        f"    retries: {retries}\n    workload: {{max_tokens: 2.0}}\n"
        "    load: {requests: 2.0, concurrency: 1.0}\n")
    plan = case.write(tmp_path)
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"))
    assert code == 0, out + err


def test_a_blank_simulated_model_is_refused_by_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A `kind: mock` model " " passed validate, then the simulator refused it: plan exited 70."""
    case = seed_case("http://127.0.0.1:9")
    case.servers["servers"]["sim"]["models"] = [" "]
    plan = case.write(tmp_path)
    code, out, _ = run_cli(capsys, "validate", str(tmp_path / "configs" / "servers.yaml"))
    assert code == 2 and "surrounding spaces" in out
    code, _, err = run_cli(capsys, "plan", str(plan), "--server", "sim")
    assert code == 2 and "surrounding spaces" in err
