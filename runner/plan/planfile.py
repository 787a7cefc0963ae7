"""Loading a plan: YAML with positions -> templates rendered -> schema-valid -> typed records."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner import defaults
from runner.errors import InputError, Location, Problem
from runner.inputfile import input_problem, read_input
from runner.plan.endpointrules import (
    GENERATION_ONLY,
    embeddings_slo,
    endpoint_problem,
    for_endpoint,
    generation_place_problems,
    slo_place_problems,
)
from runner.plan.openloop import open_loop_problems
from runner.plan.replayplan import replay_problems
from runner.plan.rules import (
    LOAD_MODES,
    PROMPT_SOURCES,
    SECRETS,
    document_problems,
    modified,
    replay_unpaired,
)
from runner.plan.searchplan import search_params, search_problems
from runner.plan.servers import server_choice_problems, server_names, server_places
from runner.plan.sessions import session_place_problems, session_problem
from runner.plan.templating import render_document
from runner.safenames import is_secret_key
from runner.schema import validate, whole_numbers_as_int
from runner.yamlfile import Document, Path, load_text, plain_scalar

_NESTED = ("workload", "load", "slo")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of a plan, with the plan's defaults already applied."""

    name: str
    index: int
    models: str | tuple[str, ...]
    description: str = ""
    tags: tuple[str, ...] = ()
    on_empty: str = defaults.BENCHMARK["on_empty"]
    params: Mapping[str, Any] = field(default_factory=dict)  # flat, before the matrix
    matrix: Mapping[str, Any] | None = None
    slo: Mapping[str, Any] = field(default_factory=dict)
    retries: int = defaults.BENCHMARK["retries"]
    max_error_rate: float = defaults.BENCHMARK["max_error_rate"]
    # "name", "models", "matrix", "workload", "servers" (its `server:` or `servers:`)
    where: Mapping[str, Location] = field(default_factory=dict)
    servers: tuple[str, ...] | None = None  # its own `server:`/`servers:`; None: the plan's


@dataclass(frozen=True)
class Plan:
    """A loaded, rendered and validated plan."""

    path: str
    sha256: str
    name: str
    description: str
    server: str | None
    fallback: bool
    gate: bool
    variables: Mapping[str, Any]
    benchmarks: tuple[Benchmark, ...]
    where: Mapping[str, Location] = field(default_factory=dict)  # "server", "servers"
    # `inventory.include_wildcard_expansions`: may `all`, globs and regexes select them?
    include_wildcard_expansions: bool = False
    servers: tuple[str, ...] | None = None  # `inventory.servers` (never with `server`)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256, "gate": self.gate}


def parse_extra_vars(items: list[str]) -> dict[str, Any]:
    """`-e KEY=VALUE` pairs, VALUE read as a YAML 1.2 scalar (`mt=64` is the integer 64, so
    `{{ mt * 2 }}` is 128); a malformed pair is a usage error."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise InputError(f"-e {item!r}: expected KEY=VALUE with KEY a variable name")
        if is_secret_key(key):  # the value would be stored in plan locks
            raise InputError(f"-e {key}=...: {key} is named like a credential; {SECRETS}")
        out[key] = plain_scalar(value)
    return out


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_plan(path: str, extra_vars: Mapping[str, str] | None = None) -> Plan:
    """Read, render, validate and type a plan; every problem is reported at once."""
    raw = _read(path)
    doc = load_text(_decode(raw, path), path)
    if not isinstance(doc.data, dict):
        raise InputError("a plan must be a mapping with version, name and benchmarks",
                         Location(path, 1, 1, "$"))
    variables = {**_plan_vars(doc), **(extra_vars or {})}
    problems = render_document(doc, variables, "plan", _is_runtime_template)
    failed = {p.where.path for p in problems}  # a failed template is not also a type error
    checks = validate(doc, "plan") + _check_names(doc) + _check_datasets(doc, path)
    checks += search_problems(doc, _merged(doc.data)) + open_loop_problems(doc, _merged(doc.data))
    checks += session_place_problems(doc, _merged(doc.data))
    checks += generation_place_problems(doc, _merged(doc.data))
    checks += slo_place_problems(doc, _merged(doc.data))
    checks += replay_problems(doc, _merged(doc.data), path) + server_choice_problems(doc)
    flagged = {p.where.path for p in checks}  # one problem per place: the schema's first
    checks += [p for p in document_problems(doc, ("name",)) if p.where.path not in flagged]
    problems += [p for p in checks if p.where.path not in failed]
    if problems:
        raise InputError.many(sorted(problems, key=_order))
    whole_numbers_as_int(doc, "plan")
    return _build(doc, path, file_sha256(raw), variables)


def _read(path: str) -> bytes:
    try:
        return read_input(path, "a plan", defaults.MAX_DOCUMENT_BYTES)
    except FileNotFoundError:
        raise InputError(f"{path}: plan file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the plan: {exc.strerror}") from None


def _decode(raw: bytes, path: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _plan_vars(doc: Document) -> dict[str, Any]:
    found = doc.data.get("vars")
    return dict(found) if isinstance(found, dict) else {}


def _order(problem: Problem) -> tuple[int, int]:
    return (problem.where.line or 0, problem.where.col or 0)


def _is_runtime_template(path: Path) -> bool:
    """`vars` are data, and prompt templates are rendered per request at run time."""
    return path[:1] == ("vars",) or _holds_param(path, "template")


def _holds_param(path: Path, name: str) -> bool:
    """Whether `path` holds job parameter `name`: in a workload, a matrix list or entry."""
    tail = tuple(None if isinstance(part, int) else part for part in path[-4:])
    return tail[-2:] == ("workload", name) or tail[-3:] == ("matrix", name, None) or (
        tail in (("matrix", "include", None, name), ("matrix", "exclude", None, name))
    )


def _walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _walk(child, (*path, i))


def _check_names(doc: Document) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    benchmarks = doc.data.get("benchmarks")
    for i, bench in enumerate(benchmarks if isinstance(benchmarks, list) else []):
        name = bench.get("name") if isinstance(bench, dict) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            first = doc.where(("benchmarks", seen[name], "name")).line
            msg = f"duplicate benchmark name '{name}' (first used on line {first})"
            problems.append(Problem(msg, doc.where(("benchmarks", i, "name"))))
        seen.setdefault(name, i)
    return problems


def _check_datasets(doc: Document, plan_path: str) -> list[Problem]:
    """Dataset files exist, relative to the plan file."""
    problems = []
    for path, value in _walk(doc.data):
        if path[:1] == ("vars",) or not _holds_param(path, "dataset"):
            continue
        if not isinstance(value, str) or not value:
            continue
        full = os.path.join(os.path.dirname(plan_path), value)
        try:
            problem = input_problem(full, f"the dataset {full}", defaults.MAX_DATASET_BYTES)
        except OSError:
            problem = f"dataset file not found: {full}"
        if problem is not None:
            problems.append(Problem(problem, doc.where(path)))
    return problems


def _build(doc: Document, path: str, sha256: str, variables: Mapping[str, Any]) -> Plan:
    data = doc.data
    inventory = data.get("inventory", {})
    base = data.get("defaults", {})
    specs = [merge_defaults(base, bench) for bench in data["benchmarks"]]
    benchmarks = tuple(_benchmark(doc, i, spec) for i, spec in enumerate(specs))
    return Plan(
        path=path,
        sha256=sha256,
        name=data["name"],
        description=data.get("description", ""),
        server=inventory.get("server"),
        fallback=inventory.get("fallback", defaults.PLAN["fallback"]),
        gate=data.get("gate", defaults.PLAN["gate"]),
        variables=dict(variables),
        benchmarks=benchmarks,
        where={"server": doc.where(("inventory", "server")),
               **server_places(doc, ("inventory",), inventory)},
        include_wildcard_expansions=inventory.get(
            "include_wildcard_expansions", defaults.PLAN["include_wildcard_expansions"]),
        servers=server_names(inventory, single=False),
    )


def _benchmark(doc: Document, index: int, spec: dict[str, Any]) -> Benchmark:
    at = ("benchmarks", index)
    return Benchmark(
        name=spec["name"],
        index=index,
        models=spec["models"] if isinstance(spec["models"], str) else tuple(spec["models"]),
        description=spec.get("description", ""),
        tags=tuple(spec.get("tags", ())),
        on_empty=spec.get("on_empty", defaults.BENCHMARK["on_empty"]),
        params=search_params(flatten(spec.get("workload", {}), spec.get("load", {}))),
        matrix=spec.get("matrix"),
        slo=embeddings_slo(spec),
        retries=spec.get("retries", defaults.BENCHMARK["retries"]),
        max_error_rate=spec.get("max_error_rate", defaults.BENCHMARK["max_error_rate"]),
        where={**{key: doc.where((*at, key)) for key in ("name", "models", "matrix", "workload")},
               **server_places(doc, at, spec)},
        servers=server_names(spec, single=True),
    )


def _merged(data: Any) -> list[Any]:
    """The benchmarks merged over the defaults, where their sections are mappings (else as they
    are: the schema reports them)."""
    base = data.get("defaults")
    benchmarks = data.get("benchmarks")
    return [merge_defaults(base, b) if _mergeable(base, b) else b
            for b in (benchmarks if isinstance(benchmarks, list) else [])]


def _mergeable(base: Any, bench: Any) -> bool:
    return isinstance(base, dict) and isinstance(bench, dict) and all(
        isinstance(base[s], dict) and isinstance(bench[s], dict)
        for s in _NESTED if s in base and s in bench)


def merge_defaults(base: Mapping[str, Any], bench: Mapping[str, Any]) -> dict[str, Any]:
    """A benchmark over the plan's defaults: nested sections merge key by key, the
    benchmark's prompt source and load mode replace the defaults' ones."""
    merged = {**base, **bench}
    for section in _NESTED:
        if section in base and section in bench:
            merged[section] = _merge_section(base[section], bench[section])
    return merged


def _merge_section(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    kept = dict(base)
    for trigger, rivals in _RIVALS:
        if any(key in own for key in trigger):
            for key in rivals:
                kept.pop(key, None)
    return {**kept, **own}


_RIVALS = (
    (("synthetic", "dataset", "template"),
     ("synthetic", "dataset", "template", "trace", "trace_format")),
    (("trace",), ("synthetic", "dataset", "template")),
    (("concurrency",), ("rate", "arrival", "max_concurrency", "burstiness", "replay")),
    (("rate",), ("concurrency", "replay")),
    (("search",), ("concurrency", "rate", "sweep", "replay")),
    (("sweep",), ("concurrency", "rate", "search", "replay")),
    (("concurrency", "rate"), ("search", "sweep")),
    (("replay",), ("concurrency", "rate", "arrival", "burstiness", "ramp_up", "search", "sweep")),
)


def flatten(workload: Mapping[str, Any], load: Mapping[str, Any]) -> dict[str, Any]:
    """The flat parameter namespace that matrix keys and job params use."""
    flat = {k: v for k, v in workload.items() if k not in ("synthetic", "embeddings")}
    flat.update(workload.get("synthetic", {}))
    flat.update(workload.get("embeddings", {}))
    flat.update(load)
    return flat


def complete_params(base: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """Effective job parameters: base overridden by a matrix point, then defaults.

    The first key of a rival group (input_tokens, dataset, template; concurrency, rate) picks
    it and drops the other groups' keys from `base`. Raises ValueError when the point picks
    two rival settings (e.g. concurrency and rate), or sets a key of a group it does not use
    (e.g. arrival in a closed-loop job)."""
    params = dict(base)
    for groups in (PROMPT_SOURCES, LOAD_MODES):
        chosen = [g for g in groups if g[0] in point]
        if len(chosen) > 1:
            names = " and ".join(g[0] for g in chosen)
            raise ValueError(f"a matrix point sets both {names}; choose one")
        for group in groups:
            if chosen and group is not chosen[0]:
                for key in set(group) - set(chosen[0]):
                    params.pop(key, None)
    params.update(point)
    completed = _with_defaults(params)
    _check_modifiers(point, completed)
    if problem := session_problem(completed):
        raise ValueError(problem)
    return completed


def _check_modifiers(point: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    if (problem := endpoint_problem(params)) is not None:
        raise ValueError(problem)
    for group in (*PROMPT_SOURCES, *LOAD_MODES):
        for key in group[1:]:
            if key in point and not modified(key, params):
                raise ValueError(f"a matrix point sets {key}, which needs {group[0]}; "
                                 f"this benchmark's jobs do not use {group[0]}")
    if ("burstiness" in point or "arrival" in point) and "burstiness" in params \
            and params.get("arrival") != "gamma":  # else open_loop_problems says it in place
        raise ValueError("burstiness shapes gamma arrivals only: set arrival: gamma beside it, "
                         "or remove burstiness")
    if (unpaired := replay_unpaired(params)) is not None:
        raise ValueError(_replaced_replay(point, params) or unpaired)


def _replaced_replay(point: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """Why a point's load mode left a trace without its replay: it replaced load.replay."""
    mode = next((k for k in ("concurrency", "rate", "search", "sweep") if k in point), None)
    if mode is None or not params.get("trace") or "replay" in params:
        return None
    return (f"a matrix point sets {mode}, which replaces load.replay, and a trace is sent at "
            f"its own times: remove {mode} from the matrix (vary the replay instead: "
            "replay: [{speed: 1}, {speed: 2}])")


def _with_defaults(params: dict[str, Any]) -> dict[str, Any]:
    if not any(k in params for k in ("input_tokens", "dataset", "template", "trace")):
        params["input_tokens"] = defaults.INPUT_TOKENS
    if not any(k in params for k in ("concurrency", "rate", "replay")):
        params["concurrency"] = defaults.CONCURRENCY
    if not any(k in params for k in ("requests", "duration_s", "replay")):  # replay: its end
        params["requests"] = defaults.REQUESTS
    if "duration_s" in params:
        params.setdefault("duration_grace_s", defaults.duration_grace_s(params["duration_s"]))
    for key, value in defaults.PARAMS.items():
        if _applies(key, params):
            params.setdefault(key, value)
    for_endpoint(params)
    for key in _INTEGER_PARAMS & params.keys():
        if isinstance(params[key], float):  # JSON Schema's integer admits 4.0
            params[key] = int(params[key])
    return {key: params[key] for key in sorted(params, key=_param_rank)}


_INTEGER_PARAMS = frozenset({"batch_size", "input_tokens", "max_tokens", "seed", "concurrency",
                             "max_concurrency", "requests", "warmup_requests"})


def _applies(key: str, params: Mapping[str, Any]) -> bool:
    if key == "input_tokens_stddev":
        return "input_tokens" in params
    if key == "arrival":
        return "rate" in params
    if key == "batch_size" or key in GENERATION_ONLY:
        return (params.get("endpoint") == "embeddings") == (key == "batch_size")
    return True


_ORDER = ("endpoint", "batch_size", "input_tokens", "input_tokens_stddev", "calibrate",
          "tokenizer", "dataset", "template", "trace", "trace_format", "max_tokens", "temperature",
          "seed", "prompt_reuse",
          "stream", "extra_body", "session", "concurrency", "rate", "arrival", "max_concurrency",
          "burstiness", "ramp_up", "replay", "early_stop", "requests", "duration_s",
          "duration_grace_s", "warmup_requests", "request_timeout_s", "stall_timeout_s",
          "job_timeout_s", "repeat", "repeat_pause_s")
_RANK = {key: i for i, key in enumerate(_ORDER)}


def _param_rank(key: str) -> int:
    return _RANK.get(key, len(_ORDER))
