"""`runner validate FILE...`: report every problem of plans and config files at once."""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from runner.errors import EXIT_INVALID, EXIT_OK, InputError, Problem
from runner.inventory import config
from runner.plan import patterns
from runner.plan.planfile import Plan, load_plan, parse_extra_vars

_CONFIG_FILES: dict[str, Callable[[str], object]] = {
    "servers.yaml": config.load_servers,
    "models.yaml": config.load_models,
}


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    extra = parse_extra_vars(args.extra_vars)
    directory = config.config_dir(args.config_dir, env)
    # models.yaml's groups are read once for all plan files (and only if a plan is given).
    groups = functools.cache(lambda: config.load_models(directory, env).groups)
    results = {path: check_file(path, extra, groups) for path in args.files}
    print(render(results, args.format))
    return EXIT_INVALID if any(results.values()) else EXIT_OK


def check_file(
    path: str, extra: Mapping[str, str], groups: Callable[[], Mapping[str, tuple[str, ...]]]
) -> list[Problem]:
    """The problems of one file (a plan, or servers.yaml/models.yaml by name)."""
    try:
        loader = _CONFIG_FILES.get(os.path.basename(path))
        if loader is not None:
            loader(os.path.dirname(path) or ".")
            return []
        return pattern_problems(load_plan(path, extra), groups())
    except InputError as exc:
        return list(exc.problems)


def pattern_problems(plan: Plan, groups: Mapping[str, tuple[str, ...]]) -> list[Problem]:
    """Pattern syntax problems (bad regex, unknown group) located at each `models:`."""
    problems = []
    for bench in plan.benchmarks:
        try:
            patterns.check(bench.models, groups)
        except patterns.PatternError as exc:
            problems.append(Problem(str(exc), bench.where["models"]))
    return problems


def render(results: Mapping[str, list[Problem]], fmt: str) -> str:
    if fmt == "json":
        files = [{"file": f, "valid": not p, "problems": [_as_json(x) for x in p]}
                 for f, p in results.items()]
        return json.dumps({"valid": not any(results.values()), "files": files}, indent=2)
    lines = []
    for path, problems in results.items():
        if fmt == "github":
            lines += [_github(path, p) for p in problems]
        else:
            lines += [p.render() for p in problems] or [f"ok: {path}"]
    return "\n".join(lines)


def _as_json(problem: Problem) -> dict[str, Any]:
    w = problem.where
    return {"file": w.file, "line": w.line, "col": w.col, "path": w.path,
            "message": problem.message}


def _github(path: str, problem: Problem) -> str:
    w = problem.where
    message = problem.message + (f" (at {w.path})" if w.path else "")
    return f"::error file={w.file or path},line={w.line or 1},col={w.col or 1}::{message}"
