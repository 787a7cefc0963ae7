"""A run's jobs and inventories by server: a run of several servers groups its jobs by server
first, and says each server's inventory source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.plan.servers import id_server

Job = Mapping[str, Any]


def by_benchmark(jobs: Sequence[Job]) -> dict[str, list[Job]]:
    """The jobs by benchmark, in order; a run of several servers groups them by server first,
    each group named `<server> · <benchmark>`."""
    names = [server_of(job) for job in jobs]
    several = len(set(names)) > 1
    order = {name: i for i, name in reversed(list(enumerate(names)))}
    groups: dict[str, list[Job]] = {}
    for i in sorted(range(len(jobs)), key=lambda i: order[names[i]]):
        bench = str(jobs[i].get("benchmark", ""))
        groups.setdefault(f"{names[i]} · {bench}" if several else bench, []).append(jobs[i])
    return groups


def server_of(job: Job) -> str:
    """The server a job's id names in a run of several servers, else ''."""
    return id_server(str(job.get("id", ""))) or ""


def inventories(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every server's inventory block of a run (one for a run of one server)."""
    found = manifest.get("inventories")
    if isinstance(found, list) and found:
        return [i for i in found if isinstance(i, Mapping)]
    one = manifest.get("inventory")
    return [one] if isinstance(one, Mapping) else []


def inventory_header(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The report header's inventory (every key present; no model list); a run of several
    servers says each one's source (`live from eu, fallback from us`), and no single server,
    url or model count."""
    inventory = {**dict.fromkeys(("source", "server", "url", "fetched_at", "fallback_reason",
                                  "model_count")),
                 **{k: v for k, v in (manifest.get("inventory") or {}).items() if k != "models"}}
    if len(every := inventories(manifest)) > 1:
        inventory |= {"source": ", ".join(f"{i.get('source')} from {i.get('server')}"
                                          for i in every),
                      "server": None, "url": None, "model_count": None}
    return inventory


def fallback_notes(manifest: Mapping[str, Any]) -> list[str]:
    """A warning per server whose inventory came from the fallback file, with its reason."""
    every = inventories(manifest)
    notes = []
    for inventory in every:
        if inventory.get("source") == "fallback":
            reason = inventory.get("fallback_reason") or "no reason recorded"
            whose = f" of server {inventory.get('server')}" if len(every) > 1 else ""
            notes.append(f"The model inventory{whose} came from the fallback file, not the "
                         f"live proxy: {reason}")
    return notes
