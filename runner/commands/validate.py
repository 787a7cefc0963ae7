"""`runner validate FILE...`: report every problem of plans and config files at once."""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from runner.errors import EXIT_INVALID, EXIT_OK, InputError, Location, Problem
from runner.inventory import config
from runner.load.replay import job_prompts
from runner.plan import patterns
from runner.plan.expand import expand_matrix
from runner.plan.lock import check_lock, is_lock, located
from runner.plan.planfile import Benchmark, Plan, complete_params, load_plan, parse_extra_vars
from runner.plan.servers import names_servers, unknown_server_problems
from runner.printable import printable, printable_lines

_CONFIG_FILES: dict[str, Callable[[str], object]] = {
    "servers.yaml": config.load_servers,
    "models.yaml": config.load_models,
}


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    extra = parse_extra_vars(args.extra_vars)
    configs = _Configs(args.config_dir, env)
    results = {path: check_file(path, extra, configs) for path in args.files}
    print(printable_lines(render(results, args.format)))
    return EXIT_INVALID if any(results.values()) else EXIT_OK


class _Configs:
    """The config files a plan is checked against, found near each plan and read once."""

    def __init__(self, option: str | None, env: Mapping[str, str]) -> None:
        self.option, self.env = option, env
        self.models = functools.cache(self._models)
        self.servers = functools.cache(self._servers)

    def near(self, plan_path: str) -> config.ConfigDir:
        return config.find_config_dir(self.option, self.env, plan_path)

    def _models(self, found: config.ConfigDir) -> config.ModelsConfig:
        return config.load_models(found, self.env)

    def _servers(self, found: config.ConfigDir) -> config.Servers:
        return config.load_servers(found)


def check_file(path: str, extra: Mapping[str, str], configs: _Configs) -> list[Problem]:
    """The problems of one file (a plan, or servers.yaml/models.yaml by name)."""
    try:
        loader = _CONFIG_FILES.get(os.path.basename(path))
        if loader is not None and not os.path.exists(path):
            return [Problem(f"{path}: file not found")]
        if loader is not None:
            loader(os.path.dirname(path) or ".")
            return []
        if is_lock(path):
            return lock_file_problems(path, configs)
        plan = load_plan(path, extra)
        found = configs.near(path)
        return (pattern_problems(plan, configs.models(found)) + matrix_problems(plan)
                + prompt_problems(plan)
                + _server_problems(plan.server, ("plan", "inventory.server"),
                                   plan.where.get("server"), lambda: configs.servers(found))
                + _servers_problems(plan, lambda: configs.servers(found)))
    except InputError as exc:
        return list(exc.problems)


def _servers_problems(plan: Plan, servers: Callable[[], config.Servers]) -> list[Problem]:
    """The servers a plan names (inventory.servers, a benchmark's server/servers) must be
    defined in servers.yaml, as `runner plan` and `runner apply` check, each at its place."""
    if not names_servers(plan):
        return []
    try:
        found = servers()
    except InputError as exc:  # servers.yaml's own problems are said once, by inventory.server
        return [] if plan.server else list(exc.problems)
    return unknown_server_problems(plan, found.servers, found.path)


def lock_file_problems(path: str, configs: _Configs) -> list[Problem]:
    """What `runner apply LOCK` would refuse before running: the lock (read_lock), its servers
    in servers.yaml (found as apply finds it) and its jobs' datasets and templates."""
    doc = check_lock(path)
    lock = located(path, doc.data)
    plan_path = lock["plan"]["path"]
    found = configs.near(plan_path if os.path.isfile(plan_path) else path)
    server = lock["options"]["server"]
    problems = _server_problems(server, ("lock", "options.server"),
                                doc.where(("options", "server")), lambda: configs.servers(found))
    for i, entry in enumerate(lock.get("servers") or ()):  # a lock of several servers
        if entry["name"] != server:  # the first is options.server, said once
            problems += _server_problems(entry["name"], ("lock", f"servers[{i}].name"),
                                         doc.where(("servers", i, "name")),
                                         lambda: configs.servers(found))
    for i, job in enumerate(lock["jobs"]):
        problems += _prompt_problems(job["params"], os.path.dirname(plan_path), lock.get(
            "variables", {}), doc.where(("jobs", i, "params")))
    return problems


def _server_problems(server: str | None, field: tuple[str, str], where: Location | None,
                     servers: Callable[[], config.Servers]) -> list[Problem]:
    """A plan's inventory.server or a lock's options.server (`field`: whose, which) must be
    defined in servers.yaml, as `runner plan` and `runner apply` check."""
    if server is None:
        return []
    owner, name = field
    try:
        unknown = config.unknown_server(servers(), server, f"the {owner}'s {name}")
    except InputError as exc:  # servers.yaml's own problems keep their place in it
        return [p if p.where.file else Problem(
            f"cannot check {name} '{server}': {p.message}", where or Location())
            for p in exc.problems]
    return [Problem(unknown, where or Location())] if unknown else []


def prompt_problems(plan: Plan) -> list[Problem]:
    """Datasets and prompt templates of every job, built by the function `apply` builds them
    with (a dataset line that is not JSON, a template that fails to render): found here, not
    after `apply` has started."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for bench in plan.benchmarks:
        for params in _job_params(bench):
            key = repr([params.get(k) for k in _PROMPT_PARAMS])
            if key not in seen:
                seen.add(key)
                problems += _prompt_problems(params, os.path.dirname(plan.path),
                                             plan.variables, bench.where["workload"])
    return problems


# what can fail in building prompts
_PROMPT_PARAMS = ("endpoint", "dataset", "template", "tokenizer", "trace", "trace_format")


def _job_params(bench: Benchmark) -> list[dict[str, Any]]:
    """The params of each of a benchmark's points; a broken matrix has none (matrix_problems
    reports it)."""
    try:
        return [complete_params(bench.params, point) for point in expand_matrix(bench.matrix)]
    except (InputError, ValueError):
        return []


def _prompt_problems(params: Mapping[str, Any], plan_dir: str, variables: Mapping[str, Any],
                     where: Location) -> list[Problem]:
    try:
        job_prompts(params, plan_dir, variables)
    except InputError as exc:
        return [p if p.where.file else Problem(p.message, where) for p in exc.problems]
    return []


def matrix_problems(plan: Plan) -> list[Problem]:
    """What `runner plan` would refuse in a matrix, found without an inventory: an exclude
    that removes everything or names no key, a point that mixes rivals or lacks what it needs."""
    problems = []
    for bench in plan.benchmarks:
        where = bench.where["matrix"]
        try:
            points = expand_matrix(bench.matrix, path=where.path or "$.matrix")
            if not points:
                raise InputError("the matrix's exclude removes every combination", where)
            for point in points:
                complete_params(bench.params, point)
        except ValueError as exc:
            problems.append(Problem(str(exc), where))
        except InputError as exc:  # a data path alone: placed at the matrix's line
            problems += [p if p.where.file else Problem(p.message, _at(where, p.where.path))
                         for p in exc.problems]
    return problems


def _at(matrix: Location, path: str | None) -> Location:
    return replace(matrix, path=path or matrix.path)


def pattern_problems(plan: Plan, models: config.ModelsConfig) -> list[Problem]:
    """Pattern syntax problems (bad regex, unknown group) located at each `models:`; an
    unknown group also says where groups come from."""
    problems = []
    for bench in plan.benchmarks:
        try:
            patterns.check(bench.models, models.groups)
        except patterns.PatternError as exc:
            message = str(exc)
            if "unknown model group" in message:
                message += f"; {models.groups_source()}"
            problems.append(Problem(message, bench.where["models"]))
    return problems


def render(results: Mapping[str, list[Problem]], fmt: str) -> str:
    if fmt == "json":
        files = [{"file": f, "valid": not p, "problems": [_as_json(x) for x in p]}
                 for f, p in results.items()]
        return json.dumps({"valid": not any(results.values()), "files": files}, indent=2)
    lines = []
    for path, problems in results.items():
        if fmt == "github":
            lines += [printable(_github(path, p)) for p in problems]
        else:
            lines += [printable(p.render()) for p in problems] or [printable(f"ok: {path}")]
    return "\n".join(lines)


def _as_json(problem: Problem) -> dict[str, Any]:
    w = problem.where
    return {"file": w.file, "line": w.line, "col": w.col, "path": w.path,
            "message": problem.message}


def _github(path: str, problem: Problem) -> str:
    w = problem.where
    message = problem.message + (f" (at {w.path})" if w.path else "")
    return f"::error file={w.file or path},line={w.line or 1},col={w.col or 1}::{message}"
