"""`runner apply` (a real subprocess) against a hostile server: malformed answers fail their
requests and their jobs, every request sent is recorded, and the run ends with exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from apply_helpers import apply_process, jsonl_lines, manifest, run_dirs
from hostile_server import hostile_server, received

from runner.errors import EXIT_JOBS_FAILED

PLAN = """\
version: 1
name: hostile
benchmarks:
  - name: b
    models: "m*"
    workload: {synthetic: {input_tokens: 8}, max_tokens: 4}
    load: {concurrency: 2, requests: 5, request_timeout_s: 10}
    matrix: {max_tokens: [4, 5]}
"""


CASES = [("deep", "invalid_response", "fallback"), ("line~5000000", "response_too_large", "live")]


@pytest.mark.parametrize(("case", "kind", "source"), CASES)
def test_malformed_answers_fail_every_job_and_lose_no_request(
    tmp_path: Path, case: str, kind: str, source: str
) -> None:
    """Before: deep JSON (`[` x 100,000) raised RecursionError: exit 70, the manifest left
    `running`, later jobs never run, or requests sent but never recorded ("no requests")."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "models.yaml").write_text("models:\n  - {id: m}\n")
    (tmp_path / "p.yaml").write_text(PLAN)
    with hostile_server() as url:
        (configs / "servers.yaml").write_text(f"servers:\n  h:\n    url: {url(case)}\n")
        apply = apply_process("p.yaml", "--results", "results", "--no-probe", cwd=tmp_path,
                              env={"RUNNER_CONFIG_DIR": str(configs)})
        out, err = apply.communicate(timeout=120)
        sent = received(url).get(case.partition("~")[0], 0)
    assert apply.returncode == EXIT_JOBS_FAILED, err
    [run] = run_dirs(tmp_path / "results", "hostile")
    data = manifest(run)
    assert data["inventory"]["source"] == source  # /v1/models answers as hostile: deep JSON
    assert data["status"] == "failed"
    assert [j["status"] for j in data["jobs"]] == ["failed", "failed"]
    lines = [line for path in sorted((run / "jobs").glob("*.requests.jsonl"))
             for line in jsonl_lines(path)]
    assert len(lines) == sent == 10
    assert {line["error_kind"] for line in lines} == {kind}
    assert "no request succeeded (5 x " + kind in out
