"""Reading stored runs back: a run directory, its job summaries, and run references
(`latest`, `previous`, a run id or a path), for report, compare and history."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import InputError
from runner.load.records import RequestRecord
from runner.results.jobfiles import JOBS_DIR, read_requests
from runner.results.store import RunStore


@dataclass(frozen=True)
class StoredRun:
    """One run as stored on disk; never the executor's memory."""

    run_dir: str
    manifest: Mapping[str, Any]
    jobs: tuple[Mapping[str, Any], ...]  # summaries in manifest order (pending ones omitted)

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def plan_name(self) -> str:
        return str(self.manifest.get("plan", {}).get("name", ""))

    def requests(self, slug: str) -> list[RequestRecord]:
        """The per-request records of one job (empty when none were stored)."""
        return read_requests(self.run_dir, slug)


def load_run(run_dir: str) -> StoredRun:
    """Read a run directory: its manifest and every stored job summary."""
    store = RunStore.open(run_dir)
    jobs = []
    for entry in store.manifest.get("jobs", []):
        path = os.path.join(run_dir, JOBS_DIR, f"{entry['slug']}.json")
        try:
            with open(path, encoding="utf-8") as fh:
                jobs.append(json.load(fh))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: unreadable job summary ({exc})") from None
    return StoredRun(run_dir, store.manifest, tuple(jobs))


def run_dirs(results_dir: str, plan: str) -> list[str]:
    """A plan's run directories, oldest first: by the time in the run id (to the second), then
    by when each manifest was last written (two runs that started within one second: their
    ids' random suffixes say nothing of their order, and `latest` must be the later one)."""
    folder = os.path.join(results_dir, plan)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        try:
            manifest = os.stat(os.path.join(folder, name, "manifest.json"))
        except OSError:
            continue
        if stat.S_ISREG(manifest.st_mode):
            found.append((name.split("-", 1)[0], manifest.st_mtime_ns, name))
    return [os.path.join(folder, name) for _, _, name in sorted(found)]


def resolve_run(ref: str, results_dir: str, plan: str | None = None) -> str:
    """A run directory from a path, a run id, or `latest`/`previous` (of `plan`)."""
    if os.path.isfile(os.path.join(ref, "manifest.json")):
        return ref
    if not _plans(results_dir) and not os.path.isdir(ref):
        raise InputError(f"no runs are stored yet under {results_dir}/; run `runner apply "
                         "PLAN` first, or point --results at the folder that holds the runs")
    if ref in ("latest", "previous"):
        return _relative(ref, results_dir, plan)
    if os.path.isdir(ref):
        raise InputError(_not_a_run(ref))
    matches = _by_id(ref, results_dir)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(f"run id '{ref}' is ambiguous: {', '.join(matches)}")
    raise InputError(f"no run '{ref}' under {results_dir}/: give a run directory, a run id, "
                     "or latest/previous with --plan")


def _not_a_run(folder: str) -> str:
    """Why a folder is not a run: a plan's folder lists its runs, a results folder its plans."""
    parent, name = os.path.split(os.path.normpath(folder))
    runs = run_dirs(parent, name)
    if runs:
        shown = ", ".join(os.path.basename(r) for r in runs[-5:])
        more = f" (the last 5 of {len(runs)})" if len(runs) > 5 else ""
        return (f"{folder} is a plan's folder, not a run; its runs{more}: {shown}; "
                f"give one of them, e.g. {runs[-1]}, or `latest --plan {name}`")
    plans = _plans(folder)
    if plans:
        return (f"{folder} is a results folder, not a run; its plans: {', '.join(plans)}; "
                f"give a run directory, or `latest --plan NAME --results {folder}`")
    return f"{folder} is not a run directory (no manifest.json); expected results/<plan>/<run-id>"


def _relative(ref: str, results_dir: str, plan: str | None) -> str:
    plans = [plan] if plan else _plans(results_dir)
    if len(plans) != 1:
        raise InputError(f"'{ref}' needs --plan NAME (plans under {results_dir}/: "
                         f"{', '.join(plans) or 'none'})")
    runs = run_dirs(results_dir, plans[0])
    wanted = 1 if ref == "latest" else 2
    if len(runs) < wanted:
        raise InputError(f"plan '{plans[0]}' has {len(runs)} stored run(s); "
                         f"'{ref}' needs {wanted}")
    return runs[-wanted]


def _plans(results_dir: str) -> list[str]:
    if not os.path.isdir(results_dir):
        return []
    return sorted(n for n in os.listdir(results_dir) if run_dirs(results_dir, n))


def _by_id(run_id: str, results_dir: str) -> list[str]:
    return [d for plan in _plans(results_dir) for d in run_dirs(results_dir, plan)
            if os.path.basename(d) == run_id]
