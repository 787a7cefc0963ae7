"""One capacity search against a real vLLM engine (CPU build, tiny model): whatever its knee on
this machine, the search is bounded, never repeats a point, and its record agrees with its
trial jobs. The figures it found are printed (pytest -s) for the closing note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply_helpers import manifest, run_dirs
from cli_helpers import run_cli
from vllm_engine import VLLMServer

from runner.errors import EXIT_OK

pytestmark = [pytest.mark.vllm]

PLAN = """\
version: 1
name: engine
inventory: {server: engine, fallback: false}
benchmarks:
  - name: knee
    models: tiny
    workload: {synthetic: {input_tokens: 32}, max_tokens: 16}
    load: {search: {over: concurrency, from: 1, to: 24, precision: 0.25, max_jobs: 8},
           requests: 24}
    slo: {ttft_ms: {p95: 100}}
"""


def test_a_capacity_search_of_the_tiny_model(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(f"servers:\n  engine:\n    url: {vllm_server.url}\n")
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "r"),
                             "--quiet", "--gate")
    assert code == EXIT_OK, out + err
    [run] = run_dirs(tmp_path / "r", "engine")
    data = manifest(run)
    [record] = data["capacity"]
    trials = record["trials"]
    values = [t["value"] for t in trials]
    assert 1 <= len(trials) <= 8 and len(set(values)) == len(values)
    assert [j["id"] for j in data["jobs"]] == [t["id"] for t in trials]
    passed = [t["value"] for t in trials if t["outcome"] == "pass"]
    assert record["capacity"] == (max(passed) if passed else None)
    [line] = [x for x in out.splitlines() if x.startswith("capacity tiny: ")]
    with capsys.disabled():
        print(f"\n{line}")
        for t in trials:
            summary = json.loads((run / "jobs" / f"{_slug(data, t['id'])}.json").read_text())
            metrics = summary["metrics"]
            print(f"  {t['id']}: {t['outcome']}, TTFT p95 {t['metric']} ms, "
                  f"{metrics['throughput']['output_tokens_per_s']:.1f} tok/s, "
                  f"validity {metrics['validity']['verdict']}")


def _slug(data: dict, job_id: str) -> str:
    return next(j["slug"] for j in data["jobs"] if j["id"] == job_id)
