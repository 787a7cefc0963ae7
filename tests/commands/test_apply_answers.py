"""`runner apply` against a server that aborts every answer itself, as vLLM does: 200, five
tokens, `finish_reason: abort`, usage, [DONE]. Once 6 ok requests and exit 0; now 6 failures
of kind aborted, kept out of every statistic, and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from apply_helpers import jsonl_lines
from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, chunk, text, usage_chunk

from runner.errors import EXIT_JOBS_FAILED

PLAN = """\
version: 1
name: aborts
benchmarks:
  - {name: b, models: all, load: {requests: 6, concurrency: 2}, workload: {max_tokens: 8}}
"""
ABORT = [(0, ROLE), *[(5 * i, text("tok ")) for i in range(1, 6)], (30, chunk(finish="abort")),
         (31, usage_chunk(completion_tokens=5)), (32, DONE)]


def test_answers_the_server_aborted_fail_the_job(tmp_path: Path) -> None:
    with scripted_server(Script(ABORT)) as url:
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "servers.yaml").write_text(
            f"servers:\n  vllm:\n    url: {url}\n")
        (tmp_path / "plan.yaml").write_text(PLAN)
        argv = [sys.executable, "-m", "runner", "apply", "plan.yaml", "--config-dir", "configs",
                "--results", "results"]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "CI": "true"})
    assert done.returncode == EXIT_JOBS_FAILED, done.stdout + done.stderr
    assert "finish_reason abort" in done.stdout
    records = jsonl_lines(next(tmp_path.rglob("*.requests.jsonl")))
    assert [(r["ok"], r["error_kind"], r["finish_reason"]) for r in records] == [
        (False, "aborted", "abort")] * 6
    summary = json.loads(next((tmp_path / "results").rglob("jobs/*.json")).read_text())
    metrics = summary["metrics"]
    assert summary["status"] == "failed" and metrics["errors"] == {"aborted": 6}
    assert metrics["requests"]["ok"] == 0 and metrics["ttft_ms"]["count"] == 0
