"""A run's jobs/ folder: each job's summary (jobs/<slug>.json) and its request log
(jobs/<slug>.requests.jsonl), at paths that never leave it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from runner.errors import cannot_write
from runner.load.records import RequestRecord
from runner.results.requestlog import RequestLog, read_log
from runner.safenames import slug_problem

JOBS_DIR = "jobs"
COMPLETE_STATUSES = ("ok", "failed")


class JobFiles:
    """The jobs/ folder of the run at `run_dir` (results.store.RunStore builds on it): opens
    and reads back the request logs, finds complete job summaries, and remembers the job whose
    files the disk refused."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self._failed_job: str | None = None  # the slug whose files the disk could not take

    def request_log(self, slug: str) -> RequestLog:
        """The job's request log, opened for appending; a write that the disk refuses raises
        StorageError (exit 74) naming the file, and the job ends `interrupted`."""
        return RequestLog(self._job_file(slug, ".requests.jsonl"),
                          on_failure=lambda: self._failed(slug))

    def reset_request_log(self, slug: str) -> None:
        """Empty the job's request log: a retried or resumed job starts afresh."""
        path = self._job_file(slug, ".requests.jsonl")
        try:
            with open(path, "w", encoding="utf-8"):
                pass
        except OSError as exc:
            raise cannot_write(path, exc, "a request log") from None

    def _failed(self, slug: str) -> None:
        self._failed_job = slug

    def completed_job(self, slug: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored summary if it is complete ("ok" or "failed") and has these params."""
        path = self._job_file(slug, ".json")
        try:
            data = load_json(path)
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("status") not in COMPLETE_STATUSES:
            return None
        return data if data.get("params") == plain(params) else None

    def read_requests(self, slug: str) -> list[RequestRecord]:
        """The job's request records; a torn last line (a crash mid-write) is skipped."""
        return read_requests(self.run_dir, slug)

    def _job_file(self, slug: str, suffix: str) -> str:
        return _job_file(self.run_dir, slug, suffix)


def read_requests(run_dir: str, slug: str) -> list[RequestRecord]:
    """A stored job's request records, without reading the manifest (reports call this per job);
    a torn last line (a crash mid-write) is skipped."""
    return read_log(_job_file(run_dir, slug, ".requests.jsonl"))


def _job_file(run_dir: str, slug: str, suffix: str) -> str:
    return os.path.join(run_dir, JOBS_DIR, check_slug(slug) + suffix)


def check_slug(slug: object) -> str:
    """`slug` if it names a file inside jobs/ (safenames.slug_problem); else ValueError."""
    if slug_problem(slug) or not isinstance(slug, str):
        raise ValueError(f"unsafe job slug {slug!r}")
    return slug


def load_json(path: str) -> Any:
    """The JSON document in `path` (OSError, ValueError as json.load raises them)."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def plain(data: Any) -> Any:
    """A deep copy as plain JSON data (lists, dicts), so stored and compared values agree."""
    return json.loads(json.dumps(data, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")
