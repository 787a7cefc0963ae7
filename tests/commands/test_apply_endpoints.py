"""`runner apply` of embeddings and Responses API jobs against the simulator: what is stored
per request and per job, SLOs on what an embedding does not have, and what validate refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from apply_helpers import jsonl_lines, manifest, run_dirs
from cli_helpers import run_cli

from runner.errors import EXIT_INVALID, EXIT_INVENTORY, EXIT_OK
from runner.schema import load_schema

SERVERS = """\
servers:
  sim: {kind: mock, models: [m1], ttft_ms: 5, itl_ms: 1, output_tokens: 6}
"""
HEAD = """\
version: 1
name: p
inventory: {server: sim, fallback: false}
benchmarks:
"""
EMBEDDINGS = HEAD + """\
  - name: embed
    models: m1
    workload: {endpoint: embeddings, synthetic: {input_tokens: 12}}
    load: {concurrency: 2, requests: 6, warmup_requests: 1}
    matrix: {batch_size: [1, 4]}
"""
RESPONSES = HEAD + """\
  - name: resp
    models: all
    workload: {endpoint: responses, synthetic: {input_tokens: 12}, max_tokens: 4}
    load: {concurrency: 2, requests: 5}
    matrix: {stream: [true, false]}
"""


def apply(tmp_path: Path, plan_text: str, capsys: pytest.CaptureFixture[str],
          monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple[int, str, list[Path]]:
    (tmp_path / "configs").mkdir(exist_ok=True)
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "plan.yaml").write_text(plan_text)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    code, out, err = run_cli(capsys, "apply", str(tmp_path / "plan.yaml"),
                             "--results", str(tmp_path / "results"), *extra)
    return code, out + err, run_dirs(tmp_path / "results", "p")


def jobs(run: Path) -> list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
    """Each job's manifest entry, summary and records, all checked against the result schema."""
    found = []
    schema = load_schema("result")
    request_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/request"}
    for job in manifest(run)["jobs"]:
        summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
        jsonschema.validate(summary, schema)
        records = jsonl_lines(run / "jobs" / f"{job['slug']}.requests.jsonl")
        for record in records:
            jsonschema.validate(record, request_schema)
        found.append((job, summary, records))
    return found


def test_an_embeddings_job_measures_latency_and_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, [run] = apply(tmp_path, EMBEDDINGS, capsys, monkeypatch)
    assert code == EXIT_OK, out
    for job, summary, records in jobs(run):
        size = job["params"]["batch_size"]
        assert job["params"]["endpoint"] == "embeddings"
        assert "max_tokens" not in job["params"] and "stream" not in job["params"]
        assert len(records) == 7 and all(r["ok"] for r in records)
        assert {r["inputs"] for r in records} == {size}
        # 12 words per input, counted by the simulator's usage
        assert {r["prompt_tokens"] for r in records} == {12 * size}
        assert all(r["ttft_ms"] is None and r["output_tokens"] is None and r["e2e_ms"] > 0
                   for r in records)
        metrics = summary["metrics"]
        throughput = metrics["throughput"]
        assert throughput["output_tokens_per_s"] is None  # not a zero: it has no outputs
        assert throughput["inputs_per_s"] == pytest.approx(throughput["requests_per_s"] * size)
        assert throughput["prompt_tokens_per_s"] == pytest.approx(
            throughput["requests_per_s"] * 12 * size)
        assert metrics["ttft_ms"]["count"] == 0 and metrics["e2e_ms"]["count"] == 6
        assert metrics["lengths"]["input"]["ratio"] == pytest.approx(1.0)
        # nothing about the lengths (prompt tokens are a batch's); a busy machine may make the
        # client the limit
        assert {r["code"] for r in metrics["validity"]["reasons"]} <= {"client_bound"}
    # the recap and progress lines show what an embeddings job has, never "0 tok/s"
    assert " 0 tok/s" not in out
    rows = [line for line in out.splitlines() if line.startswith(("embed ", "[1/2] embed"))]
    assert len(rows) == 3 and all("inputs/s (" in row and "prompt tok/s)" in row
                                  and "latency p50 " in row for row in rows), out
    assert "inputs/s" in (run / "summary.md").read_text()
    assert "<th" in (html := (run / "report.html").read_text()) and "Inputs/s" in html


def test_compare_takes_inputs_per_s(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = EMBEDDINGS.replace("    matrix: {batch_size: [1, 4]}\n", "")
    assert apply(tmp_path, plan, capsys, monkeypatch)[0] == EXIT_OK
    code, out, runs = apply(tmp_path, plan, capsys, monkeypatch)
    assert code == EXIT_OK and len(runs) == 2, out
    code, out, err = run_cli(capsys, "compare", str(runs[0]), str(runs[1]), "--metric",
                             "input_tps,prompt_tps", "--format", "json", "--threshold", "1000%")
    assert code == EXIT_OK, out + err
    [job] = json.loads(out)["jobs"]
    rows = job["rows"]
    assert {row["metric"] for row in rows} == {"input_tps", "prompt_tps"}
    assert all(row["base"] > 0 and row["new"] > 0 for row in rows), rows


def test_embeddings_take_a_model_of_unknown_mode_only_when_named_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The simulator lists no modes: `all` must not send embeddings requests to every model.
    code, out, runs = apply(tmp_path, EMBEDDINGS.replace("models: m1", "models: all"), capsys,
                            monkeypatch)
    assert code == EXIT_INVENTORY and runs == [], out
    assert ("benchmark 'embed' matches only models whose mode does not fit its endpoint "
            "(unknown); select embedding models (a model whose mode is unknown: name it "
            "exactly") in out
    (tmp_path / "plan.yaml").write_text(EMBEDDINGS.replace("models: m1", "models: 'm1, m*'"))
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS.replace("[m1]", "[m1, m2]"))
    code, out, err = run_cli(capsys, "plan", str(tmp_path / "plan.yaml"))
    assert code == EXIT_OK and "skipped (mode unknown): m2" in out, out + err
    assert "m1" in out


def test_an_slo_on_ttft_of_embeddings_is_refused_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # it ran, and its ttft_ms check always said no_data (tests/commands/test_embeddings_slo.py)
    plan = EMBEDDINGS.replace("    matrix: {batch_size: [1, 4]}\n",
                              "    slo: {ttft_ms: {p50: 1000}, e2e_ms: {p50: 5000}}\n")
    code, out, runs = apply(tmp_path, plan, capsys, monkeypatch, "--gate")
    assert code == EXIT_INVALID and runs == [], out
    assert "plan.yaml:9:11: slo.ttft_ms has no data for endpoint embeddings" in out


def test_a_responses_job_streamed_and_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, [run] = apply(tmp_path, RESPONSES, capsys, monkeypatch)
    assert code == EXIT_OK, out
    for job, summary, records in jobs(run):
        streamed = job["params"]["stream"]
        assert all(r["ok"] and r["output_tokens"] == 4 and r["prompt_tokens"] == 12
                   and r["output_tokens_source"] == "usage" and r["finish_reason"] == "length"
                   for r in records), records
        assert "inputs" not in records[0]
        metrics = summary["metrics"]
        assert metrics["ttft_ms"]["count"] == (5 if streamed else 0)
        assert metrics["throughput"]["inputs_per_s"] is None
        assert metrics["throughput"]["output_tokens_per_s"] > 0


@pytest.mark.parametrize(("workload", "message"), [
    ("{endpoint: chat, embeddings: {batch_size: 2}}",
     "batch_size (workload.embeddings) sizes embeddings requests, and this job's endpoint is "
     "chat: set endpoint: embeddings, or remove it"),
    ("{endpoint: embeddings, embeddings: {batch_size: 0}}", "must be at least 1, got 0"),
])
def test_validate_refuses_fields_of_another_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workload: str, message: str,
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(HEAD + f"  - name: b\n    models: all\n    workload: {workload}\n")
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID and message in out + err, out + err


def test_generation_fields_of_the_defaults_stay_out_of_an_embeddings_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = EMBEDDINGS.replace("benchmarks:\n", "defaults:\n  workload: {max_tokens: 8, "
                              "temperature: 0.5, seed: 3, stream: true}\nbenchmarks:\n")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "plan.yaml").write_text(plan)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    code, out, err = run_cli(capsys, "plan", str(tmp_path / "plan.yaml"), "--json")
    assert code == EXIT_OK, out + err
    jobs = json.loads(out)["jobs"]
    assert [job["params"]["batch_size"] for job in jobs] == [1, 4]
    for job in jobs:
        assert not {"max_tokens", "temperature", "seed", "stream"} & set(job["params"])


@pytest.mark.parametrize(("bench", "message"), [
    ("    workload: {endpoint: embeddings, max_tokens: 8}\n",
     "plan.yaml:7:38: max_tokens has no meaning for endpoint embeddings"),
    ("    workload: {endpoint: embeddings, stream: true, temperature: 0.5}\n",
     "plan.yaml:7:38: stream has no meaning for endpoint embeddings"),
    ("    workload: {endpoint: embeddings}\n    matrix: {seed: [1, 2]}\n",
     "plan.yaml:8:14: seed has no meaning for endpoint embeddings"),
])
def test_validate_refuses_generation_fields_written_for_an_embeddings_benchmark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    bench: str, message: str,
) -> None:
    # they were left out of its jobs silently (a plan's defaults may still set them)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    plan = tmp_path / "plan.yaml"
    plan.write_text(HEAD + "  - name: b\n    models: all\n" + bench)
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID, out + err
    assert out.startswith(str(tmp_path / message)), out
    assert "(an embeddings request generates no text and is never streamed): remove" in out
    # the matrix may set the endpoint: then the field serves its other jobs
    plan.write_text(HEAD + "  - name: b\n    models: all\n    workload: {max_tokens: 8}\n"
                    "    matrix: {endpoint: [chat, embeddings]}\n")
    assert run_cli(capsys, "validate", str(plan))[0] == EXIT_OK
