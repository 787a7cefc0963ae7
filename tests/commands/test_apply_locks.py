"""One writer per run directory, one benchmark per server: two real `runner apply` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apply_helpers import (
    apply_process,
    held_by_another_process,
    manifest,
    requests_sent,
    run_dirs,
    simulator,
    wait_for,
)

from runner.errors import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK
from runner.main import duration, main

# One job of one round: 16 streams of 40 tokens at 25 ms, about a second; LONG: ten rounds.
PLAN = """\
version: 1
name: p
inventory: {server: sim, fallback: false}
benchmarks:
  - name: throughput
    tags: [throughput]
    models: all
    workload: {synthetic: {input_tokens: 16}, max_tokens: 40}
    load: {concurrency: 16, requests: 16, request_timeout_s: 20}
"""
LONG = PLAN.replace("name: p", "name: long").replace("requests: 16,", "requests: 160,")
REQUESTS = 16
HOLDER = """\
import contextlib, os, sys
from runner.run.serverlock import lock_servers
stack = contextlib.ExitStack()
lock_servers(stack, [("sim", sys.argv[1])], os.environ, timeout_s=0, command="holder")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A simulator, a config naming it, and the plans: (url, env for apply)."""
    with simulator("--models", "m1", "--itl-ms", "25") as (url, _):
        configs = tmp_path / "configs"
        configs.mkdir()
        (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {url}\n")
        (tmp_path / "p.yaml").write_text(PLAN)
        (tmp_path / "long.yaml").write_text(LONG)
        yield url, {"RUNNER_CONFIG_DIR": str(configs)}


def start(tmp_path: Path, env: dict[str, str], plan: str, *extra: str) -> subprocess.Popen[str]:
    return apply_process(plan, "--results", "results", "--no-report", "--no-probe", "--tags",
                         "throughput",
                         *extra, cwd=tmp_path, env=env)


def start_sending(tmp_path: Path, url: str, env: dict[str, str], plan: str,
                  *extra: str) -> subprocess.Popen[str]:
    """An apply that has begun to send its requests."""
    before = requests_sent(url)
    proc = start(tmp_path, env, plan, *extra)
    wait_for(lambda: requests_sent(url) > before or proc.poll() is not None, what="requests")
    assert proc.poll() is None, proc.communicate()
    return proc


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    return finish(proc)[0]


def request_indexes(run: Path) -> list[int]:
    [log] = (run / "jobs").glob("*.requests.jsonl")
    return sorted(json.loads(line)["index"] for line in log.read_text().splitlines())


def test_a_second_apply_against_a_busy_server_is_refused_naming_the_holder(
    tmp_path: Path, sim: tuple[str, dict[str, str]]
) -> None:
    url, env = sim
    first = start_sending(tmp_path, url, env, "long.yaml")
    code, out, err = finish(start(tmp_path, env, "p.yaml"))
    assert code == EXIT_INVALID and not out, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"server 'sim' ({url}) is locked by pid {first.pid} on host " in err
    assert f"{socket.gethostname()}, since 20" in err and "--lock-timeout" in err
    assert run_dirs(tmp_path / "results", "p") == []  # refused before making a run
    assert stop(first) == EXIT_INTERRUPTED


def test_lock_timeout_waits_until_the_server_is_free(
    tmp_path: Path, sim: tuple[str, dict[str, str]]
) -> None:
    url, env = sim
    with held_by_another_process(HOLDER, str(url)) as holder:
        waiting = start(tmp_path, env, "p.yaml", "--lock-timeout", "2m")
        assert waiting.stderr is not None
        line = waiting.stderr.readline()  # printed once it has found the server locked
        assert line.startswith(f"waiting up to 120 s for server 'sim' ({url}), locked by "
                               f"pid {holder.pid} on host "), line
        released = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    code, out, err = finish(waiting)
    assert code == EXIT_OK and "RECAP" in out, err
    [run] = run_dirs(tmp_path / "results", "p")
    [summary] = [json.loads(p.read_text()) for p in (run / "jobs").glob("*.json")]
    assert summary["started_at"] > released  # it waited: never side by side


def test_lock_timeout_runs_out_with_exit_2(
    tmp_path: Path, sim: tuple[str, dict[str, str]]
) -> None:
    url, env = sim
    with held_by_another_process(HOLDER, str(url)) as holder:
        code, out, err = finish(start(tmp_path, env, "p.yaml", "--lock-timeout", "300ms"))
    assert code == EXIT_INVALID and not out, err
    assert err.startswith("waiting up to 0.3 s") and f"is locked by pid {holder.pid}" in err
    assert run_dirs(tmp_path / "results", "p") == []


def test_two_resumes_of_one_run_the_second_is_refused_and_nothing_runs_twice(
    tmp_path: Path, sim: tuple[str, dict[str, str]]
) -> None:
    url, env = sim
    assert stop(start_sending(tmp_path, url, env, "long.yaml")) == EXIT_INTERRUPTED
    [run] = run_dirs(tmp_path / "results", "long")
    first = start_sending(tmp_path, url, env, "long.yaml", "--resume", str(run))
    second = start(tmp_path, env, "long.yaml", "--resume", str(run), "--lock-timeout", "2m")
    code, out, err = finish(second)
    assert code == EXIT_INVALID and not out, err
    assert f"run directory {run} is locked by pid {first.pid} on host " in err
    assert stop(first) == EXIT_INTERRUPTED
    indexes = request_indexes(run)
    assert indexes == sorted(set(indexes))  # one writer: no request twice in the log


def test_a_killed_apply_leaves_no_lock_behind(
    tmp_path: Path, sim: tuple[str, dict[str, str]]
) -> None:
    url, env = sim
    killed = start_sending(tmp_path, url, env, "p.yaml")
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=30)
    [run] = run_dirs(tmp_path / "results", "p")
    assert manifest(run)["status"] == "running"  # as a crash leaves it
    code, _, err = finish(start(tmp_path, env, "p.yaml", "--resume", str(run)))
    assert code == EXIT_OK, err  # neither the run's nor the server's lock outlived its holder
    assert manifest(run)["status"] == "ok" and request_indexes(run) == list(range(REQUESTS))


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0), ("90", 90.0), ("90s", 90.0), ("500ms", 0.5), ("10m", 600.0), ("1.5h", 5400.0),
    (" 2M ", 120.0),
])
def test_lock_timeout_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1s", "nan", "inf", "10d", ""])
def test_a_bad_lock_timeout_is_a_usage_error(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["apply", "p.yaml", f"--lock-timeout={text}"])
    assert exited.value.code == EXIT_INVALID
    assert f"--lock-timeout: invalid duration {text!r}" in capsys.readouterr().err


def test_a_signal_while_waiting_for_the_server_is_exit_130_and_makes_no_run(
    tmp_path: Path, sim: tuple[str, dict[str, str]]
) -> None:
    url, env = sim
    with held_by_another_process(HOLDER, str(url)):
        waiting = start(tmp_path, env, "p.yaml", "--lock-timeout", "2m")
        assert waiting.stderr is not None
        assert waiting.stderr.readline().startswith("waiting up to 120 s")
        waiting.send_signal(signal.SIGTERM)
        code, out, err = finish(waiting)
    assert code == EXIT_INTERRUPTED and err == "interrupted\n" and not out
    assert run_dirs(tmp_path / "results", "p") == []


def test_an_embedded_simulator_takes_no_server_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        "servers:\n  sim:\n    kind: mock\n    models: [m1]\n    ttft_ms: 1\n    itl_ms: 1\n")
    (tmp_path / "p.yaml").write_text(PLAN.replace("requests: 16", "requests: 2"))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.chdir(tmp_path)
    assert main(["apply", "p.yaml", "--no-report"]) == EXIT_OK, capsys.readouterr().err
    assert not (Path(os.environ["RUNNER_CACHE_DIR"]) / "locks").exists()
