"""Helpers for apply tests: simulator processes we can kill, and `runner apply` subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def simulator(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, Any]]:
    """`runner mock-server --port 0 ARGS` in its own process: yields (url, process)."""
    argv = [sys.executable, "-m", "runner", "mock-server", "--port", "0", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert "listening on " in line, line
        yield line.strip().rsplit(" ", 1)[-1], proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def apply_process(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "runner", "apply", *args]
    return subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(predicate: Any, timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_dirs(results: Path, plan: str) -> list[Path]:
    folder = results / plan
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def manifest(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "manifest.json").read_text())
    return data


def jsonl_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stored_jobs(results: Path, plan: str, *, by: str = "benchmark",
                warmup: bool = False) -> dict[str, dict[str, Any]]:
    """The jobs of the one run of `plan` under `results`, keyed by their `by` field: each job's
    summary with its request records under `records` (warm-ups only when `warmup`)."""
    [run] = run_dirs(results, plan)
    jobs = {}
    for job in manifest(run)["jobs"]:
        summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
        summary["records"] = [r for r in jsonl_lines(run / "jobs" / f"{job['slug']}.requests.jsonl")
                              if warmup or not r["warmup"]]
        jobs[summary[by]] = summary
    return jobs


def requests_sent(url: str) -> int:
    """How many requests the simulator at `url` has received so far (GET /mock/stats)."""
    with urllib.request.urlopen(f"{url}/mock/stats", timeout=5) as resp:
        total: int = json.load(resp)["requests"]["total"]
    return total


@contextmanager
def held_by_another_process(script: str, arg: str) -> Iterator[subprocess.Popen[str]]:
    """A child process running `script` with `arg`: it prints `locked` once it holds its lock and
    holds it until the block ends (its stdin is closed)."""
    proc = subprocess.Popen([sys.executable, "-c", script, arg], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        assert proc.stdin is not None
        if not proc.stdin.closed:
            proc.stdin.close()
        proc.wait(30)
