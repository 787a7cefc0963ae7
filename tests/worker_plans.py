"""The plans of the tests that split a job's load (issue 15): worker processes
(tests/run/test_workers.py) and Ray actors (tests/commands/test_apply_ray.py)."""

from __future__ import annotations

from pathlib import Path

SERVERS = """\
servers:
  sim: {{kind: mock, models: [m1], ttft_ms: {ttft}, itl_ms: {itl}, output_tokens: {tokens}}}
"""
PLAN = """\
version: 1
name: p
inventory: {{server: sim, fallback: false}}
benchmarks:
{benchmarks}"""
OPEN = """\
  - name: open
    models: all
    workload: {synthetic: {input_tokens: 16}, max_tokens: 16, seed: 11}
    load: {rate: 80, requests: 40, arrival: gamma, burstiness: 0.7, warmup_requests: 3}
"""
CLOSED = """\
  - name: closed
    models: all
    workload: {synthetic: {input_tokens: 16}, max_tokens: 16}
    load: {concurrency: 8, requests: 64, warmup_requests: 4}
"""
LONG = """\
  - name: long
    models: all
    workload: {synthetic: {input_tokens: 16}, max_tokens: 400}
    load: {concurrency: 4, requests: 16, request_timeout_s: 60}
"""


def project(tmp_path: Path, benchmarks: str, ttft: int = 10, itl: int = 5,
            tokens: int = 16) -> dict[str, str]:
    (tmp_path / "configs").mkdir(exist_ok=True)
    (tmp_path / "configs" / "servers.yaml").write_text(
        SERVERS.format(ttft=ttft, itl=itl, tokens=tokens))
    (tmp_path / "p.yaml").write_text(PLAN.format(benchmarks=benchmarks))
    return {"RUNNER_CONFIG_DIR": str(tmp_path / "configs")}
