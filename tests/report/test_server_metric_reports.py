"""The server's summarised metrics in compare, history, summary.md and the recap, like any
other metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stored_runs import Spec, store_run

from runner.main import main
from runner.report.compare import METRICS
from runner.run.recap import HEADER, job_cells


def _extra(tps: float | None, waiting: float, preemptions: float = 0) -> dict[str, Any]:
    series = {"requests_waiting": {"kind": "gauge", "unit": "requests", "mean": waiting / 2,
                                   "max": waiting},
              "preemptions": {"kind": "counter", "unit": "preemptions", "delta": preemptions,
                              "rate_per_s": None}}
    return {"server_metrics": {"url": "http://127.0.0.1:8000/metrics", "error": None,
                               "generation_tokens_per_s": tps, "series": series}}


def _runs(results: Path) -> tuple[str, str]:
    base = store_run(results, [Spec("chat", "m1", {"concurrency": 1}, extra=_extra(100.0, 4))])
    new = store_run(results, [Spec("chat", "m1", {"concurrency": 1},
                                   extra=_extra(50.0, 8, preemptions=3))])
    return base, new


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_compare_judges_server_metrics_by_their_direction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    base, new = _runs(tmp_path)
    code, out = _cli(capsys, "compare", base, new, "--format", "json", "--metric",
                     "server_tps,server_waiting_max,server_preemptions,server_kv_cache_max")
    [job] = json.loads(out)["jobs"]
    rows = {r["metric"]: (r["base"], r["new"], r["verdict"]) for r in job["rows"]}
    assert rows["server_tps"] == (100.0, 50.0, "regression")  # fewer tok/s is worse
    assert rows["server_waiting_max"] == (4.0, 8.0, "regression")  # a longer queue is worse
    assert rows["server_preemptions"][:2] == (0.0, 3.0)
    assert rows["server_kv_cache_max"][:2] == (None, None)  # the server did not say
    assert code == 4


def test_history_reads_server_metrics_from_the_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _runs(tmp_path)
    code, out = _cli(capsys, "history", "--metric", "server_waiting_max", "--format", "json",
                     "--results", str(tmp_path))
    data = json.loads(out)
    assert code == 0
    assert data["index_name"] == "server_metrics.series.requests_waiting.max"
    # both stored runs start at the same second: their order is the index's
    assert sorted(p["value"] for p in data["series"][0]["points"]) == [4.0, 8.0]


def test_summary_md_shows_the_servers_tok_s_beside_the_clients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _, new = _runs(tmp_path)
    plain = store_run(tmp_path, [Spec("chat", "m1", {"concurrency": 1})], plan="plain")
    _, out = _cli(capsys, "report", new, "--format", "md")
    assert "| 2,400 (server 50.0) |" in out
    _, out = _cli(capsys, "report", plain, "--format", "md")
    assert "(server" not in out


def test_recap_shows_the_servers_tok_s_beside_the_clients() -> None:
    summary = {"benchmark": "chat", "model": "m1", "status": "ok", "params": {},
               "metrics": {"throughput": {"output_tokens_per_s": 41.23}},
               "server_metrics": {"generation_tokens_per_s": 40.81}}
    cells = job_cells(summary)
    assert cells[HEADER.index("tok/s")] == "41.2 (server 40.8)"
    del summary["server_metrics"]
    assert job_cells(summary)[HEADER.index("tok/s")] == "41.2"


def test_every_server_metric_has_an_index_name_under_server_metrics() -> None:
    names = [m for m in METRICS.values() if m.name.startswith("server_")]
    assert len(names) == 8
    assert all(m.index_name.startswith("server_metrics.") for m in names)
