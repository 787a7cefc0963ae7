"""The results store: a run's directory, its manifest and its rows in the index (the job
files in jobs/ are jobfiles')."""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from runner import __version__
from runner.atomicfile import write_atomic
from runner.errors import InputError, StorageError, cannot_write
from runner.filelock import FileLock, acquire
from runner.results import index
from runner.results.capacityjobs import capacity_job, capacity_jobs
from runner.results.index import INDEX_FILE, RunRow
from runner.results.jobfiles import (
    COMPLETE_STATUSES,
    JOBS_DIR,
    JobFiles,
    check_slug,
    load_json,
    plain,
)
from runner.results.reserve import Reserve
from runner.safenames import is_secret_key, plan_name_problem

MANIFEST_FILE = "manifest.json"
LOCK_FILE = "run.lock"
# partial: this apply ended well, but jobs of the run's record are still to run (--resume them)
RUN_STATUSES = ("ok", "failed", "interrupted", "partial")


class RunStore(JobFiles):
    """One run's directory under results/<plan>/<run-id>/ and its rows in the index."""

    def __init__(
        self, run_dir: str, manifest: dict[str, Any], now: Callable[[], datetime] | None = None,
        index_location: str | None = None,
    ) -> None:
        super().__init__(run_dir)
        self.manifest = manifest
        self.run_id: str = manifest["run_id"]
        plan_dir = os.path.dirname(os.path.abspath(run_dir))
        self.plan_name = os.path.basename(plan_dir)
        # the results index (index.choose_index): results/index.sqlite unless told otherwise
        self.index_path = index_location or os.path.join(os.path.dirname(plan_dir), INDEX_FILE)
        self._now = now or _utc_now
        # Guards the manifest, in case jobs are written from worker threads.
        self._lock = threading.Lock()
        self._held: FileLock | None = None  # the run directory's writer lock
        self._reserve = Reserve(run_dir)  # room for the last manifest, should the disk fill up

    @classmethod
    def create(
        cls,
        results_dir: str,
        plan_name: str,
        manifest: Mapping[str, Any],
        now: Callable[[], datetime] | None = None,
        command: str | None = None,
        index_location: str | None = None,
    ) -> RunStore:
        """Make results/<plan>/<run-id>/jobs/, lock it, write manifest.json and index the run
        (in `index_location`, a path or postgresql:// URL; default results/index.sqlite)."""
        given = plain(manifest)
        refuse_secrets(given, "run manifest")
        jobs = _job_entries(given.get("jobs", []))
        started = _utc(now() if now else _utc_now())
        run_dir = _claim_run_dir(os.path.join(results_dir, check_plan_name(plan_name)), started)
        data: dict[str, Any] = {"run_id": os.path.basename(run_dir), "status": "running",
                "started_at": _stamp(started), "finished_at": None,
                "runner_version": __version__}
        data.update({k: v for k, v in given.items() if k not in data}, jobs=jobs)
        store = cls(run_dir, data, now, index_location)
        store._held = lock_run(run_dir, command)
        try:
            store._reserve.hold(0)  # no room for even this: no manifest, the run never was
            store._save_manifest()
            index.replace_jobs(store.index_path, store._run_row(), jobs)
        except StorageError:
            if store._reserve.held:
                with suppress(StorageError):
                    store.finish("interrupted")
            store.close()
            raise
        return store

    @classmethod
    def open(cls, run_dir: str, index_location: str | None = None) -> RunStore:
        """The stored run at `run_dir` (for --resume and reports), indexed in `index_location`."""
        path = os.path.join(run_dir, MANIFEST_FILE)
        hint = "expected a run directory such as results/<plan>/<run-id>"
        try:
            manifest = load_json(path)
        except FileNotFoundError:
            raise InputError(f"{path}: no run manifest; {hint}") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: unreadable run manifest ({exc}); start a new run") from None
        if not (isinstance(manifest, dict) and isinstance(manifest.get("run_id"), str)
                and isinstance(manifest.get("jobs"), list)):
            raise InputError(f"{path}: not a run manifest (no run_id or jobs); {hint}")
        return cls(run_dir, manifest, index_location=index_location)

    @classmethod
    def resume(cls, run_dir: str, command: str | None = None,
               index_location: str | None = None) -> RunStore:
        """The stored run at `run_dir`, locked for writing: BusyError (naming the holder) while
        another process writes it."""
        cls.open(run_dir)  # a clear error for a directory that is no run, before any lock file
        held = lock_run(run_dir, command)
        try:
            store = cls.open(run_dir, index_location)  # as the previous writer left it
        except BaseException:
            held.release()
            raise
        store._held = held
        return store

    def close(self) -> None:
        """Give back the space held for the run, and let another process write its directory."""
        self._reserve.release()
        if self._held is not None:
            self._held.release()
            self._held = None

    def set_jobs(self, jobs: Sequence[Mapping[str, Any]]) -> None:
        """Record the run's jobs as pending; a job already complete on disk keeps its status."""
        entries = _job_entries(jobs)
        self._record(entries, {e["id"] for e in entries})

    def resume_jobs(self, jobs: Sequence[Mapping[str, Any]], note: Mapping[str, Any]) -> None:
        """Mark `jobs` (all in the run's record) to be run again unless complete on disk; every
        other job of the record stays as it is. `note` (what resumed it) goes to `resumes`."""
        given = {e["id"]: e for e in _job_entries(jobs)}
        recorded = [dict(e) for e in self.manifest["jobs"]]
        unknown = set(given) - {e["id"] for e in recorded}
        if unknown:
            raise ValueError(f"jobs not in the run's record: {', '.join(sorted(unknown))}")
        entries = [{**e, "params": given[e["id"]]["params"]} if e["id"] in given else e
                   for e in recorded]
        with self._lock:
            self.manifest.setdefault("resumes", []).append(
                {"at": _stamp(_utc(self._now())), **plain(note)})
        self._record(entries, set(given))

    def add_job(self, job: Mapping[str, Any]) -> None:
        """Record one more job, pending (a capacity search's trial, known only at run time), in
        place of the search's own entry (`job['search']`, recorded while it had no trial); a
        job the run recorded already (a --resume runs a search again) is recorded once."""
        [new] = _job_entries([job])
        gone = {new["id"], job.get("search")}
        entries = [dict(e) for e in self.manifest["jobs"] if e.get("id") not in gone]
        self._record([*entries, new], {new["id"]})

    def write_capacity(self, record: Mapping[str, Any]) -> None:
        """Add a capacity search's record to the manifest's `capacity` list, in place of the
        record of the same search that a --resume ran again."""
        with self._lock:
            kept = [r for r in self.manifest.get("capacity") or []
                    if not (isinstance(r, Mapping) and r.get("id") == record.get("id"))]
            self.manifest["capacity"] = [*kept, plain(record)]
            self._save_manifest()
        index.upsert_job(self.index_path, self._run_row(), capacity_job(record))

    def _record(self, entries: list[dict[str, Any]], to_run: set[str]) -> None:
        rows = []
        for entry in entries:
            done = self.completed_job(entry["slug"], entry["params"])
            if done is not None:
                entry["status"] = done["status"]
            elif entry["id"] in to_run or not isinstance(entry.get("status"), str):
                entry["status"] = "pending"
            rows.append({**entry, **(done or {})})
        rows += capacity_jobs(self.manifest)  # the index keeps a run's capacities too
        with self._lock:
            self.manifest["jobs"] = entries
            self.manifest["status"], self.manifest["finished_at"] = "running", None
            size = self._save_manifest()
        index.replace_jobs(self.index_path, self._run_row(), rows)
        if self._held is not None:  # a writer: hold room for the run's last words
            self._reserve.hold(size)

    def server_metrics_path(self, slug: str) -> str:
        """jobs/<slug>.server-metrics.jsonl: the server's metrics scraped during the job."""
        return self._job_file(slug, ".server-metrics.jsonl")

    def undone_jobs(self) -> list[str]:
        """Ids of the recorded jobs that are not complete (neither ok nor failed)."""
        return [e["id"] for e in self.manifest["jobs"] if e.get("status") not in COMPLETE_STATUSES]

    def write_job(self, summary: Mapping[str, Any]) -> None:
        """Write jobs/<slug>.json, then the job's status in the manifest, then the index."""
        data = plain(summary)
        refuse_secrets(data, "job summary")
        entry = self._entry(check_slug(data.get("slug")))
        if not isinstance(data.get("status"), str):
            raise ValueError(f"job summary {entry['slug']!r} has no status")
        if data.setdefault("id", entry["id"]) != entry["id"]:
            raise ValueError(f"job summary {entry['slug']!r} has id {data['id']!r}, "
                             f"the manifest {entry['id']!r}")
        path = self._job_file(entry["slug"], ".json")
        try:
            write_atomic(path, _dumps(data))
        except OSError as exc:
            self._failed(entry["slug"])
            raise cannot_write(path, exc, "a job summary") from None
        with self._lock:
            entry["status"] = data["status"]
            self._save_manifest()
        index.upsert_job(self.index_path, self._run_row(), {**entry, **data})

    def finish(self, status: str) -> None:
        """Stamp finished_at and the final status (one of RUN_STATUSES); `interrupted` also
        marks the job whose files the disk refused. When the disk is full, the space held for
        the run is given back to write this; StorageError if even that is not enough."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, not {status!r}")
        with self._lock:
            self.manifest["status"] = status
            self.manifest["finished_at"] = _stamp(_utc(self._now()))
            if status == "interrupted" and self._failed_job is not None:
                entry = self._entry(self._failed_job)
                if entry.get("status") not in COMPLETE_STATUSES:
                    entry["status"] = "interrupted"
            try:
                self._save_manifest()
            except StorageError:
                if not self._reserve.release():
                    raise
                self._save_manifest()
        index.upsert_run(self.index_path, self._run_row())

    def _entry(self, slug: str) -> dict[str, Any]:
        entry: dict[str, Any]
        for entry in self.manifest["jobs"]:
            if entry.get("slug") == slug:
                return entry
        raise ValueError(f"job {slug!r} is not in the run manifest; call set_jobs first")

    def _save_manifest(self) -> int:
        """Write manifest.json; returns its size. StorageError (exit 74) on a full disk."""
        refuse_secrets(self.manifest, "run manifest")
        path, text = os.path.join(self.run_dir, MANIFEST_FILE), _dumps(self.manifest)
        try:
            write_atomic(path, text)
        except OSError as exc:
            raise cannot_write(path, exc, "the run manifest") from None
        return len(text)

    def _run_row(self) -> RunRow:
        return RunRow.from_manifest(self.plan_name, self.manifest)


def lock_run(run_dir: str, command: str | None = None) -> FileLock:
    """The run directory's writer lock; BusyError naming the holder while another has it."""
    return acquire(os.path.join(run_dir, LOCK_FILE), f"run directory {run_dir}",
                   "a run has one writer at a time: wait until that apply ends, then resume",
                   command=command)


def check_plan_name(name: str) -> str:
    """`name` if it is a safe directory name under results/ (safenames.plan_name_problem);
    else ValueError."""
    if plan_name_problem(name):
        raise ValueError(f"unsafe plan name {name!r}")
    return name


def refuse_secrets(data: Any, what: str, path: str = "$") -> None:
    """ValueError if any key in the nested `data` is named like a credential."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            where = f"{path}.{key}"
            if is_secret_key(key):
                raise ValueError(f"refusing to store a {what} with a secret-like key at {where}")
            refuse_secrets(value, what, where)
    elif isinstance(data, list | tuple):
        for i, item in enumerate(data):
            refuse_secrets(item, what, f"{path}[{i}]")


def _job_entries(jobs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    entries = [{**plain(job), "status": "pending"} for job in jobs]
    slugs = [check_slug(e.get("slug")) for e in entries]
    ids = [e.get("id") for e in entries]
    if not all(isinstance(i, str) and i for i in ids):
        raise ValueError("every job needs an id")
    if len(set(slugs)) < len(slugs) or len(set(ids)) < len(ids):
        raise ValueError("job slugs and ids must be unique")
    return entries


def _claim_run_dir(plan_dir: str, started: datetime) -> str:
    """Create results/<plan>/<run-id>/jobs/ with a run id no other run has."""
    try:
        os.makedirs(plan_dir, exist_ok=True)
        for _ in range(1000):
            run_dir = os.path.join(plan_dir, f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}")
            with suppress(FileExistsError):
                os.mkdir(run_dir)
                os.mkdir(os.path.join(run_dir, JOBS_DIR))
                return run_dir
    except OSError as exc:
        error = cannot_write(plan_dir, exc, "a run directory")
        raise type(error)(f"cannot create a run directory in {plan_dir}: {exc.strerror}") \
            from None
    raise InputError(f"cannot create a run directory in {plan_dir}: every run id is taken")


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=1) + "\n"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _stamp(when: datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}"
