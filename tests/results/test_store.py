from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner import __version__
from runner.errors import InputError, StorageError
from runner.load.records import RequestRecord
from runner.results.index import SCHEMA_VERSION
from runner.results.store import RunStore

T0 = datetime(2026, 11, 25, 0, 16, 27, tzinfo=UTC)
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")
MANIFEST: dict[str, Any] = {
    "plan": {"name": "smoke", "path": "plans/smoke.yaml", "sha256": "ab" * 32},
    "inventory": {"source": "live", "server": "local", "model_count": 2},
    "inventory_snapshot": {"source": "live", "models": [{"id": "m1"}, {"id": "m2"}]},
    "options": {"server": "local", "api_key_env": "LITELLM_KEY", "limit": None},
}
JOBS: list[dict[str, Any]] = [
    {"id": "chat/m1/c=1", "slug": "chat_m1_c=1", "benchmark": "chat", "model": "m1",
     "params": {"concurrency": 1}},
    {"id": "chat/m2/c=1", "slug": "chat_m2_c=1", "benchmark": "chat", "model": "m2",
     "params": {"concurrency": 1}},
]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def new_store(tmp_path: Path, plan: str = "smoke", jobs: list[dict[str, Any]] = JOBS) -> RunStore:
    store = RunStore.create(str(tmp_path / "results"), plan, MANIFEST, now=Clock())
    store.set_jobs(jobs)
    return store


def summary(job: dict[str, Any], status: str = "ok", **extra: Any) -> dict[str, Any]:
    return {**job, "status": status, "started_at": "2026-11-25T00:16:30Z",
            "finished_at": "2026-11-25T00:17:30Z",
            "metrics": {"ttft_ms": {"p50": 12.5, "p99": 40}, "error_rate": 0.0,
                        "requests": {"ok": 10, "failed": 0}, "note": "text", "flag": True,
                        "empty": None, "samples": [1, 2]},
            **extra}


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def query(tmp_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "results" / "index.sqlite") as conn:
        return conn.execute(sql, args).fetchall()


def record(index: int, **extra: Any) -> RequestRecord:
    fields: dict[str, Any] = {"sent_ms": index * 10.0, "ttft_ms": 5.0, "e2e_ms": 50.0,
                              "itl_ms": [1.0, 2.0], "output_tokens": 3, "ok": True}
    return RequestRecord(index=index, **{**fields, **extra})


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_create_makes_the_layout_and_a_sortable_run_id(tmp_path: Path) -> None:
    store = RunStore.create(str(tmp_path / "results"), "smoke", MANIFEST, now=lambda: T0)
    assert RUN_ID.fullmatch(store.run_id)
    assert store.run_id.startswith("20261125T001627Z-")
    assert store.run_dir == str(tmp_path / "results" / "smoke" / store.run_id)
    assert os.path.isdir(os.path.join(store.run_dir, "jobs"))
    assert all_files(tmp_path / "results") == [
        "index.sqlite", f"smoke/{store.run_id}/manifest.json", f"smoke/{store.run_id}/run.lock",
        f"smoke/{store.run_id}/run.reserve"]


def test_run_ids_are_unique_and_sort_by_time(tmp_path: Path) -> None:
    same = [RunStore.create(str(tmp_path), "p", {}, now=lambda: T0).run_id for _ in range(20)]
    assert len(set(same)) == 20
    later = RunStore.create(str(tmp_path), "p", {}, now=lambda: T0 + timedelta(seconds=1)).run_id
    assert later > max(same)


def test_manifest_records_the_run_and_its_status_transitions(tmp_path: Path) -> None:
    store = RunStore.create(str(tmp_path / "results"), "smoke", MANIFEST, now=Clock())
    path = os.path.join(store.run_dir, "manifest.json")
    first = read_json(path)
    assert first["run_id"] == store.run_id
    assert (first["status"], first["started_at"], first["finished_at"]) == (
        "running", "2026-11-25T00:16:28Z", None)
    assert first["runner_version"] == __version__
    assert first["plan"] == MANIFEST["plan"] and first["options"] == MANIFEST["options"]
    assert first["jobs"] == []
    store.set_jobs(JOBS)
    assert [j["status"] for j in read_json(path)["jobs"]] == ["pending", "pending"]
    store.write_job(summary(JOBS[0]))
    store.write_job(summary(JOBS[1], "failed"))
    assert [j["status"] for j in read_json(path)["jobs"]] == ["ok", "failed"]
    store.finish("failed")
    last = read_json(path)
    assert (last["status"], last["finished_at"]) == ("failed", "2026-11-25T00:16:29Z")
    assert last == store.manifest


def test_jobs_given_to_create_start_pending(tmp_path: Path) -> None:
    store = RunStore.create(str(tmp_path), "smoke", {**MANIFEST, "jobs": JOBS})
    assert store.manifest["jobs"] == [{**job, "status": "pending"} for job in JOBS]
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM jobs WHERE status = 'pending'").fetchall() == [
            (2,)]


def test_job_summary_is_written_as_given(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.write_job(summary(JOBS[0]))
    assert read_json(os.path.join(store.run_dir, "jobs", "chat_m1_c=1.json")) == summary(JOBS[0])


def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    for job in JOBS:
        with store.request_log(job["slug"]) as log:
            log.write(record(0))
        store.write_job(summary(job))
    store.finish("ok")
    assert "run.reserve" in all_files(Path(store.run_dir))  # room for the last manifest
    store.close()
    assert all_files(Path(store.run_dir)) == [
        "jobs/chat_m1_c=1.json", "jobs/chat_m1_c=1.requests.jsonl",
        "jobs/chat_m2_c=1.json", "jobs/chat_m2_c=1.requests.jsonl", "manifest.json",
        "run.lock",
    ]


def test_a_failed_replace_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = new_store(tmp_path)
    store.write_job(summary(JOBS[0]))

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(StorageError, match=r"chat_m1_c=1\.json: cannot write a job summary "
                       r"\(No space left on device\)"):
        store.write_job(summary(JOBS[0], "failed"))
    assert read_json(os.path.join(store.run_dir, "jobs", "chat_m1_c=1.json"))["status"] == "ok"
    assert not [f for f in all_files(Path(store.run_dir)) if ".tmp-" in f]


def test_request_log_appends_and_flushes_each_record(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    slug = JOBS[0]["slug"]
    with store.request_log(slug) as log:
        log.write(record(0))
        assert store.read_requests(slug) == [record(0)]
        log.write(record(1, warmup=True))
        assert store.read_requests(slug) == [record(0), record(1, warmup=True)]
    with store.request_log(slug) as log:
        log.write(record(2))
    assert [r.index for r in store.read_requests(slug)] == [0, 1, 2]
    lines = Path(store.run_dir, "jobs", f"{slug}.requests.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [record(i).to_json() for i in (0,)] + [
        record(1, warmup=True).to_json(), record(2).to_json()]


def test_read_requests_skips_a_torn_last_line(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    slug = JOBS[0]["slug"]
    with store.request_log(slug) as log:
        log.write(record(0))
        log.write(record(1))
    path = Path(store.run_dir, "jobs", f"{slug}.requests.jsonl")
    with path.open("a") as fh:
        fh.write(json.dumps(record(2).to_json())[:25])
    assert [r.index for r in store.read_requests(slug)] == [0, 1]


def test_read_requests_rejects_a_corrupt_line_in_the_middle(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    path = Path(store.run_dir, "jobs", "chat_m1_c=1.requests.jsonl")
    path.write_text(json.dumps(record(0).to_json()) + "\n{not json\n")
    with pytest.raises(InputError, match=r"chat_m1_c=1\.requests\.jsonl:2: corrupt"):
        store.read_requests("chat_m1_c=1")


def test_read_requests_of_a_job_without_a_log_is_empty(tmp_path: Path) -> None:
    assert new_store(tmp_path).read_requests("chat_m1_c=1") == []


def test_appending_after_a_torn_line_drops_the_fragment(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    slug = JOBS[0]["slug"]
    path = Path(store.run_dir, "jobs", f"{slug}.requests.jsonl")
    big = record(0, itl_ms=[float(i) for i in range(20000)])  # a line longer than one chunk
    path.write_text(json.dumps(big.to_json()) + "\n" + json.dumps(record(1).to_json())[:30])
    with store.request_log(slug) as log:
        log.write(record(2))
    assert [r.index for r in store.read_requests(slug)] == [0, 2]
    path.write_text(json.dumps(big.to_json())[:-3])
    with store.request_log(slug) as log:
        log.write(record(3))
    assert [r.index for r in store.read_requests(slug)] == [3]


def test_reset_request_log_starts_afresh(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    slug = JOBS[0]["slug"]
    with store.request_log(slug) as log:
        log.write(record(0))
    store.reset_request_log(slug)
    assert store.read_requests(slug) == []
    with store.request_log(slug) as log:
        log.write(record(5))
    assert [r.index for r in store.read_requests(slug)] == [5]


@pytest.mark.parametrize(
    ("stored", "params", "expected"),
    [
        (None, {"concurrency": 1}, False),
        ("ok", {"concurrency": 1}, True),
        ("failed", {"concurrency": 1}, True),
        ("interrupted", {"concurrency": 1}, False),
        ("running", {"concurrency": 1}, False),
        ("ok", {"concurrency": 2}, False),
        ("ok", {"concurrency": 1, "rate": 5}, False),
    ],
)
def test_completed_job(
    tmp_path: Path, stored: str | None, params: dict[str, Any], expected: bool
) -> None:
    store = new_store(tmp_path)
    if stored:
        store.write_job(summary(JOBS[0], stored))
    found = store.completed_job(JOBS[0]["slug"], params)
    assert found == (summary(JOBS[0], stored or "") if expected else None)


def test_completed_job_ignores_a_corrupt_summary(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    Path(store.run_dir, "jobs", "chat_m1_c=1.json").write_text('{"status": "ok", "par')
    assert store.completed_job("chat_m1_c=1", {"concurrency": 1}) is None


def test_completed_job_compares_params_as_json(tmp_path: Path) -> None:
    job = {**JOBS[0], "params": {"stop": ["a", "b"], "sampling": {"t": 0.5}}}
    store = new_store(tmp_path, jobs=[job])
    store.write_job(summary(job))
    assert store.completed_job(job["slug"], {"sampling": {"t": 0.5}, "stop": ("a", "b")})


def test_index_has_the_run_its_jobs_and_numeric_metrics(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.write_job(summary(JOBS[0]))
    assert query(tmp_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert query(tmp_path, "SELECT * FROM runs") == [
        (store.run_id, "smoke", "plans/smoke.yaml", "ab" * 32, "2026-11-25T00:16:28Z", None,
         "running", "live", f"smoke/{store.run_id}")]
    assert query(tmp_path, "SELECT * FROM jobs ORDER BY job_id") == [
        (store.run_id, "chat/m1/c=1", "chat_m1_c=1", "chat", "m1", '{"concurrency":1}', "ok",
         "2026-11-25T00:16:30Z", "2026-11-25T00:17:30Z"),
        (store.run_id, "chat/m2/c=1", "chat_m2_c=1", "chat", "m2", '{"concurrency":1}',
         "pending", None, None)]
    assert query(tmp_path, "SELECT job_id, name, value FROM metrics ORDER BY name") == [
        ("chat/m1/c=1", "error_rate", 0.0), ("chat/m1/c=1", "requests.failed", 0.0),
        ("chat/m1/c=1", "requests.ok", 10.0), ("chat/m1/c=1", "ttft_ms.p50", 12.5),
        ("chat/m1/c=1", "ttft_ms.p99", 40.0)]
    store.finish("ok")
    assert query(tmp_path, "SELECT status, finished_at FROM runs") == [
        ("ok", "2026-11-25T00:16:29Z")]


def test_rewriting_a_job_replaces_its_metrics(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.write_job(summary(JOBS[0], "interrupted"))
    metrics = {"throughput": {"output_tokens_per_s": 99}}
    store.write_job({**JOBS[0], "status": "ok", "metrics": metrics})
    assert query(tmp_path, "SELECT name, value FROM metrics") == [
        ("throughput.output_tokens_per_s", 99.0)]
    assert query(tmp_path, "SELECT status FROM jobs WHERE slug = 'chat_m1_c=1'") == [("ok",)]


def test_one_index_holds_the_runs_of_several_plans(tmp_path: Path) -> None:
    first = new_store(tmp_path, "smoke")
    second = new_store(tmp_path, "nightly.v2", jobs=JOBS[:1])
    first.write_job(summary(JOBS[0]))
    second.write_job(summary(JOBS[0], "failed"))
    second.finish("failed")
    assert query(tmp_path, "SELECT plan, status, run_dir FROM runs ORDER BY plan") == [
        ("nightly.v2", "failed", f"nightly.v2/{second.run_id}"),
        ("smoke", "running", f"smoke/{first.run_id}")]
    assert query(tmp_path, "SELECT run_id, status FROM jobs WHERE job_id = ? ORDER BY status",
                 "chat/m1/c=1") == [(second.run_id, "failed"), (first.run_id, "ok")]
    assert query(tmp_path, "SELECT count(*) FROM metrics") == [(10,)]


@pytest.mark.parametrize(
    "bad",
    [
        {"options": {"api_key": "sk-1"}},
        {"server": {"headers": {"Authorization": "Bearer x"}}},
        {"inventory_snapshot": {"models": [{"id": "m", "litellm_params": {}}]}},
        {"options": {"X-Api-Key": "k"}},
        {"options": {"openai_api_key": "k"}},
    ],
)
def test_secrets_are_refused(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="secret-like key at"):
        RunStore.create(str(tmp_path), "smoke", {**MANIFEST, **bad})
    assert not (tmp_path / "smoke").exists()
    store = new_store(tmp_path)
    with pytest.raises(ValueError, match="secret-like key"):
        store.write_job({**summary(JOBS[0]), "extra": bad})
    assert not Path(store.run_dir, "jobs", "chat_m1_c=1.json").exists()
    with pytest.raises(ValueError, match="secret-like key"):
        store.set_jobs([{**JOBS[0], "params": bad}])


@pytest.mark.parametrize("slug", ["", ".hidden", "..", "a/b", "a\\b", "a\0b", "../x"])
def test_unsafe_slugs_are_refused(tmp_path: Path, slug: str) -> None:
    store = new_store(tmp_path)
    with pytest.raises(ValueError, match="unsafe job slug"):
        store.set_jobs([{**JOBS[0], "slug": slug}])
    with pytest.raises(ValueError, match="unsafe job slug"):
        store.write_job({**summary(JOBS[0]), "slug": slug})
    with pytest.raises(ValueError, match="unsafe job slug"):
        store.request_log(slug)
    with pytest.raises(ValueError, match="unsafe job slug"):
        store.read_requests(slug)
    with pytest.raises(ValueError, match="unsafe job slug"):
        store.completed_job(slug, {})


@pytest.mark.parametrize("name", ["", ".x", "-x", "a/b", "../x", "a b", "index.sqlite"])
def test_unsafe_plan_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="unsafe plan name"):
        RunStore.create(str(tmp_path), name, MANIFEST)
    assert list(tmp_path.iterdir()) == []


def test_bad_job_lists_are_refused(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    with pytest.raises(ValueError, match="unique"):
        store.set_jobs([JOBS[0], {**JOBS[1], "slug": JOBS[0]["slug"]}])
    with pytest.raises(ValueError, match="not in the run manifest"):
        store.write_job({**summary(JOBS[0]), "slug": "other"})
    with pytest.raises(ValueError, match="has id"):
        store.write_job({**summary(JOBS[0]), "id": "chat/other"})
    with pytest.raises(ValueError, match="run status"):
        store.finish("done")


def test_open_reads_the_stored_run(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.write_job(summary(JOBS[0]))
    again = RunStore.open(store.run_dir)
    assert (again.run_id, again.plan_name, again.manifest) == (
        store.run_id, "smoke", store.manifest)
    assert again.index_path == store.index_path


def test_open_without_a_manifest_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"manifest\.json: no run manifest") as err:
        RunStore.open(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere" / "manifest.json") in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{\"run_id\": \"x\", \"jo", "unreadable run manifest"), ("[1, 2]", "not a run manifest"),
     ('{"jobs": []}', "not a run manifest"), (b"\xff\xfe", "unreadable run manifest")],
)
def test_open_a_corrupt_manifest_names_the_path(
    tmp_path: Path, text: str | bytes, message: str
) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError, match=message) as err:
        RunStore.open(str(tmp_path))
    assert str(err.value).startswith(str(path))
    assert "\n" not in str(err.value)


def test_a_corrupt_index_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "index.sqlite").write_text("not a database, just text " * 100)
    with pytest.raises(InputError, match="cannot update the results index"):
        RunStore.create(str(tmp_path), "smoke", MANIFEST)


def test_a_newer_index_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match="newer than this runner"):
        RunStore.create(str(tmp_path), "smoke", MANIFEST)


def test_a_crash_keeps_finished_jobs_and_resume_sees_them(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.write_job(summary(JOBS[0]))
    with store.request_log(JOBS[1]["slug"]) as log:
        log.write(record(0))
    store.write_job(summary(JOBS[1], "running"))
    del store  # the "kill": finish() is never called

    run_dir = query(tmp_path, "SELECT run_dir FROM runs")[0][0]
    again = RunStore.open(str(tmp_path / "results" / run_dir))
    assert again.manifest["status"] == "running"
    assert again.completed_job(JOBS[0]["slug"], JOBS[0]["params"]) == summary(JOBS[0])
    assert again.completed_job(JOBS[1]["slug"], JOBS[1]["params"]) is None
    again.set_jobs(JOBS)
    assert [j["status"] for j in again.manifest["jobs"]] == ["ok", "pending"]
    assert query(tmp_path, "SELECT slug, status FROM jobs ORDER BY slug") == [
        ("chat_m1_c=1", "ok"), ("chat_m2_c=1", "pending")]
    assert query(tmp_path, "SELECT count(*) FROM metrics") == [(5,)]
    again.reset_request_log(JOBS[1]["slug"])
    again.write_job(summary(JOBS[1]))
    again.finish("ok")
    assert RunStore.open(again.run_dir).manifest["status"] == "ok"


CRASHER = textwrap.dedent(
    """
    import json, os, sys, threading
    from runner.load.records import RequestRecord
    from runner.results.store import RunStore

    results, how = sys.argv[1], sys.argv[2]
    jobs = [{"id": f"b/m/{i}", "slug": f"b_m_{i}", "benchmark": "b", "model": "m",
             "params": {"i": i}} for i in range(2)]
    store = RunStore.create(results, "crash", {"plan": {"name": "crash"}})
    store.set_jobs(jobs)
    store.write_job({**jobs[0], "status": "ok", "metrics": {"requests": {"ok": 1}}})
    print(store.run_dir, flush=True)
    if how == "replace":  # die between writing a temp file and renaming it
        calls = iter(range(10))
        real_replace = os.replace
        os.replace = lambda a, b: real_replace(a, b) if next(calls) < 7 else os._exit(9)
    elif how != "torn":  # die at whatever moment the timer fires
        threading.Timer(float(how), lambda: os._exit(9)).start()
    log = store.request_log("b_m_1")
    for i in range(10**9):
        record = RequestRecord(index=i, itl_ms=[float(x) for x in range(3000)], ok=True)
        if how == "torn" and i == 30:  # die in the middle of a line
            with open(log.path, "a") as fh:
                fh.write(json.dumps(record.to_json())[:9999])
            os._exit(9)
        log.write(record)
        if i % 10 == 0:
            store.write_job({**jobs[1], "status": "running", "metrics": {"requests": {"ok": i}}})
    """
)


@pytest.mark.parametrize("how", ["0", "0.1", "0.25", "0.4", "replace", "torn"])
def test_a_killed_process_leaves_readable_files(tmp_path: Path, how: str) -> None:
    """Asserts what holds whenever the kill lands (a timer's kill may come before the second
    job started or long after): every file parses, and each job is pending or running."""
    done = subprocess.run([sys.executable, "-c", CRASHER, str(tmp_path), how],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    store = RunStore.open(done.stdout.strip())
    assert store.manifest["status"] == "running"
    assert store.completed_job("b_m_0", {"i": 0})
    records = store.read_requests("b_m_1")
    assert [r.index for r in records] == list(range(len(records)))
    assert all(len(r.itl_ms) == 3000 for r in records)
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        indexed = dict(conn.execute("SELECT slug, status FROM jobs").fetchall())
    listed = {job["slug"]: job["status"] for job in store.manifest["jobs"]}
    summary_path = Path(store.run_dir) / "jobs" / "b_m_1.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    assert listed["b_m_0"] == indexed["b_m_0"] == "ok"
    assert {listed["b_m_1"], indexed["b_m_1"]} <= {"pending", "running"}
    # write_job writes the summary, then the manifest, then the index: a later one never runs
    # ahead of an earlier one, and a summary counts only requests already in the log.
    if indexed["b_m_1"] == "running":
        assert listed["b_m_1"] == "running"
    if listed["b_m_1"] == "running":
        assert summary is not None
    if summary is not None:
        assert summary["status"] == "running"
        assert summary["metrics"]["requests"]["ok"] < len(records)
    # An interrupted atomic write leaves its temp file behind, never a torn file.
    temps = list(Path(store.run_dir).rglob(".tmp-*"))
    assert len(temps) <= 1
    if how == "replace":  # died renaming the manifest, after the summary of request 30
        assert len(records) == 31 and [t.name[:18] for t in temps] == [".tmp-manifest.json"]
        assert summary is not None and summary["metrics"]["requests"]["ok"] == 30
    if how == "torn":
        assert len(records) == 30


def test_a_run_directory_has_one_writer_until_it_closes_or_is_dropped(tmp_path: Path) -> None:
    from runner.errors import BusyError

    store = new_store(tmp_path)
    with pytest.raises(BusyError, match=f"run directory {re.escape(store.run_dir)} is locked"):
        RunStore.resume(store.run_dir)
    RunStore.open(store.run_dir)  # readers (report, compare) never need the lock
    store.close()
    again = RunStore.resume(store.run_dir)
    del again  # a dropped store lets go of its lock too
    RunStore.resume(store.run_dir).close()


def test_resume_jobs_keeps_every_recorded_job_and_notes_the_resume(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.write_job(summary(JOBS[0]))
    store.finish("interrupted")
    store.close()
    resumed = RunStore.resume(store.run_dir)
    resumed.resume_jobs([JOBS[1]], {"limit": "m2"})
    data = read_json(os.path.join(store.run_dir, "manifest.json"))
    assert [j["status"] for j in data["jobs"]] == ["ok", "pending"]
    assert data["status"] == "running" and data["resumes"][0]["limit"] == "m2"
    assert resumed.undone_jobs() == [JOBS[1]["id"]]
    with pytest.raises(ValueError, match="not in the run's record"):
        resumed.resume_jobs([{**JOBS[1], "id": "other", "slug": "other"}], {})
