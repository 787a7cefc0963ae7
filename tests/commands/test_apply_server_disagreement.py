"""`runner apply` against the simulator with a fake exporter whose generation counter grows ten
times faster than the tokens the simulator streams: the job is degraded with
server_disagreement, and the recap, summary.md and report.html say so; the report's timeline
draws the exporter's series."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply_helpers import manifest, run_dirs, simulator
from cli_helpers import run_cli
from fake_exporter import Exporter, exposition, fake_exporter
from markupsafe import escape

from runner.errors import EXIT_OK
from runner.servermetrics.summary import MIN_WINDOW_S

# 12 requests one after another, each 20 tokens at 50 ms apart: a measured window of ~12 s,
# long enough (MIN_WINDOW_S) for the disagreement to count; the client sees ~20 tok/s.
PLAN = """\
version: 1
name: disagree
inventory: {server: sim, fallback: false}
defaults:
  workload: {synthetic: {input_tokens: 8}, max_tokens: 20}
  load: {requests: 12, concurrency: 1}
benchmarks:
  - {name: one, models: m1}
"""
INTERVAL_S = 0.5
PER_SCRAPE = 100  # tokens the exporter's counter grows by each scrape: ~200 tok/s


def test_a_server_counter_that_disagrees_with_the_stream_degrades_the_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [exposition(generated=i * PER_SCRAPE, waiting=i % 3) for i in range(400)]
    configs = tmp_path / "configs"
    configs.mkdir()
    (tmp_path / "plan.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    with simulator("--models", "m1", "--ttft-ms", "10", "--itl-ms", "50") as (url, _), \
            fake_exporter(Exporter(texts)) as metrics:
        (configs / "servers.yaml").write_text(
            f"servers:\n  sim:\n    url: {url}\n    metrics_url: {metrics}\n"
            f"    scrape_interval_s: {INTERVAL_S}\n")
        code, out, err = run_cli(capsys, "apply", str(tmp_path / "plan.yaml"),
                                 "--results", str(tmp_path / "results"))
    assert code == EXIT_OK, out + err
    [run] = run_dirs(tmp_path / "results", "disagree")
    [entry] = manifest(run)["jobs"]
    job = json.loads((run / "jobs" / f"{entry['slug']}.json").read_text())
    block = job["server_metrics"]
    assert block["window_s"] >= MIN_WINDOW_S and block["disagreement"] is not None, block
    client = job["metrics"]["throughput"]["output_tokens_per_s"]
    server = block["generation_tokens_per_s"]
    assert server > 3 * client  # the counter ran far ahead of what was streamed

    validity = job["metrics"]["validity"]
    assert validity["verdict"] == "degraded"
    [reason] = validity["reasons"]
    assert reason["code"] == "server_disagreement" and reason["severity"] == "degraded"
    ratio = server / client
    assert reason["figure"].endswith(f"(ratio {ratio:.2f}, beyond 1 ± 0.2)"), reason["figure"]
    assert reason["figure"].startswith("server generated ")

    assert "server_disagreement" in out  # the recap names it
    summary = (run / "summary.md").read_text()
    assert "server\\_disagreement" in summary or "server_disagreement" in summary
    html = (run / "report.html").read_text()
    assert "server_disagreement" in html and escape(reason["remedy"]) in html
    assert "Server: requests waiting" in html and "Server: KV-cache usage" in html
