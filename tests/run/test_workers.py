"""`runner apply --workers N` against the simulator: the same requests and arrivals as one
process, N streams kept in flight across workers, a killed worker's share recorded as
worker_lost, and Ctrl-C ending every process with the finished records kept."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import (
    jsonl_lines,
    requests_sent,
    run_dirs,
    simulator,
    stored_jobs,
    wait_for,
)
from cli_helpers import run_cli
from proc_helpers import HAS_PROC, alive, children, kill_leftover, wait_gone
from worker_plans import CLOSED, LONG, OPEN, PLAN, project

from runner.errors import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_JOBS_FAILED,
    EXIT_OK,
    StorageError,
)
from runner.load.exchange import Target
from runner.load.synthetic import SyntheticPrompts
from runner.run.workersplit import run_split


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for key, value in project(tmp_path, OPEN + CLOSED).items():
        monkeypatch.setenv(key, value)
    yield tmp_path


def apply_workers(capsys: pytest.CaptureFixture[str], results: str, workers: str,
                  ) -> dict[str, dict[str, Any]]:
    code, out, err = run_cli(capsys, "apply", "p.yaml", "--results", results, "--no-report",
                             "--no-probe", "--workers", workers, "-q")
    assert code == EXIT_OK, out + err
    return stored_jobs(Path(results), "p", warmup=True)


def test_two_workers_send_the_plan_s_requests_on_the_plan_s_schedule(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, two = apply_workers(capsys, "r1", "1"), apply_workers(capsys, "r2", "2")
    for name in ("open", "closed"):
        assert one[name]["workers"] == 1 and two[name]["workers"] == 2
        assert one[name]["metrics"]["requests"] == two[name]["metrics"]["requests"]
        indices = [sorted(r["index"] for r in job[name]["records"]) for job in (one, two)]
        assert indices[0] == indices[1] == list(range(len(indices[0])))
    arrivals = [[r.get("scheduled_ms") for r in sorted(job["open"]["records"],
                                                       key=lambda r: r["index"])
                 if not r["warmup"]] for job in (one, two)]
    assert len(arrivals[1]) == 40 and arrivals[0] == arrivals[1]  # the seeded schedule, exactly
    for job in (one, two):  # warm-ups (3 and 4, dealt over both workers) end before the window
        warm = [r for name in ("open", "closed") for r in job[name]["records"] if r["warmup"]]
        assert len(warm) == 7 and all(r["sent_ms"] + r["e2e_ms"] <= 0.5 for r in warm)
    [run] = run_dirs(here / "r2", "p")
    assert json.loads((run / "manifest.json").read_text())["options"]["workers"] == 2


def test_a_closed_loop_keeps_its_streams_in_flight_across_workers(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(here, CLOSED, ttft=20, itl=10, tokens=16)
    job = apply_workers(capsys, "r", "2")["closed"]
    measured = [r for r in job["records"] if not r["warmup"]]
    assert len(measured) == 64 and all(r["ok"] for r in measured)
    spans = [(r["sent_ms"], r["sent_ms"] + r["e2e_ms"]) for r in measured]
    # at each send: how many requests were in flight then (it included), over the first half
    busy = sorted(sum(start <= at < end for start, end in spans) for at, _ in spans)
    assert max(busy) == 8  # never more than concurrency, the two workers' 4 + 4
    assert busy[len(busy) // 2] >= 7  # and most of the time all of them


def test_sessions_are_refused_with_more_than_one_worker(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "p.yaml").write_text(PLAN.format(benchmarks=CLOSED.replace(
        "max_tokens: 16}", "max_tokens: 16, session: {turns: 2}}")))
    code, _, err = run_cli(capsys, "apply", "p.yaml", "--no-probe", "--workers", "2")
    assert code == EXIT_INVALID
    assert "--workers 2: job closed/m1 runs multi-turn sessions" in err
    assert "Traceback" not in err


def test_workers_must_be_a_count_or_auto(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run_cli(capsys, "apply", "p.yaml", "--workers", "0")
    assert stopped.value.code == EXIT_INVALID
    assert "argument --workers: give a whole number from 1, or auto, not '0'" in \
        capsys.readouterr().err


# --- real `runner apply` processes: a worker killed, Ctrl-C ------------------------------------

needs_proc = pytest.mark.skipif(not HAS_PROC, reason="needs /proc")


def start_apply(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "runner", "apply", "p.yaml", "--no-report", "--no-probe",
            "--results", "results", "--workers", "2"]
    return subprocess.Popen(argv, cwd=tmp_path, env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own process group, as in a terminal


def workers_of(pid: int) -> list[int]:
    """The apply's worker processes (not its simulator nor multiprocessing's tracker)."""
    found = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(child)
    return found


def records_so_far(tmp_path: Path) -> int:
    logs = list((tmp_path / "results" / "p").glob("*/jobs/*.requests.jsonl"))
    return sum(len(jsonl_lines(log)) for log in logs)


def both_sending(tmp_path: Path, proc: subprocess.Popen[str]) -> bool:
    return proc.poll() is not None or (len(workers_of(proc.pid)) == 2
                                       and records_so_far(tmp_path) >= 4)


@needs_proc
def test_a_killed_worker_s_share_is_recorded_as_worker_lost_and_fails_the_job(
        tmp_path: Path) -> None:
    env = project(tmp_path, LONG, ttft=10, itl=5, tokens=400)  # each answer about 2 s
    proc = start_apply(tmp_path, env)
    everyone: list[int] = []
    try:
        wait_for(lambda: both_sending(tmp_path, proc), 60.0, "both workers sending")
        assert proc.poll() is None
        everyone = children(proc.pid)
        os.kill(workers_of(proc.pid)[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == EXIT_JOBS_FAILED, out + err
    job = stored_jobs(tmp_path / "results", "p")["long"]
    assert job["status"] == "failed" and job["stopped"] == "worker_lost"
    assert "a worker (process or Ray actor) was lost" in job["error"]
    records = job["records"]
    assert sorted(r["index"] for r in records) == list(range(16))  # never fewer records
    lost = [r for r in records if r["error_kind"] == "worker_lost"]
    assert lost and all("killed by signal 9" in r["error"] for r in lost)
    assert all(r["ok"] for r in records if r["error_kind"] != "worker_lost")
    assert job["metrics"]["errors"]["worker_lost"] == len(lost)
    assert all(wait_gone(pid, 15.0) for pid in everyone)


@needs_proc
def test_ctrl_c_with_workers_exits_130_keeping_the_records_and_no_process(
        tmp_path: Path) -> None:
    env = project(tmp_path, LONG, ttft=10, itl=5, tokens=400)
    proc = start_apply(tmp_path, env)
    everyone: list[int] = []
    try:
        wait_for(lambda: both_sending(tmp_path, proc), 60.0, "both workers sending")
        everyone = children(proc.pid)
        assert len(everyone) >= 3  # the simulator and two workers
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pid in everyone:
            if not wait_gone(pid, 15.0):
                kill_leftover(pid)
                pytest.fail(f"process {pid} outlived apply")
    assert proc.returncode == EXIT_INTERRUPTED, out + err
    assert "Traceback" not in err
    job = stored_jobs(tmp_path / "results", "p")["long"]
    assert job["status"] == "interrupted" and job["workers"] == 2
    records = job["records"]
    assert records and len({r["index"] for r in records}) == len(records)
    assert not any(r["error_kind"] == "worker_lost" for r in records)
    # in-flight requests got their grace: they finished (2 s answers, 2 s grace) or were cut
    assert all(r["ok"] or r["error_kind"] == "cancelled" for r in records)
    assert not [pid for pid in everyone if alive(pid)]


PRIMED = """\
  - name: primed
    models: all
    workload: {synthetic: {input_tokens: 16, prefix: {count: 3, tokens: 32}}, max_tokens: 8}
    load: {concurrency: 4, requests: 20, repeat: 2, warmup_requests: 2}
"""


def test_priming_warm_ups_and_repetitions_with_workers(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(here, PRIMED)
    job = apply_workers(capsys, "r", "2")["primed"]
    assert job["workers"] == 2 and job["status"] == "ok"
    for repetition in (1, 2):  # each: 3 priming requests and 2 warm-ups, then 20 measured
        mine = [r for r in job["records"] if r["repetition"] == repetition]
        warm = [r for r in mine if r["warmup"]]
        assert sorted(r["index"] for r in mine) == list(range(25))
        assert len(warm) == 5 and all(r["sent_ms"] + r["e2e_ms"] <= 0.5 for r in warm)


def test_an_unreachable_server_stops_every_worker(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "configs" / "servers.yaml").write_text(
        "servers:\n  sim: {url: 'http://127.0.0.1:9', timeout_s: 2}\n")
    (here / "configs" / "models.yaml").write_text("models:\n  - {id: m1}\n")
    (here / "p.yaml").write_text(PLAN.format(benchmarks=CLOSED).replace(
        "fallback: false", "fallback: true"))
    code, out, err = run_cli(capsys, "apply", "p.yaml", "--no-report", "--no-probe",
                             "--workers", "2", "--source", "fallback")
    assert code == EXIT_JOBS_FAILED, out + err
    job = stored_jobs(here / "results", "p")["closed"]
    assert job["stopped"] == "unreachable" and job["workers"] == 2
    assert "server unreachable" in job["error"]
    assert job["metrics"]["requests"]["total"] < 64  # they gave up: nothing like the plan's 64


@needs_proc
def test_kill_9_of_apply_leaves_no_worker_behind(tmp_path: Path) -> None:
    env = project(tmp_path, LONG, ttft=10, itl=5, tokens=400)
    proc = start_apply(tmp_path, env)
    everyone: list[int] = []
    try:
        wait_for(lambda: both_sending(tmp_path, proc), 60.0, "both workers sending")
        everyone = children(proc.pid)
        assert len(workers_of(proc.pid)) == 2
        proc.kill()
        proc.communicate()
        left = [pid for pid in everyone if not wait_gone(pid, 15.0)]
        assert not left, f"processes {left} outlived apply"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pid in everyone:
            kill_leftover(pid)


def test_a_template_failing_in_a_worker_is_the_same_input_error_as_in_one_process(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "p.yaml").write_text(PLAN.format(benchmarks=CLOSED.replace(
        "synthetic: {input_tokens: 16}", 'template: "Say {{ 10 // (i - 7) }}"')))
    said = []
    for workers in ("1", "2"):
        code, _, err = run_cli(capsys, "apply", "p.yaml", "--no-report", "--no-probe",
                               "--results", f"r{workers}", "--workers", workers)
        assert code == EXIT_INVALID, err
        said.append(err.strip().splitlines()[-1])  # after the inventory line
    assert said[0] == said[1]
    assert said[1].startswith("error: workload.template (request 7): template error: ")


def test_a_record_the_runner_cannot_keep_stops_every_worker_and_is_raised() -> None:
    """on_record raising (a full disk: StorageError) ends the job as in one process, where
    the request that met it crashes the job: every worker stops and the error is raised."""
    kept: list[int] = []

    def on_record(record: Any) -> None:
        if len(kept) == 5:
            raise StorageError("disk full: jobs/x.requests.jsonl")
        kept.append(record.index)

    params = {"concurrency": 4, "requests": 400, "max_tokens": 50, "request_timeout_s": 30}
    prompts = SyntheticPrompts(16, 0, 0, chat=True)
    with simulator("--models", "m1", "--itl-ms", "5") as (url, _), \
            pytest.raises(StorageError, match="disk full"):
        asyncio.run(run_split(Target(url, {}, "m1"), params, prompts, 2, on_record=on_record))
    assert len(kept) == 5


@needs_proc
def test_sigint_then_sigterm_to_the_group_cancels_in_flight_requests_in_every_worker(
        tmp_path: Path) -> None:
    """A cancelled CI job: SIGINT, then SIGTERM, to the whole process group. The workers obey
    the runner: its second signal cancels their in-flight requests (none lost to a worker's
    own death by SIGTERM). The simulator runs outside the group: SIGTERM would end it."""
    with simulator("--models", "m1", "--itl-ms", "10", "--output-tokens", "400") as (url, _):
        env = project(tmp_path, LONG)  # answers of 4 s, grace 2 s
        (tmp_path / "configs" / "servers.yaml").write_text(
            f"servers:\n  sim: {{url: '{url}', timeout_s: 5}}\n")
        proc = start_apply(tmp_path, env)
        try:
            wait_for(lambda: proc.poll() is not None or (len(workers_of(proc.pid)) == 2
                     and requests_sent(url) >= 4), 60.0, "both workers sending")
            os.killpg(proc.pid, signal.SIGINT)
            os.killpg(proc.pid, signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == EXIT_INTERRUPTED, out + err
    records = stored_jobs(tmp_path / "results", "p")["long"]["records"]
    kinds = {r["error_kind"] for r in records}
    assert kinds == {"cancelled"}, kinds


SATURATED = """\
  - name: flood
    models: all
    workload: {synthetic: {input_tokens: 8}, max_tokens: 16}
    load: {rate: 40, arrival: constant, duration_s: 60, request_timeout_s: 120}
"""


def test_an_open_loop_beyond_capacity_stops_every_worker_as_saturated(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The simulator completes at most 10 requests/s (2 streams of 200 ms); 40/s are sent by
    two workers, each judging its 20/s: the first to see saturation stops the other."""
    project(here, SATURATED)
    (here / "configs" / "servers.yaml").write_text(
        "servers:\n  sim: {kind: mock, models: [m1], ttft_ms: 50, itl_ms: 10, max_streams: 2}\n")
    job = apply_workers(capsys, "r", "2")["flood"]
    assert job["workers"] == 2 and job["stopped"] == "saturated"
    stop = job["early_stop"]
    assert stop["target_per_s"] == 20 and stop["completed_per_s"] <= 10 * 1.05
    assert stop["at_s"] < 60 and len(job["records"]) < 2400 * 0.75


def test_a_failing_hook_before_the_window_stops_the_workers_and_is_raised() -> None:
    """before_window (the scrape of the server's counters after the warm-ups) raising: every
    worker stops and the error is raised, as in one process; never a hang waiting to open."""
    async def scrape() -> None:
        raise RuntimeError("scrape broke")

    params = {"concurrency": 2, "requests": 20, "warmup_requests": 2, "max_tokens": 4}
    with simulator("--models", "m1") as (url, _), pytest.raises(RuntimeError, match="broke"):
        asyncio.run(asyncio.wait_for(  # a hang fails the test (TimeoutError), never stalls it
            run_split(Target(url, {}, "m1"), params, SyntheticPrompts(16, 0, 0, True), 2,
                      on_record=lambda record: None, before_window=scrape), 60))
