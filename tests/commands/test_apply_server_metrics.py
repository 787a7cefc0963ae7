"""`runner apply` reads the server's metrics while each job runs: a fake exporter for every way a
scrape can fail (none of which fails a job), and the simulator for the default endpoint that is
tried once per apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import manifest, run_dirs, simulator
from cli_helpers import run_cli
from fake_exporter import Exporter, exposition, fake_exporter

from runner.errors import EXIT_INVALID, EXIT_OK

PLAN = """\
version: 1
name: scraped
inventory: {server: sim, fallback: false}
defaults:
  workload: {synthetic: {input_tokens: 8}, max_tokens: 8}
  load: {requests: 6, concurrency: 2}
benchmarks:
  - {name: one, models: m1}
  - {name: two, models: m1}
"""


def _apply(capsys: pytest.CaptureFixture[str], tmp_path: Path, server: str,
           monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    configs = tmp_path / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "servers.yaml").write_text(f"servers:\n  sim:\n{server}")
    (tmp_path / "plan.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    code, out, err = run_cli(capsys, "apply", str(tmp_path / "plan.yaml"),
                             "--results", str(tmp_path / "results"))
    assert code == EXIT_OK, out + err
    [run] = run_dirs(tmp_path / "results", "scraped")
    return {job["slug"]: json.loads((run / "jobs" / f"{job['slug']}.json").read_text())
            | {"run": run} for job in manifest(run)["jobs"]}


def test_the_default_endpoint_is_tried_once_per_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        jobs = list(_apply(capsys, tmp_path, f"    url: {url}\n", monkeypatch).values())
    assert [j["status"] for j in jobs] == ["ok", "ok"]
    first, second = (j["server_metrics"] for j in jobs)
    assert first["url"] == second["url"] == f"{url}/metrics"
    assert first["error"].startswith("HTTP 404: the server has no metrics there")
    assert (first["scrapes"], first["failed_scrapes"], first["file"]) == (0, 1, None)
    assert second == {"url": f"{url}/metrics", "error": f"not scraped: {first['error']}"}


def test_scraping_turned_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _):
        jobs = _apply(capsys, tmp_path, f"    url: {url}\n    metrics_url: false\n", monkeypatch)
    for job in jobs.values():
        assert job["server_metrics"] == {"url": None,
                                         "error": "scraping turned off (metrics_url: false)"}
        assert not (job["run"] / "jobs" / f"{job['slug']}.server-metrics.jsonl").exists()


@pytest.mark.parametrize(("exporter", "reason"), [
    (Exporter(status=401), "HTTP 401"),
    (Exporter(stall_s=30), "no answer within 0.4 s"),
    (Exporter(["not metrics at all\n"]), "the answer is not Prometheus text format"),
    (Exporter(["a 1\n" * 30000]), "the answer is larger than 65536 bytes"),
])
def test_a_failing_endpoint_never_fails_the_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    exporter: Exporter, reason: str,
) -> None:
    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "1") as (url, _), \
            fake_exporter(exporter) as metrics:
        server = (f"    url: {url}\n    metrics_url: {metrics}\n    scrape_interval_s: 0.5\n"
                  "    limits: {metrics_bytes: 65536}\n")
        jobs = _apply(capsys, tmp_path, server, monkeypatch)
    for job in jobs.values():  # an explicit endpoint is tried again by every job
        assert job["status"] == "ok"
        assert job["server_metrics"]["error"].startswith(reason), job["server_metrics"]
        assert not (job["run"] / "jobs" / f"{job['slug']}.server-metrics.jsonl").exists()
    assert len(exporter.hits) == 2


def test_an_exporter_that_answers_gives_series_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the server restarts after the third scrape: its counter starts again from 0
    texts = [exposition(generated=v, waiting=i % 2) for i, v in
             enumerate([100, 110, 120, 5, 15] + [15] * 200)]
    with simulator("--models", "m1", "--ttft-ms", "1", "--itl-ms", "100") as (url, _), \
            fake_exporter(Exporter(texts)) as metrics:
        server = f"    url: {url}\n    metrics_url: {metrics}\n    scrape_interval_s: 0.2\n"
        jobs = _apply(capsys, tmp_path, server, monkeypatch)
    job = next(iter(jobs.values()))
    block = job["server_metrics"]
    assert block["error"] is None and block["scrapes"] >= 5
    lines = (job["run"] / block["file"]).read_text().splitlines()
    assert len(lines) == block["scrapes"]
    assert block["series"]["generation_tokens"]["delta"] == 10 + 10 + 5 + 10
    assert block["series"]["requests_waiting"]["max"] == 1
    client = job["metrics"]["throughput"]["output_tokens_per_s"]
    assert block["client_output_tokens_per_s"] == pytest.approx(client, abs=1e-4)


def test_a_bad_metrics_url_is_an_input_error_at_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        "servers:\n  sim:\n    url: http://127.0.0.1:9\n    metrics_url: http://[::1/metrics\n")
    (tmp_path / "plan.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    code, out, err = run_cli(capsys, "apply", str(tmp_path / "plan.yaml"),
                             "--results", str(tmp_path / "results"))
    assert code == EXIT_INVALID, out + err
    assert "servers.yaml:4:18: metrics_url" in err, err
    assert "Traceback" not in err
