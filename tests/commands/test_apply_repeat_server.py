"""A repeated job (load.repeat) scraped by a fake exporter: each repetition's server figures
cover its own window, and the report's server series follow the repetitions as the client's
do, the pause between them left out."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from apply_helpers import manifest, run_dirs, simulator
from cli_helpers import run_cli
from fake_exporter import Exporter, exposition, fake_exporter

from runner.errors import EXIT_OK
from runner.report.timeline import in_sequence
from runner.results.requestlog import read_log
from runner.schema import load_schema
from runner.servermetrics.timeline import job_server_series, read_scrapes

PAUSE_S = 1.5
PLAN = f"""\
version: 1
name: repeated
inventory: {{server: sim, fallback: false}}
defaults:
  workload: {{synthetic: {{input_tokens: 8}}, max_tokens: 10}}
  load: {{requests: 4, concurrency: 1, repeat: 2, repeat_pause_s: {PAUSE_S}}}
benchmarks:
  - {{name: one, models: m1}}
"""


def test_each_repetition_has_its_own_server_window_and_the_pause_is_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [exposition(generated=i * 10, waiting=i % 2) for i in range(2000)]
    configs = tmp_path / "configs"
    configs.mkdir()
    (tmp_path / "plan.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    with simulator("--models", "m1", "--ttft-ms", "10", "--itl-ms", "20") as (url, _), \
            fake_exporter(Exporter(texts)) as metrics:
        (configs / "servers.yaml").write_text(
            f"servers:\n  sim:\n    url: {url}\n    metrics_url: {metrics}\n"
            "    scrape_interval_s: 0.1\n")
        code, out, err = run_cli(capsys, "apply", str(tmp_path / "plan.yaml"),
                                 "--results", str(tmp_path / "results"))
    assert code == EXIT_OK, out + err
    [run] = run_dirs(tmp_path / "results", "repeated")
    [entry] = manifest(run)["jobs"]
    job = json.loads((run / "jobs" / f"{entry['slug']}.json").read_text())
    jsonschema.validate(job, load_schema("result"))
    block = job["server_metrics"]
    first, second = block["repetitions"]
    assert (first["repetition"], second["repetition"]) == (1, 2)
    for rep in (first, second):
        assert rep["window_s"] > 0 and rep["scrapes_in_window"] >= 2, rep
        assert rep["end_s"] > 0
    # the second window opened after the first one's end and the pause (file time grows)
    assert first["file_offset_s"] - second["file_offset_s"] >= first["end_s"] + PAUSE_S

    records = read_log(str(run / "jobs" / f"{entry['slug']}.requests.jsonl"))
    laid = in_sequence([r for r in records if not r.warmup])
    client_end = max(r.sent_ms + (r.e2e_ms or 0) for r in laid) / 1000
    series = job_server_series(str(run), job)
    scrapes = read_scrapes(str(run / "jobs" / f"{entry['slug']}.server-metrics.jsonl"))
    in_pause = [t for t, _ in scrapes
                if first["end_s"] < t + first["file_offset_s"]
                and t + second["file_offset_s"] < 0]
    assert in_pause, "the pause holds scrapes (every 0.1 s for 1.5 s)"
    assert len(series["t_s"]) == len(scrapes) - len(in_pause)
    # on the client's axis: the first repetition from before 0, the second right after it
    assert series["t_s"] == sorted(series["t_s"])
    assert max(series["t_s"]) <= client_end + 5  # the last scrapes follow the last request
    assert sum(first["end_s"] >= t for t in series["t_s"]) >= 2
