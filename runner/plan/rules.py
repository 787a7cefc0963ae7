"""What a plan or a lock may not say beyond its schema: a plan name that collides in results/, a
key named like a credential, an `extra_body` key that runner sends itself, job parameters that
mix rivals. Plans and locks are checked by the same functions, at load time, so `validate`
refuses what `apply` could not run or store."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from runner.errors import Problem
from runner.safenames import is_secret_key, plan_name_problem
from runner.yamlfile import Document, Path

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
