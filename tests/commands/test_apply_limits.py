"""`runner plan` and `runner apply` against a vLLM-like server whose /v1/models says
max_model_len 4096. Once a 4,000-token prompt with max_tokens 200 ran there without a word (the
engine returned 84 tokens, finish_reason length, job ok); now both warn in one line, and the job
records `model_limits` so its verdict can say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, STOP, text, usage_chunk

from runner.errors import EXIT_OK

PLAN = """\
version: 1
name: limits
benchmarks:
  - name: b
    models: all
    workload: {synthetic: {input_tokens: 4000}, extra_body: {ignore_eos: true}}
    load: {requests: 1}
    matrix: {max_tokens: [96, 200]}
"""
ANSWER = [(0, ROLE), (1, text("ok")), (2, STOP), (3, usage_chunk(completion_tokens=1)), (4, DONE)]
VLLM_MODEL = {"id": "tiny", "object": "model", "owned_by": "vllm", "max_model_len": 4096}
WARNING = ("WARNING: b: job b/tiny/max_tokens=200: model tiny takes less than asked "
           "(input_tokens 4000 + max_tokens 200 = 4200 > max_model_len 4096, as the inventory "
           "says): the server will cut answers short or refuse them; lower input_tokens or "
           "max_tokens, or leave the model out with !tiny")


def runner(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runner", *argv, "--config-dir", "configs"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CI": "true"})


def test_plan_and_apply_warn_and_record_lengths_beyond_the_model(tmp_path: Path) -> None:
    with scripted_server(Script(ANSWER, models=[VLLM_MODEL])) as url:
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "servers.yaml").write_text(f"servers:\n  vllm:\n    url: {url}\n")
        (tmp_path / "plan.yaml").write_text(PLAN)
        planned = runner(tmp_path, "plan", "plan.yaml", "--out", "plan.lock.json")
        applied = runner(tmp_path, "apply", "plan.yaml", "--results", "results", "--no-report")
        locked = runner(tmp_path, "apply", "plan.lock.json", "--results", "locked",
                        "--no-report")
    assert planned.returncode == EXIT_OK, planned.stderr
    assert f"  {WARNING.replace('WARNING: b: ', 'WARNING: ')}" in planned.stdout.splitlines()
    assert "max_tokens=96: model" not in planned.stdout
    assert applied.returncode == EXIT_OK, applied.stdout + applied.stderr
    assert WARNING in applied.stderr.splitlines()
    assert locked.returncode == EXIT_OK, locked.stdout + locked.stderr
    assert WARNING.replace("WARNING: b: ", "WARNING: ") in locked.stderr.splitlines()
    jobs = {json.loads(p.read_text())["params"]["max_tokens"]: json.loads(p.read_text())
            for p in (tmp_path / "results").rglob("jobs/*.json")}
    assert jobs[200]["metrics"]["model_limits"] == {
        "max_input_tokens": 4096, "max_output_tokens": None, "exceeded": True,
        "detail": "input_tokens 4000 + max_tokens 200 = 4200 > max_model_len 4096"}
    assert jobs[96]["metrics"]["model_limits"]["exceeded"] is False
