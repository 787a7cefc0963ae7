"""`runner apply --executor ray` (issue 15 §2) against a real local Ray cluster and the
simulator: the records equal a local run's, a killed actor's share is recorded as its failure,
and without --executor ray nothing imports ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import jsonl_lines, stored_jobs, wait_for
from ray_cluster import RayCluster, ray_cluster  # noqa: F401 (the fixture)
from worker_plans import CLOSED, LONG, OPEN, project

from runner.errors import EXIT_INVALID, EXIT_JOBS_FAILED, EXIT_OK


def start_apply(tmp_path: Path, env: dict[str, str], results: str,
                *options: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "runner", "apply", "p.yaml", "--no-report", "--no-probe",
            "--results", results, *options]
    return subprocess.Popen(argv, cwd=tmp_path, env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def apply(tmp_path: Path, env: dict[str, str], results: str, *options: str,
          ) -> tuple[int, str]:
    proc = start_apply(tmp_path, env, results, *options)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, out + err


def arrivals(job: dict[str, Any]) -> list[Any]:
    return [r.get("scheduled_ms") for r in sorted(job["records"], key=lambda r: r["index"])
            if not r["warmup"]]


def test_ray_actors_send_the_plan_s_requests_on_the_plan_s_schedule(
        tmp_path: Path, ray_cluster: RayCluster) -> None:  # noqa: F811
    env = {**project(tmp_path, OPEN + CLOSED), **ray_cluster.env}
    code, out = apply(tmp_path, env, "local")
    assert code == EXIT_OK, out
    code, out = apply(tmp_path, env, "ray", "--executor", "ray", "--workers", "2",
                      "--ray-address", ray_cluster.address)
    assert code == EXIT_OK, out
    assert f"executor: Ray cluster at {ray_cluster.address}" in out
    local = stored_jobs(tmp_path / "local", "p", warmup=True)
    ray = stored_jobs(tmp_path / "ray", "p", warmup=True)
    for name in ("open", "closed"):
        assert (local[name]["executor"], local[name]["workers"]) == ("local", 1)
        assert (ray[name]["executor"], ray[name]["workers"]) == ("ray", 2)
        assert local[name]["metrics"]["requests"] == ray[name]["metrics"]["requests"]
        indices = [sorted(r["index"] for r in job[name]["records"]) for job in (local, ray)]
        assert indices[0] == indices[1] == list(range(len(indices[0])))
        assert all(r["ok"] for r in ray[name]["records"])
    assert len(arrivals(ray["open"])) == 40
    assert arrivals(local["open"]) == arrivals(ray["open"])  # the one seeded schedule, exactly


def actor_pids() -> list[int]:
    """Processes of Ray actors running a share (Ray titles them ray::ShareActor...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::ShareActor"):
                found.append(int(entry.name))
    return found


def records_so_far(tmp_path: Path) -> int:
    logs = (tmp_path / "results" / "p").glob("*/jobs/*.requests.jsonl")
    return sum(len(jsonl_lines(log)) for log in logs)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_a_killed_actor_s_share_is_recorded_as_worker_lost(
        tmp_path: Path, ray_cluster: RayCluster) -> None:  # noqa: F811
    env = {**project(tmp_path, LONG, tokens=400), **ray_cluster.env}  # each answer about 2 s
    proc = start_apply(tmp_path, env, "results", "--executor", "ray", "--workers", "2",
                       "--ray-address", ray_cluster.address)
    try:
        wait_for(lambda: proc.poll() is not None or (len(actor_pids()) >= 2
                                                     and records_so_far(tmp_path) >= 4),
                 120.0, "both actors sending")
        assert proc.poll() is None
        os.kill(actor_pids()[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == EXIT_JOBS_FAILED, out + err
    job = stored_jobs(tmp_path / "results", "p")["long"]
    assert job["status"] == "failed" and job["stopped"] == "worker_lost"
    records = job["records"]
    assert sorted(r["index"] for r in records) == list(range(16))  # never fewer records
    lost = [r for r in records if r["error_kind"] == "worker_lost"]
    assert lost and all("Ray actor" in r["error"] for r in lost)
    assert all(r["ok"] for r in records if r["error_kind"] != "worker_lost")
    assert job["metrics"]["errors"]["worker_lost"] == len(lost)
    wait_for(lambda: not actor_pids(), 30.0, "the run's actors gone")


def test_a_cluster_that_is_not_there_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = project(tmp_path, LONG)
    started = time.monotonic()
    code, out = apply(tmp_path, env, "results", "--executor", "ray",
                      "--ray-address", "127.0.0.1:9")
    assert code == EXIT_INVALID and time.monotonic() - started < 60, out
    assert "--ray-address 127.0.0.1:9: no Ray cluster answers there" in out
    assert "Traceback" not in out and not (tmp_path / "results").exists()
    code, out = apply(tmp_path, {**env, "RAY_ADDRESS": ""}, "results", "--executor", "ray")
    assert code == EXIT_INVALID and "--executor ray needs a cluster" in out, out


def test_without_executor_ray_nothing_imports_ray(tmp_path: Path) -> None:
    env = project(tmp_path, LONG.replace("max_tokens: 400", "max_tokens: 4"))
    script = ("import sys; from runner.main import main; "
              "code = main(['apply', 'p.yaml', '--no-report', '--no-probe', '--workers', '2']); "
              "print('ray' in sys.modules, code)")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, text=True,
                          env={**os.environ, **env}, capture_output=True, timeout=120)
    assert done.stdout.split()[-2:] == ["False", "0"], done.stdout + done.stderr


TWO_SERVERS = """\
servers:
  eu: {kind: mock, models: [m1], ttft_ms: 10, itl_ms: 5, output_tokens: 200}
  us: {kind: mock, models: [m1], ttft_ms: 10, itl_ms: 5, output_tokens: 200}
"""
TWO_PLAN = """\
version: 1
name: p
inventory: {servers: [eu, us], fallback: false}
benchmarks:
  - name: chat
    models: all
    workload: {synthetic: {input_tokens: 16}, max_tokens: 200}
    load: {concurrency: 4, requests: 12}
"""


def test_jobs_of_two_servers_run_side_by_side_on_the_cluster(
        tmp_path: Path, ray_cluster: RayCluster) -> None:  # noqa: F811
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(TWO_SERVERS)
    (tmp_path / "p.yaml").write_text(TWO_PLAN)
    env = {"RUNNER_CONFIG_DIR": str(tmp_path / "configs"), **ray_cluster.env}
    code, out = apply(tmp_path, env, "results", "--executor", "ray", "--workers", "2",
                      "--forks", "2", "--ray-address", ray_cluster.address)
    assert code == EXIT_OK, out
    jobs = stored_jobs(tmp_path / "results", "p", by="id")
    assert set(jobs) == {"eu:chat/m1", "us:chat/m1"}
    for job in jobs.values():
        assert (job["executor"], job["workers"], job["status"]) == ("ray", 2, "ok")
        assert sorted(r["index"] for r in job["records"]) == list(range(12))
    spans = [(job["started_at"], job["finished_at"]) for job in jobs.values()]
    assert max(s for s, _ in spans) < min(f for _, f in spans)  # side by side, not in turn


def test_more_workers_than_the_cluster_has_cpus_is_refused_before_the_run(
        tmp_path: Path, ray_cluster: RayCluster) -> None:  # noqa: F811
    # Seen: on a 2-CPU cluster --workers 4 waited 120 s for CPUs, then failed the job with
    # 100 worker_lost records.
    env = {**project(tmp_path, LONG), **ray_cluster.env}
    code, out = apply(tmp_path, env, "results", "--executor", "ray", "--workers", "5",
                      "--ray-address", ray_cluster.address)
    assert code == EXIT_INVALID, out
    assert (f"--workers 5: the Ray cluster at {ray_cluster.address} has 4 CPUs, one per "
            "worker; ask for at most 4, or --workers auto") in out
    assert "Traceback" not in out and not (tmp_path / "results").exists()
