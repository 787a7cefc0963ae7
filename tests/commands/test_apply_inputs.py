"""Every file a user gives runner (a plan, a lock, servers.yaml, models.yaml, a dataset) must be
a regular file of a bounded size: a FIFO or /dev/urandom hung `plan`/`apply`, /dev/zero was
exit 70. Real processes with a deadline, since a regression would hang."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.defaults import MAX_DATASET_BYTES, MAX_DOCUMENT_BYTES
from runner.errors import EXIT_INVALID

SERVERS = """\
servers:
  sim: {kind: mock, models: [m1], ttft_ms: 0, itl_ms: 0, output_tokens: 4}
"""
PLAN = """\
version: 1
name: p
inventory: {server: sim, fallback: false}
benchmarks:
  - name: b
    models: all
    workload: {dataset: prompts.jsonl, max_tokens: 4}
    load: {concurrency: 1, requests: 2}
"""
DEADLINE_S = 60  # a hang is what is being tested: far above the second these take


def fifo(path: Path) -> None:
    os.mkfifo(path)


def dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def dev_urandom(path: Path) -> None:
    path.symlink_to("/dev/urandom")


def too_large(limit: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(b"")
        os.truncate(path, limit + 1)  # sparse: nothing is stored
    return make


KINDS = {
    "fifo": (fifo, "must be a regular file, not a FIFO (named pipe); save what it holds to a "
                   "file and give that file"),
    "dev-zero": (dev_zero, "must be a regular file, not a character device"),
    "dev-urandom": (dev_urandom, "must be a regular file, not a character device"),
    "too-large": (too_large(MAX_DOCUMENT_BYTES), "is larger than the 64 MiB runner reads; "
                                                 "give a smaller file"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n')
    return tmp_path


def runner(project: Path, *argv: str) -> tuple[int, str]:
    env = {**os.environ, "RUNNER_CONFIG_DIR": str(project / "configs")}
    done = subprocess.run([sys.executable, "-m", "runner", *argv], cwd=project, env=env,
                          capture_output=True, text=True, timeout=DEADLINE_S)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("name", ["x.yaml", "x.json"])
def test_a_plan_or_lock_path_that_is_no_regular_file(project: Path, kind: str,
                                                     name: str) -> None:
    make, message = KINDS[kind]
    make(project / name)
    what = "a plan"
    for command in ("plan", "apply", "validate"):
        code, output = runner(project, command, name)
        assert code == EXIT_INVALID, output
        assert f"{name}: {what} {message}" in output, output
    assert not (project / "results").exists()


@pytest.mark.parametrize(("config", "kind"), [
    ("servers.yaml", "fifo"), ("models.yaml", "dev-zero"), ("models.yaml", "fifo"),
])
def test_a_config_file_that_is_no_regular_file(project: Path, config: str, kind: str) -> None:
    """It used to count as missing (a models.yaml on /dev/zero was silently ignored)."""
    make, message = KINDS[kind]
    (project / "configs" / config).unlink(missing_ok=True)
    make(project / "configs" / config)
    code, output = runner(project, "plan", "plan.yaml", "--source", "fallback")
    assert code == EXIT_INVALID, output
    assert f"configs/{config}: a " in output and message in output, output
    code, output = runner(project, "validate", f"configs/{config}")
    assert code == EXIT_INVALID and message in output, output


@pytest.mark.parametrize("kind", ["fifo", "dev-urandom", "too-large"])
def test_a_dataset_that_is_no_regular_file(project: Path, kind: str) -> None:
    make = too_large(MAX_DATASET_BYTES) if kind == "too-large" else KINDS[kind][0]
    message = ("is larger than the 256 MiB runner reads" if kind == "too-large"
               else KINDS[kind][1])
    (project / "prompts.jsonl").unlink()
    make(project / "prompts.jsonl")
    for command in ("validate", "apply"):
        code, output = runner(project, command, "plan.yaml")
        assert code == EXIT_INVALID, output
        assert f"plan.yaml:7:25: the dataset prompts.jsonl {message}" in output, \
            output
    assert not (project / "results").exists()
