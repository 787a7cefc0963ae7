"""Plan locks: `runner plan --out` saves exactly what would run; `runner apply LOCK` runs it."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from runner import __version__, defaults
from runner.atomicfile import write_output
from runner.errors import InputError, Problem, StaleError, cannot_write
from runner.inputfile import read_input
from runner.inventory.listing import Inventory
from runner.jsonfile import load_json_text
from runner.plan.expand import Job
from runner.plan.planfile import file_sha256
from runner.plan.rules import lock_problems
from runner.schema import validate, whole_numbers_as_int
from runner.yamlfile import Document

LOCK_VERSION = 1


def build_lock(report: Mapping[str, Any], inv: Inventory, variables: Mapping[str, Any],
               options: Mapping[str, Any]) -> dict[str, Any]:
    """The plan view plus the inventory snapshot and everything needed to run it again."""
    return {
        "lock_version": LOCK_VERSION,
        "runner_version": __version__,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **report,
        "inventory_snapshot": inv.to_json(),
        "variables": dict(variables),
        "options": dict(options),
    }


def save_lock(path: str, lock: Mapping[str, Any]) -> None:
    """Write a lock into `path` (write_output: a regular file atomically, a device or FIFO
    directly); a path that cannot be written is an InputError, a full disk a StorageError."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_output(path, lock_text(path, lock))
    except OSError as exc:
        raise cannot_write(path, exc, "the plan lock") from None


def lock_text(path: str, lock: Mapping[str, Any]) -> str:
    """The JSON text of a lock to be saved at `path` (`-`: stdout, as from the current
    folder). It also records where the plan is from the lock's folder (`plan_from_lock`), so it
    runs from any folder."""
    here = os.path.dirname(os.path.abspath(path))
    from_lock = os.path.relpath(os.path.abspath(lock["plan"]["path"]), here)
    return json.dumps({**lock, "plan_from_lock": from_lock}, indent=1) + "\n"


def is_lock(path: str) -> bool:
    """A lock is JSON with a `lock_version`; a plan is YAML."""
    if not path.endswith(".json") or not os.path.isfile(path):  # never open a FIFO here
        return False
    try:
        with open(path, encoding="utf-8") as fh:
            return '"lock_version"' in fh.read(4096)
    except OSError:
        return False


def read_lock(path: str) -> dict[str, Any]:
    """A checked lock's data (see `check_lock`), with the plan's path as seen from here."""
    return located(path, check_lock(path).data)


def located(path: str, data: dict[str, Any]) -> dict[str, Any]:
    """The checked lock `data` read from `path`, with the plan's path as seen from here."""
    data["plan"] = {**data["plan"], "path": _plan_path(path, data)}
    return data


def check_lock(path: str) -> Document:
    """Load a lock and check it as a plan is checked: JSON with positions, the lock schema
    (schemas/lock.schema.json) and `lock_problems`. Anything that is not a valid lock of this
    version is an InputError listing every problem at file:line:col."""
    doc = load_json_text(_read_text(path), path)
    if not isinstance(doc.data, dict) or doc.data.get("lock_version") != LOCK_VERSION:
        raise InputError(f"{path}: not a plan lock of version {LOCK_VERSION}; {_REMAKE}")
    problems = validate(doc, "lock")
    flagged = {p.where.path for p in problems}  # one problem per place: the schema's first
    problems += [p for p in lock_problems(doc) if p.where.path not in flagged]
    if problems:
        ordered = sorted(problems, key=lambda p: (p.where.line or 0, p.where.col or 0))
        raise InputError.many([*ordered, Problem(f"{path}: fix the lock, or {_REMAKE}")])
    whole_numbers_as_int(doc, "lock")
    return doc


_REMAKE = "make a new one with `runner plan PLAN --out FILE`"


def _read_text(path: str) -> str:
    try:
        return read_input(path, "a plan lock", defaults.MAX_DOCUMENT_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: lock file not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable plan lock ({exc})") from None


def _plan_path(lock_path: str, lock: Mapping[str, Any]) -> str:
    """The locked plan as seen from here: beside the lock where the lock says it is, else the
    path as written when the lock was made (relative to the folder it was made in)."""
    recorded = str(lock["plan"]["path"])
    from_lock = lock.get("plan_from_lock")
    if isinstance(from_lock, str):
        beside = os.path.join(os.path.dirname(lock_path), from_lock)
        if os.path.exists(beside):
            return os.path.normpath(beside)
    return recorded


def stale_plan(lock: Mapping[str, Any]) -> str | None:
    """Why the locked plan file no longer matches, or None."""
    plan = lock["plan"]
    try:
        current = file_sha256(read_input(plan["path"], "a plan", defaults.MAX_DOCUMENT_BYTES))
    except (OSError, InputError):
        return f"the plan file {plan['path']} is gone"
    if current != plan["sha256"]:
        return f"the plan file {plan['path']} changed since the lock was made"
    return None


def drifted_models(jobs: Sequence[Job], served: Mapping[str | None, Collection[str]]) -> list[str]:
    """Locked models that their server's inventory no longer serves (`served`: the job's
    server, None in a lock of one server -> the ids it serves); `model on server 'eu'` in a
    lock of several servers."""
    return sorted({job.model + (f" on server '{job.server}'" if job.server else "")
                   for job in jobs if job.model not in served.get(job.server, ())})


def check_fresh(lock_path: str, lock: Mapping[str, Any], jobs: Sequence[Job],
                served: Mapping[str | None, Collection[str]], force: bool,
                allow_drift: bool) -> list[str]:
    """Raise StaleError (exit 5) unless forced; returns the warnings for what was allowed.
    `served` as drifted_models takes it: every server's inventory is checked."""
    warnings = []
    changed = stale_plan(lock)
    if changed:
        if not force:
            raise StaleError(f"{lock_path}: {changed}; re-run `runner plan --out` "
                             "or pass --force to run the locked jobs anyway")
        warnings.append(f"{changed} (--force)")
    gone = drifted_models(jobs, served)
    if gone:
        names = ", ".join(gone)
        if not allow_drift:
            raise StaleError(f"{lock_path}: locked models no longer served: {names}; re-run "
                             "`runner plan --out` or pass --allow-drift to skip their jobs")
        warnings.append(f"skipping jobs of models no longer served: {names} (--allow-drift)")
    return warnings


def locked_jobs(lock: Mapping[str, Any]) -> list[Job]:
    """The jobs of a lock that `read_lock` accepted."""
    return [Job(j["id"], j["slug"], j["benchmark"], j["model"], j.get("point", {}), j["params"],
                j.get("server")) for j in lock["jobs"]]
