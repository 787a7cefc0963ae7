"""`runner inventory` and `runner apply` against a real vLLM engine (CPU build, tiny local model).

What a simulator cannot show: real tokenization (usage counts that must match the engine's own
tokenizer), `ignore_eos` producing exactly `max_tokens`, the engine's own rejection of a prompt
longer than its context, and tokens that stream with no text yet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import jsonl_lines, manifest, run_dirs, stored_jobs
from cli_helpers import run_cli
from conftest import require_litellm
from litellm_proxy import start_proxy
from vllm_engine import MAX_MODEL_LEN, PROMPTS, VLLMServer, engine_project, tokenize

from runner.errors import EXIT_OK
from runner.report.render import render_report
from runner.report.timeline import SERVER_CHARTS
from runner.run.validity import THRESHOLDS
from runner.servermetrics.summary import MIN_WINDOW_S

pytestmark = [pytest.mark.vllm, pytest.mark.litellm]


def _apply(capsys: pytest.CaptureFixture[str], plan: Path, results: Path,
           expect: int = EXIT_OK) -> dict[str, dict[str, Any]]:
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(results))
    assert code == expect, out + err
    return stored_jobs(results, "engine")


def test_inventory_lists_the_served_name(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine_project(tmp_path, vllm_server, "", monkeypatch)
    code, out, err = run_cli(capsys, "inventory", "--server", "engine", "--source", "live",
                             "--json")
    assert code == EXIT_OK, out + err
    [model] = json.loads(out)["models"]
    assert (model["id"], model["max_model_len"]) == ("tiny", MAX_MODEL_LEN)
    # Only a LiteLLM proxy has /model/info: the engine is not asked for it.
    assert "/model/info" not in vllm_server.log_path.read_text(errors="replace")
    code, out, err = run_cli(capsys, "inventory", "--server", "engine", "--source", "live")
    assert code == EXIT_OK, out + err
    row = ["tiny", "-", "-", "-", str(MAX_MODEL_LEN), "listing", "-"]  # METADATA, WILDCARD
    assert out.splitlines()[3].split() == row


ENDPOINTS_PLAN = """\
version: 1
name: engine
inventory: {server: engine, fallback: false}
defaults:
  workload: {dataset: prompts.jsonl, max_tokens: 24, temperature: 0,
             extra_body: {ignore_eos: true}}
  load: {requests: 8, concurrency: 2, warmup_requests: 1}
benchmarks:
  - {name: chat, models: tiny, workload: {endpoint: chat}}
  - {name: completions, models: tiny, workload: {endpoint: completions}}
  - {name: whole, models: tiny, workload: {endpoint: chat, stream: false}}
"""


def test_chat_completions_and_whole_answers_count_exactly(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = engine_project(tmp_path, vllm_server, ENDPOINTS_PLAN, monkeypatch)
    jobs = _apply(capsys, plan, tmp_path / "results")
    for name, job in jobs.items():
        assert job["status"] == "ok", (name, job["error"])
        assert job["metrics"]["requests"]["ok"] == 8, name
        for record in job["records"]:
            # ignore_eos: the engine generates exactly max_tokens, and says so in its usage.
            assert record["output_tokens"] == 24, (name, record)
            assert record["output_tokens_source"] == "usage", (name, record)
            assert record["finish_reason"] == "length", (name, record)
    chat_prompts = {tokenize(vllm_server, p) for p in PROMPTS}
    assert {r["prompt_tokens"] for r in jobs["chat"]["records"]} == chat_prompts
    for record in jobs["chat"]["records"] + jobs["completions"]["records"]:
        # A streamed answer: the first token comes before the end, and the gaps after it add up
        # to the rest of the answer's time.
        assert 0 < record["ttft_ms"] < record["e2e_ms"], record
        rest = record["e2e_ms"] - record["ttft_ms"]
        assert sum(record["itl_ms"]) == pytest.approx(rest, rel=0.05, abs=5.0), record
        tpot = rest / (record["output_tokens"] - 1)
        assert tpot > 0, record


REJECTED_PLAN = f"""\
version: 1
name: engine
inventory: {{server: engine, fallback: false}}
benchmarks:
  - name: too_long
    models: tiny
    workload: {{synthetic: {{input_tokens: {MAX_MODEL_LEN + 500}}}, max_tokens: 8}}
    load: {{requests: 2, concurrency: 1}}
"""


def test_a_prompt_longer_than_the_context_fails_with_the_engines_words(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = engine_project(tmp_path, vllm_server, REJECTED_PLAN, monkeypatch)
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(tmp_path / "results"))
    assert code != EXIT_OK, out + err
    [run] = run_dirs(tmp_path / "results", "engine")
    [job] = manifest(run)["jobs"]
    summary = json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
    assert summary["status"] == "failed"
    assert summary["metrics"]["requests"] == {
        "total": 2, "ok": 0, "failed": 2, "cancelled": 0, "warmup": 0}
    assert summary["metrics"]["errors"] == {"http_400": 2}
    # The engine's own reason, not a generic one.
    assert "context length" in summary["error"] or "maximum" in summary["error"], summary["error"]


BYTES_PLAN = """\
version: 1
name: engine
inventory: {server: engine, fallback: false}
benchmarks:
  - name: bytes
    models: tiny
    workload: {dataset: prompts.jsonl, max_tokens: 48, temperature: 0,
               extra_body: {ignore_eos: true}}
    load: {requests: 4, concurrency: 1}
"""


def test_tokens_that_stream_without_text_are_counted(
    vllm_bytes_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = engine_project(tmp_path, vllm_bytes_server, BYTES_PLAN, monkeypatch)
    jobs = _apply(capsys, plan, tmp_path / "results")
    records = jobs["bytes"]["records"]
    for record in records:
        assert record["ok"], record
        assert record["output_tokens"] == 48, record
        assert record["output_tokens_source"] == "usage", record
    # The model emits lone bytes: some tokens carry no text, so fewer chunks carry content than
    # tokens were generated (this is what the model is for; if it stops happening the test says).
    assert any(r["content_chunks"] < r["output_tokens"] for r in records), records


PROXY_PLAN = """\
version: 1
name: engine
inventory: {server: proxy, fallback: false}
benchmarks:
  - name: routed
    models: engine/tiny
    workload: {dataset: prompts.jsonl, max_tokens: 16, temperature: 0,
               extra_body: {ignore_eos: true}}
    load: {requests: 6, concurrency: 2}
"""


def test_through_litellm_the_engines_usage_arrives_intact(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    params = {"model": "hosted_vllm/tiny", "api_base": f"{vllm_server.url}/v1"}
    models = [{"model_name": "engine/tiny", "litellm_params": params}]
    proxy = start_proxy(require_litellm(), tmp_path, models)
    try:
        plan = engine_project(tmp_path, vllm_server, PROXY_PLAN, monkeypatch)
        (tmp_path / "configs" / "servers.yaml").write_text(
            f"servers:\n  proxy:\n    url: {proxy.url}\n    api_key_env: PROXY_KEY\n")
        monkeypatch.setenv("PROXY_KEY", proxy.master_key)
        jobs = _apply(capsys, plan, tmp_path / "results")
    finally:
        proxy.stop()
    records = jobs["routed"]["records"]
    assert len(records) == 6
    chat_prompts = {tokenize(vllm_server, p) for p in PROMPTS}
    for record in records:
        assert record["ok"], record
        assert record["output_tokens"] == 16, record
        assert record["output_tokens_source"] == "usage", record
        assert record["prompt_tokens"] in chat_prompts, record
        assert 0 < record["ttft_ms"] < record["e2e_ms"], record


METRICS_PLAN = """\
version: 1
name: engine
inventory: {server: engine, fallback: false}
defaults:
  workload: {dataset: prompts.jsonl, max_tokens: 16, temperature: 0,
             extra_body: {ignore_eos: true}}
benchmarks:
  - {name: cold, models: tiny, load: {requests: 6, concurrency: 2}}
  - {name: warm, models: tiny, load: {requests: 6, concurrency: 2, warmup_requests: 2}}
  - {name: long, models: tiny, load: {duration_s: 12, concurrency: 2}}
"""


def test_the_engines_metrics_are_scraped_and_its_token_counters_match_usage(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = engine_project(tmp_path, vllm_server, METRICS_PLAN, monkeypatch)
    jobs = _apply(capsys, plan, tmp_path / "results")
    [run] = run_dirs(tmp_path / "results", "engine")
    for name, job in jobs.items():
        block = job["server_metrics"]
        assert block["url"] == f"{vllm_server.url}/metrics", name
        assert block["error"] is None and block["scrapes"] >= 2, (name, block)
        lines = jsonl_lines(run / block["file"])
        assert len(lines) == block["scrapes"]
        assert any(k.startswith("vllm:time_to_first_token_seconds_bucket") for k in
                   lines[0]["samples"]), name  # every series is stored raw, histograms too
        series = block["series"]
        assert {"requests_running", "requests_waiting", "kv_cache_usage", "preemptions",
                "prefix_cache_queries", "prefix_cache_hits", "prompt_tokens",
                "generation_tokens"} <= set(series), name
        assert series["requests_running"]["max"] <= 2
    # No warm-up: the first scrape comes before the first request and the last after the last
    # one, so the engine's counters grew by exactly what the requests' usage says.
    cold = jobs["cold"]
    assert cold["server_metrics"]["series"]["generation_tokens"]["delta"] == \
        sum(r["output_tokens"] for r in cold["records"]) == 6 * 16
    assert cold["server_metrics"]["series"]["prompt_tokens"]["delta"] == \
        sum(r["prompt_tokens"] for r in cold["records"])
    # With warm-up: the warm-ups end before the window opens and a scrape between them and
    # the window separates their tokens, so the count is again exactly the measured ones'.
    warm = jobs["warm"]
    assert warm["server_metrics"]["series"]["generation_tokens"]["delta"] == 6 * 16
    # Over a window long enough to judge, the engine's generation rate agrees with the client's:
    # no server_disagreement; and the report draws the engine's series beside the client's.
    block = jobs["long"]["server_metrics"]
    assert block["window_s"] >= MIN_WINDOW_S and block["disagreement"] is None, block
    ratio = block["generation_tokens_per_s"] / block["client_output_tokens_per_s"]
    assert abs(ratio - 1) <= THRESHOLDS.server_disagreement, block
    for job in jobs.values():
        assert "server_disagreement" not in [r["code"] for r in job["metrics"]["validity"]
                                             ["reasons"]]
    html = (run / "report.html").read_text()
    for title, *_ in SERVER_CHARTS:
        assert html.count(f">{title}</text>") == len(jobs), title
    [long] = [j for j in json.loads(render_report(str(run), "json"))["jobs"]
              if j["benchmark"] == "long"]
    server = long["timeline"]["server"]
    assert server["note"] is None and server["scrapes"] == block["scrapes"]
    assert max(v for v in server["kv_cache_usage"] if v is not None) > 0
