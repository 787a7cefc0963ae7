"""SLOs an embeddings job can be held to (issue 14 §4): validate refuses, at the key, an SLO on
a metric an embeddings answer never has (in a plan and in a lock); a plan's defaults and a
matrix that varies the endpoint keep them for the other jobs only; `history` without --metric
shows E2E p95 where no job has a TTFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply_helpers import run_dirs
from cli_helpers import run_cli

from runner.errors import EXIT_INVALID, EXIT_OK

SERVERS = "servers:\n  sim: {kind: mock, models: [m1], ttft_ms: 5, itl_ms: 1, output_tokens: 4}\n"
HEAD = "version: 1\nname: p\ninventory: {server: sim, fallback: false}\n"
EMBED = """\
  - name: embed
    models: m1
    workload: {endpoint: embeddings, synthetic: {input_tokens: 12}}
    load: {concurrency: 2, requests: 4}
"""
NO_DATA = ("has no data for endpoint embeddings (an embeddings answer streams no tokens: no "
           "first token, no output tokens); an embeddings job has e2e_ms, error_rate (and "
           "inputs/s, prompt tokens/s in its throughput): remove")


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("key", ["ttft_ms", "tpot_ms", "itl_ms", "ttfo_ms",
                                 "min_output_tokens_per_s"])
def test_validate_refuses_an_slo_an_embeddings_job_never_has(
    configs: Path, capsys: pytest.CaptureFixture[str], key: str,
) -> None:
    # Seen: slo: {ttft_ms: ...} on an embeddings benchmark was accepted, and always no_data.
    value = "100" if key.startswith("min_") else "{p95: 100}"
    (configs / "p.yaml").write_text(HEAD + "benchmarks:\n" + EMBED + (
        f"    slo: {{e2e_ms: {{p95: 900}}, error_rate: 0.1, {key}: {value}}}\n"))
    code, out, err = run_cli(capsys, "validate", "p.yaml")
    assert code == EXIT_INVALID, out + err
    assert (out + err).strip() == (f"p.yaml:9:48: slo.{key} {NO_DATA} {key} (at "
                                   f"$.benchmarks[0].slo.{key})")


def test_an_embeddings_slo_on_e2e_and_errors_validates(
    configs: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (configs / "p.yaml").write_text(HEAD + "benchmarks:\n" + EMBED + (
        "    slo: {e2e_ms: {p95: 900}, error_rate: 0.1}\n"))
    code, out, err = run_cli(capsys, "validate", "p.yaml")
    assert code == EXIT_OK, out + err


def test_validate_refuses_it_in_a_lock(configs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (configs / "p.yaml").write_text(HEAD + "benchmarks:\n" + EMBED + (
        "    slo: {e2e_ms: {p95: 900}}\n"))
    assert run_cli(capsys, "plan", "p.yaml", "--out", "p.lock.json")[0] == EXIT_OK
    lock = json.loads((configs / "p.lock.json").read_text())
    lock["benchmarks"][0]["slo"]["tpot_ms"] = {"p50": 10}
    (configs / "p.lock.json").write_text(json.dumps(lock, indent=2) + "\n")
    line = (configs / "p.lock.json").read_text().splitlines().index(
        '        "tpot_ms": {') + 1
    code, out, err = run_cli(capsys, "validate", "p.lock.json")
    assert code == EXIT_INVALID, out + err
    assert f"p.lock.json:{line}:9: slo.tpot_ms {NO_DATA} tpot_ms" in out + err


def test_defaults_and_a_varied_endpoint_keep_token_slos_for_the_other_jobs(
    configs: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    plan = HEAD + "defaults:\n  slo: {ttft_ms: {p95: 1000}, e2e_ms: {p95: 5000}}\n" + (
        "benchmarks:\n" + EMBED + """\
  - name: both
    models: m1
    workload: {synthetic: {input_tokens: 12}, max_tokens: 4}
    load: {concurrency: 2, requests: 4}
    matrix: {endpoint: [chat, embeddings]}
    slo: {tpot_ms: {p95: 1000}}
""")
    (configs / "p.yaml").write_text(plan)
    code, out, err = run_cli(capsys, "plan", "p.yaml", "--json")
    assert code == EXIT_OK, out + err
    slos = {b["name"]: b["slo"] for b in json.loads(out)["benchmarks"]}
    assert slos["embed"] == {"e2e_ms": {"p95": 5000}}  # the defaults' ttft_ms is the chat's
    code, out, err = run_cli(capsys, "apply", "p.yaml", "--results", "results", "--gate")
    assert code == EXIT_OK, out + err  # no no_data check fails the gate
    [run] = run_dirs(configs / "results", "p")
    checks = {}
    for path in (run / "jobs").glob("*.json"):
        job = json.loads(path.read_text())
        checks[job["id"]] = {c["metric"]: c["status"] for c in job["metrics"]["slo"]["checks"]}
    assert checks == {"embed/m1": {"e2e_ms": "pass"},
                      "both/m1/endpoint=embeddings": {"e2e_ms": "pass"},
                      "both/m1/endpoint=chat": {"ttft_ms": "pass", "tpot_ms": "pass",
                                                "e2e_ms": "pass"}}


def test_history_of_embeddings_jobs_shows_e2e_without_a_metric(
    configs: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # Seen: `runner history` on an embeddings-only plan said "no stored values" (ttft_p95).
    (configs / "p.yaml").write_text(HEAD + "benchmarks:\n" + EMBED)
    for _ in range(2):
        assert run_cli(capsys, "apply", "p.yaml", "--results", "results")[0] == EXIT_OK
    code, out, err = run_cli(capsys, "history", "--results", "results")
    assert code == EXIT_OK, err
    first, head, row = out.splitlines()[:3]
    assert first == ("no job here has ttft_p95 (an embeddings job has no first token): showing "
                     "e2e_p95; --metric NAME for another")
    assert head.startswith("e2e_p95 (ms) over the last 2 runs")
    assert row.startswith("embed/m1") and row.endswith("2 runs")
    code, out, err = run_cli(capsys, "history", "--results", "results", "--format", "json")
    assert json.loads(out)["metric"] == "e2e_p95"
    code, out, err = run_cli(capsys, "history", "--results", "results", "--metric", "ttft_p95")
    assert code == EXIT_OK and "no stored values" in out  # asked for: not replaced
