"""What prompts `runner apply` sends, seen by a scripted server: each job and each run its own
unless the plan's `prompt_reuse` says otherwise, warm-ups never the measured prompts, and a
--resume the prompts of the run it resumes. Once request i sent the same text in every job and
rerun, and vLLM's prefix cache answered them (TTFT p50 399 ms, then 52 ms)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import apply_process, run_dirs
from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, STOP, text, usage_chunk

from runner.errors import EXIT_INTERRUPTED, EXIT_OK

PLAN = """\
version: 1
name: prompts
benchmarks:
  - name: b
    models: all
    workload: {{synthetic: {{input_tokens: 12}}{reuse}}}
    load: {{concurrency: 1, requests: {requests}, warmup_requests: {warmup}}}
    matrix: {{max_tokens: [16, 17]}}
"""
ANSWER = [(0, ROLE), (1, text("ok")), (2, STOP), (3, usage_chunk(completion_tokens=1)), (4, DONE)]
Sent = dict[int, list[str]]  # max_tokens (the job) -> prompt texts in the order sent


def sent(received: list[dict[str, Any]]) -> Sent:
    # a body without max_tokens (calibration's /tokenize, issue 14 §6) goes under None
    by_job: Sent = {}
    for body in received:
        by_job.setdefault(body.get("max_tokens"), []).append(body["messages"][0]["content"])
    return by_job


def write(tmp_path: Path, url: str, reuse: str | None, requests: int = 3,
          warmup: int = 1) -> None:
    (tmp_path / "configs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "configs" / "servers.yaml").write_text(f"servers:\n  s:\n    url: {url}\n")
    given = f", prompt_reuse: {reuse}" if reuse else ""
    (tmp_path / "plan.yaml").write_text(
        PLAN.format(reuse=given, requests=requests, warmup=warmup))


def apply(tmp_path: Path, *extra: str) -> None:
    argv = [sys.executable, "-m", "runner", "apply", "plan.yaml", "--config-dir", "configs",
            "--results", "results", "--no-report", *extra]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CI": "true"})
    assert done.returncode == EXIT_OK, done.stdout + done.stderr


def two_runs(tmp_path: Path, reuse: str | None) -> tuple[Sent, Sent]:
    """What two runs of the two-job plan sent, as (first run, second run)."""
    runs = []
    for _ in range(2):
        script = Script(ANSWER)
        with scripted_server(script) as url:
            write(tmp_path, url, reuse)
            apply(tmp_path)
        runs.append(sent(script.received))
    return runs[0], runs[1]


def measured(run: Sent, job: int) -> list[str]:
    return run[job][1:]  # the first is the warm-up (concurrency 1: sent in order)


@pytest.mark.parametrize("reuse", [None, "none"])
def test_every_job_and_every_run_sends_prompts_of_its_own(tmp_path: Path,
                                                          reuse: str | None) -> None:
    first, second = two_runs(tmp_path, reuse)
    texts = [t for run in (first, second) for job in (16, 17) for t in measured(run, job)]
    assert len(texts) == 12 and len(set(texts)) == 12
    warmups = {run[job][0] for run in (first, second) for job in (16, 17)}
    assert all(w.startswith("w0 ") for w in warmups) and not warmups & set(texts)
    assert [t.split()[0] for t in measured(first, 16)] == ["0", "1", "2"]
    assert len(set(measured(first, 16)[0].split()[1:]) ^ set(measured(first, 17)[0].split()[1:]))


def test_prompt_reuse_always_sends_request_i_the_same_text_in_every_job_and_run(
        tmp_path: Path) -> None:
    first, second = two_runs(tmp_path, "always")
    assert measured(first, 16) == measured(first, 17) == measured(second, 16) \
        == measured(second, 17)
    assert len(set(measured(first, 16))) == 3


def test_prompt_reuse_across_runs_and_across_jobs(tmp_path: Path) -> None:
    first, second = two_runs(tmp_path / "runs", "across_runs")
    assert measured(first, 16) == measured(second, 16) != measured(first, 17)
    assert measured(first, 17) == measured(second, 17)
    first, second = two_runs(tmp_path / "jobs", "across_jobs")
    assert measured(first, 16) == measured(first, 17) != measured(second, 16)
    assert measured(second, 16) == measured(second, 17)


class Tripwire(list[dict[str, Any]]):
    """The server's list of received bodies: at the 2nd request of the job with max_tokens 17
    it interrupts the apply process (SIGINT, as Ctrl-C)."""

    pid: int = 0  # 0: disarmed

    def append(self, body: dict[str, Any]) -> None:
        super().append(body)
        if self.pid and sum(b.get("max_tokens") == 17 for b in self) == 2:
            os.kill(self.pid, signal.SIGINT)
            self.pid = 0


def test_a_resume_sends_the_prompts_the_interrupted_run_sent(tmp_path: Path) -> None:
    tripwire = Tripwire()
    script = Script(ANSWER, received=tripwire)
    with scripted_server(script) as url:
        write(tmp_path, url, None, requests=6, warmup=0)
        proc = apply_process("plan.yaml", "--config-dir", "configs", "--results", "results",
                             "--no-report", cwd=tmp_path, env={"CI": "true"})
        tripwire.pid = proc.pid
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == EXIT_INTERRUPTED, out + err
        interrupted = sent(list(tripwire))[17]
        assert 2 <= len(interrupted) < 6
        [run] = run_dirs(tmp_path / "results", "prompts")
        del tripwire[:]
        apply(tmp_path, "--resume", str(run.relative_to(tmp_path)))
    resumed = sent(list(tripwire))
    assert 16 not in resumed  # done before the interrupt: not run again
    assert resumed[17][:len(interrupted)] == interrupted and len(resumed[17]) == 6
