"""What a plan or a lock may not say beyond its schema: a plan name that collides in results/, a
key named like a credential, an `extra_body` key that runner sends itself; and in a lock, jobs
that share an id or a slug, or whose params mix rivals. Plans and locks are checked by these
functions at load time, so `validate` refuses what `apply` could not run or store."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from runner.defaults import SWEEP
from runner.errors import Problem
from runner.plan.endpointrules import lock_slo_problems
from runner.plan.searchplan import search_bounds, streams_problems
from runner.plan.sessions import session_problem
from runner.safenames import is_secret_key, plan_name_problem, slug_problem
from runner.yamlfile import Document, Path

# Rival groups of job params: a job uses one group of each; the keys after the first modify it
# (calibrate sizes a trace's length-only lines too, runner.commands.calibrating).
PROMPT_SOURCES = (("input_tokens", "input_tokens_stddev", "calibrate", "tokenizer",
                   "prefix"), ("dataset",),
                  ("template",), ("trace", "trace_format", "calibrate"))
LOAD_MODES = (("concurrency",), ("rate", "arrival", "max_concurrency", "burstiness"),
              ("replay", "max_concurrency"))
# The request body's keys that runner sets; extra_body would silently override them.
RUNNER_SETS = {
    "model": "it sends each job's model: choose models with `models:`",
    "messages": "it sends the workload's prompt: use workload.dataset or workload.template",
    "prompt": "it sends the workload's prompt: use workload.dataset or workload.template",
    "stream": "use workload.stream",
    "stream_options": "it asks for usage there, and its token counts depend on it",
    "max_tokens": "use workload.max_tokens (bounded, and shown in job ids and reports)",
    "temperature": "use workload.temperature (bounded, and shown in job ids and reports)",
    "seed": "use workload.seed (shown in job ids and reports)",
}
_EXTRA_BODY_HOMES = ("workload", "params")  # a plan's workload, a lock's job params
SECRETS = ("secrets never live in plans or locks: a server's key comes from the environment "
           "variable that its api_key_env names in servers.yaml")


def document_problems(doc: Document, name_path: Path) -> list[Problem]:
    """The plan name at `name_path`, credential-like keys and extra_body keys of a plan or a
    lock, in document order."""
    return name_problems(doc, name_path) + key_problems(doc)


def name_problems(doc: Document, path: Path) -> list[Problem]:
    """A plan name that cannot name results/<name>/ (see safenames.plan_name_problem)."""
    name = _get(doc.data, path)
    problem = plan_name_problem(name) if isinstance(name, str) else None
    return [Problem(f"plan name {json.dumps(name)} {problem}", doc.where(path))] if problem else []


def key_problems(doc: Document) -> list[Problem]:
    """Keys named like credentials anywhere, and extra_body keys that runner sets itself."""
    problems = []
    for path in _keys(doc.data):
        key = path[-1]
        if is_secret_key(key):
            message = f"key '{key}' is named like a credential; {SECRETS}"
            problems.append(Problem(message, doc.where(path, key=True)))
        elif len(path) >= 3 and path[-3] in _EXTRA_BODY_HOMES and path[-2] == "extra_body" \
                and key in RUNNER_SETS:
            message = f"extra_body.{key}: runner sets {key} itself; {RUNNER_SETS[key]}"
            problems.append(Problem(message, doc.where(path, key=True)))
    return problems


def _keys(value: Any, path: Path = ()) -> Iterator[Path]:
    """The path of every mapping key in `value`, depth first."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*path, key)
            yield from _keys(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _keys(child, (*path, i))


def _get(data: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, str) and isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def lock_problems(doc: Document) -> list[Problem]:
    """What the lock schema cannot say: the plan name, credential-like and extra_body keys (as
    for plans), unique benchmark names (per server), unique job ids and slugs (slugs in any
    letter case: they name files), each job's benchmark among the lock's, and job params with
    exactly one prompt source, one load mode and a way to stop."""
    problems = document_problems(doc, ("plan", "name"))
    problems += _duplicates(doc, "benchmarks", "name", str, per_server=True)
    problems += lock_slo_problems(doc)
    problems += _duplicates(doc, "jobs", "id", str) + _duplicates(doc, "jobs", "slug", str.casefold)
    names = [b["name"] for _, b in _entries(doc, "benchmarks") if isinstance(b.get("name"), str)]
    for i, job in _entries(doc, "jobs"):
        slug, bench = job.get("slug"), job.get("benchmark")
        if isinstance(slug, str) and slug_problem(slug):
            problems.append(Problem(f"slug {slug_problem(slug)}", doc.where(("jobs", i, "slug"))))
        if isinstance(bench, str) and bench not in names:
            problems.append(Problem(f"benchmark '{bench}' is not one of the lock's benchmarks "
                                    f"({', '.join(names) or 'none'})",
                                    doc.where(("jobs", i, "benchmark"))))
        if isinstance(job.get("params"), dict):
            problems += param_problems(doc, ("jobs", i, "params"), job["params"])
    return problems


def _duplicates(doc: Document, section: str, key: str, fold: Any,
                per_server: bool = False) -> list[Problem]:
    """Entries of `section` whose `key` repeats an earlier one's (compared through `fold`);
    `per_server`: on the same server (a lock of several has each benchmark once per server)."""
    first: dict[tuple[Any, str], int] = {}
    problems = []
    for i, entry in _entries(doc, section):
        value = entry.get(key)
        if not isinstance(value, str):
            continue
        seen = (entry.get("server") if per_server else None, fold(value))
        if first.setdefault(seen, i) != i:
            line = doc.where((section, first[seen], key)).line
            problems.append(Problem(f"duplicate {section[:-1]} {key} '{value}' (first on line "
                                    f"{line})", doc.where((section, i, key))))
    return problems


def _entries(doc: Document, section: str) -> list[tuple[int, dict[str, Any]]]:
    items = doc.data.get(section) if isinstance(doc.data, dict) else None
    return [(i, e) for i, e in enumerate(items) if isinstance(e, dict)] \
        if isinstance(items, list) else []


def param_problems(doc: Document, path: Path, params: Mapping[str, Any]) -> list[Problem]:
    """A job's `params` (at `path`) need one of each rival group (prompt source, load mode),
    what their modifiers modify (arrival needs rate), and requests or duration_s."""
    problems = []
    for groups, what in ((PROMPT_SOURCES, "prompt source"), (LOAD_MODES, "load mode")):
        chosen = [group[0] for group in groups if group[0] in params]
        if len(chosen) != 1:
            names = ", ".join(group[0] for group in groups)
            message = f"params need exactly one {what} ({names}); found "
            problems.append(Problem(message + (" and ".join(chosen) or "none"), doc.where(path)))
        problems += [Problem(f"{key} needs {group[0]}, which these params do not set",
                             doc.where((*path, key)))
                     for group in groups for key in group[1:]
                     if key in params and not modified(key, params) and group is _first(key)]
    if "requests" not in params and "duration_s" not in params and "replay" not in params:
        problems.append(Problem("params need requests or duration_s: when the job stops",
                                doc.where(path)))
    if (unpaired := replay_unpaired(params)) is not None:
        problems.append(Problem(unpaired, doc.where(path)))
    if "burstiness" in params and params.get("arrival") != "gamma":
        problems.append(Problem("burstiness shapes gamma arrivals only: set arrival: gamma "
                                "beside it, or remove burstiness",
                                doc.where((*path, "burstiness"))))
    if problem := session_problem(params):
        problems.append(Problem(problem, doc.where((*path, "session"))))
    return problems + _search_problems(doc, path, params)


def modified(key: str, params: Mapping[str, Any]) -> bool:
    """Whether modifier `key` (e.g. max_concurrency) has what it modifies among `params`: the
    first key of a group it belongs to (rate, or replay)."""
    return any(group[0] in params for group in (*PROMPT_SOURCES, *LOAD_MODES)
               if key in group[1:])


def _first(key: str) -> tuple[str, ...]:
    """The first group that `key` modifies (the one a problem names)."""
    return next(g for g in (*PROMPT_SOURCES, *LOAD_MODES) if key in g[1:])


def replay_unpaired(params: Mapping[str, Any]) -> str | None:
    """A job's `replay` without a `trace` to replay, or a `trace` without `replay`: the
    problem in words; None when they come together or not at all."""
    if "replay" in params and not params.get("trace"):
        return ("load.replay replays a trace: set workload.trace (and trace_format), or use "
                "concurrency or rate")
    if params.get("trace") and "replay" not in params:
        return ("workload.trace is replayed at its own times: add load: {replay: {speed: 1.0}} "
                "(a trace is not a prompt list for concurrency or rate; use workload.dataset)")
    return None


def _search_problems(doc: Document, path: Path, params: Mapping[str, Any]) -> list[Problem]:
    """A lock job's search (its bounds, as a plan's) and sweep: one of them at most."""
    search, sweep = params.get("search"), params.get("sweep")
    requests = params.get("requests")
    counted = requests if isinstance(requests, int) and not isinstance(requests, bool) else None
    problems = search_bounds(doc, search, (*path, "search"), counted) \
        if isinstance(search, Mapping) else []
    if isinstance(sweep, Mapping):
        problems += streams_problems(doc, sweep.get("concurrency", SWEEP["concurrency"]),
                                     counted, (*path, "sweep"), "sweep.concurrency")
    if isinstance(search, Mapping) and isinstance(sweep, Mapping):
        problems.append(Problem("a job runs a search or a sweep, not both: remove one",
                                doc.where((*path, "sweep"))))
    return problems
