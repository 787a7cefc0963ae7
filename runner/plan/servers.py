"""Plans with several servers (`inventory.servers`, a benchmark's `server:`/`servers:`): which
servers each benchmark runs on, and its jobs marked with their server (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from runner.errors import InputError, Location, Problem, RunnerError
from runner.plan.expand import Job, slugify
from runner.yamlfile import Document, Path

SEPARATOR = ":"  # `<server>:<benchmark>/<model>/...`; neither names may hold a colon


def server_places(doc: Document, at: Path, section: Mapping[str, Any]) -> dict[str, Location]:
    """Where a section (the inventory, a benchmark) names its servers: `servers` (the list, or
    a benchmark's `server:`) and `servers.<i>` (each name)."""
    key = "servers" if "servers" in section else "server"
    names = section.get(key)
    places = {"servers": doc.where((*at, key))}
    if isinstance(names, list):
        places |= {f"servers.{i}": doc.where((*at, key, i)) for i in range(len(names))}
    elif names is not None:
        places["servers.0"] = places["servers"]
    return places


def server_names(section: Mapping[str, Any], single: bool) -> tuple[str, ...] | None:
    """A section's `servers:` list, or (`single`: a benchmark) its `server:` as a list of one;
    None when it names none."""
    if "servers" in section:
        return tuple(section["servers"])
    if single and "server" in section:
        return (section["server"],)
    return None


def server_choice_problems(doc: Document) -> list[Problem]:
    """`server` and `servers` side by side (in the inventory or a benchmark): keep one."""
    sections: list[tuple[Path, Any]] = [(("inventory",), doc.data.get("inventory"))]
    benchmarks = doc.data.get("benchmarks")
    if isinstance(benchmarks, list):
        sections += [(("benchmarks", i), b) for i, b in enumerate(benchmarks)]
    return [Problem("`server` and `servers` are exclusive: name one server with `server`, or "
                    "several with `servers: [a, b]`", doc.where((*at, "servers"), key=True))
            for at, section in sections
            if isinstance(section, dict) and "server" in section and "servers" in section]


def names_servers(plan: Any) -> bool:
    """Whether a plan (runner.plan.planfile.Plan) names its servers with `servers` or per
    benchmark: then the plan's names win over $RUNNER_SERVER, and --server picks one of them."""
    return plan.servers is not None or any(b.servers for b in plan.benchmarks)


@dataclass(frozen=True)
class Targets:
    """The servers of a plan and each benchmark's, in plan order."""

    names: tuple[str, ...]  # every server a job runs on
    benchmarks: Mapping[str, tuple[str, ...]]  # benchmark name -> its servers (may be empty)
    several: bool  # the plan has more than one server: job ids carry theirs

    def benchmarks_of(self, server: str) -> tuple[str, ...]:
        """The names of the benchmarks that run on `server`."""
        return tuple(b for b, names in self.benchmarks.items() if server in names)


def plan_targets(plan: Any, default: str, picked: str | None) -> Targets:
    """Each benchmark's servers: its own, else the plan's `inventory.servers`, else `default`
    (the one server chosen as for a plan that names none). `picked` (--server) keeps one of the
    plan's servers (an InputError naming them when it is none of them); in a plan with one
    server it replaces that server, as --server always did. Ids keep their server whenever the
    plan has several, so a run of one of them has the ids of a run of all."""
    base = plan.servers or (default,)
    own = {b.name: tuple(b.servers or base) for b in plan.benchmarks}
    names = tuple(dict.fromkeys(n for servers in own.values() for n in servers))
    several = len(names) > 1
    if picked is None:
        return Targets(names, own, several)
    if not several:
        return Targets((picked,), {b: (picked,) for b in own}, False)
    if picked not in names:
        close = difflib.get_close_matches(picked, names, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"its servers: {', '.join(names)}"
        raise InputError(f"--server '{picked}' is not one of the plan's servers ({hint}); "
                         "--server picks one of them", Location(plan.path))
    return Targets((picked,), {b: (picked,) if picked in s else () for b, s in own.items()},
                   True)


def unknown_server_problems(plan: Any, known: Mapping[str, Any],
                            servers_path: str) -> list[Problem]:
    """A server named in the plan that servers.yaml does not define, at its place in the plan."""
    sections = [("the plan's inventory.servers", plan.servers or (), plan.where)]
    sections += [(f"benchmark '{b.name}'", b.servers or (), b.where) for b in plan.benchmarks]
    return [Problem(f"server '{name}' (from {what}) is not defined in {servers_path}"
                    f"{_hint(name, known)}", where.get(f"servers.{i}", Location(plan.path)))
            for what, names, where in sections for i, name in enumerate(names)
            if name not in known]


def _hint(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f"; defined: {', '.join(known)}"


def with_server(job: Job, server: str) -> Job:
    """`job` of a plan with several servers: its id `<server>:<id>`, its slug from that id."""
    ident = f"{server}{SEPARATOR}{job.id}"
    return replace(job, id=ident, slug=slugify(ident), server=server)


def id_server(job_id: str) -> str | None:
    """The server a job id names (`eu:chat/m` -> `eu`), None for the id of a one-server plan
    (no benchmark or server name holds a colon, so the first one before a slash is it)."""
    head, sep, _ = job_id.split("/", 1)[0].partition(SEPARATOR)
    return head if sep else None


def on_server(error: RunnerError, server: str) -> RunnerError:
    """`error` (same class, same exit code) with each problem saying which server it is about."""
    problems = [replace(p, message=f"server '{server}': {p.message}") for p in error.problems]
    return type(error).many(problems)
