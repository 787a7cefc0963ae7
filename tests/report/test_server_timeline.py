"""The server's series in the report's timeline: charts beside the client's for a job whose
server was scraped, one line saying why for a job without samples, and `timeline.server` in the
JSON report on the client series' time axis."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stored_runs import PER_JOB, Spec, job_of, store_run

from runner.report.render import render_report
from runner.report.timeline import SERVER_CHARTS
from runner.results.runs import load_run

URL = "http://127.0.0.1:8000/metrics"
SCRAPED = {"url": URL, "error": None, "interval_s": 1.0, "scrapes": 3, "failed_scrapes": 0,
           "file_offset_s": -0.5}
SAMPLES = [
    {"t_s": 0.0, "unix_s": 1.0, "samples": {
        'vllm:num_requests_waiting{model_name="m"}': 0, 'vllm:kv_cache_usage_perc{model_name="m"}':
        0.25, 'vllm:num_preemptions_total{model_name="m"}': 0,
        'vllm:generation_tokens_total{model_name="m"}': 0}},
    {"t_s": 1.0, "unix_s": 2.0, "samples": {'vllm:num_requests_waiting{model_name="m"}': 4,
                                            'vllm:generation_tokens_total{model_name="m"}': 480}},
    {"t_s": 2.0, "unix_s": 3.0, "samples": {'vllm:num_preemptions_total{model_name="m"}': 2}},
]
CASES: dict[str, dict[str, Any] | None] = {
    "scraped": SCRAPED,
    "turned off": {"url": None, "error": "scraping turned off (metrics_url: false)"},
    "refused": {"url": URL, "error": "HTTP 401: the endpoint refused runner (it wants another "
                "key, or none)", "scrapes": 0, "failed_scrapes": 1, "file": None},
    "remembered": {"url": URL, "error": "not scraped: HTTP 404: the server has no metrics there "
                   "(set metrics_url in servers.yaml)"},
    "file gone": {**SCRAPED, "file": "jobs/gone.server-metrics.jsonl"},
    "simulator": None,
    "older runner": None,
}
NOTES = {
    "scraped": None,
    "turned off": "scraping turned off (metrics_url: false)",
    "refused": "no server samples: HTTP 401: the endpoint refused runner (it wants another "
               "key, or none)",
    "remembered": "not scraped: HTTP 404: the server has no metrics there (set metrics_url in "
                  "servers.yaml)",
    "file gone": "the series file jobs/{slug}.server-metrics.jsonl cannot be read (No such file "
                 "or directory)",
    "simulator": "not scraped: the simulator has no metrics",
    "older runner": "not scraped: no server_metrics (a result stored before runner scraped "
                    "servers)",
}


def _run(results: Path) -> tuple[str, dict[str, str]]:
    specs, slugs = [], {}
    for i, (case, block) in enumerate(CASES.items()):
        spec = Spec("chat", "m1", {"concurrency": i + 1})
        slugs[case] = job_of(spec)["slug"]
        if block is not None:
            file = {"file": f"jobs/{slugs[case]}.server-metrics.jsonl"} if case == "scraped" else {}
            spec.extra = {"server_metrics": {**block, **file}}
        if case == "simulator":
            spec.extra = {"server": {"name": "sim", "kind": "mock", "url": "http://127.0.0.1:9"}}
        specs.append(spec)
    run_dir = store_run(results, specs)
    lines = "".join(json.dumps(line) + "\n" for line in SAMPLES)
    (Path(run_dir) / "jobs" / f"{slugs['scraped']}.server-metrics.jsonl").write_text(lines)
    return run_dir, slugs


def test_the_json_report_has_the_servers_series_or_why_not(tmp_path: Path) -> None:
    run_dir, slugs = _run(tmp_path)
    jobs = {job["slug"]: job for job in json.loads(render_report(run_dir, "json"))["jobs"]}
    server = jobs[slugs["scraped"]]["timeline"]["server"]
    assert server == {"note": None, "scrapes": 3, "t_s": [-0.5, 0.5, 1.5],
                      "requests_waiting": [0, 4, 4], "requests_running": [None, None, None],
                      "kv_cache_usage": [0.25, 0.25, 0.25], "preemptions": [None, 0, 2],
                      "generation_tokens_per_s": [None, 480.0, 0.0]}
    for case, note in NOTES.items():
        if note is not None:
            got = jobs[slugs[case]]["timeline"]["server"]
            assert got["note"] == note.format(slug=slugs["file gone"]), case
            assert got["scrapes"] == 0 and got["t_s"] == [] and got["requests_waiting"] == []


def _job_section(html: str, job_id: str) -> str:
    start = html.index(f'<div class="dist-job" data-job="{job_id}"')
    return html[start:html.index("</div>", start)]


def test_the_html_timeline_draws_the_servers_charts_or_says_why_not(tmp_path: Path) -> None:
    run_dir, slugs = _run(tmp_path)
    html = render_report(run_dir, "html")
    ids = {job["slug"]: job["id"] for job in load_run(run_dir).jobs}
    # per job: its histograms and client timeline; the scraped one adds the three server charts
    assert html.count('<svg class="chart"') == 3 + PER_JOB * len(CASES) + len(SERVER_CHARTS)
    scraped = _job_section(html, ids[slugs["scraped"]])
    titles = re.findall(r'<text class="title" [^>]*>([^<]*)</text>', scraped)
    assert titles[-4:] == ["Requests in flight", "Server: requests waiting",
                           "Server: KV-cache usage", "Server: preemptions per scrape interval"]
    throughput = scraped[scraped.index("Output tokens/s over time"):]
    throughput = throughput[:throughput.index("</svg>")]
    assert "<title>client</title>" in throughput and "<title>server</title>" in throughput
    assert "Server metrics:" not in scraped
    for case, note in NOTES.items():
        if note is None:
            continue
        section = _job_section(html, ids[slugs[case]])
        assert "Server: " not in section, case
        assert "<title>server</title>" not in section, case
        line = note.format(slug=slugs["file gone"])
        assert f"Server metrics: {line}." in section, case


def test_a_server_that_exposes_none_of_the_charted_series_says_so(tmp_path: Path) -> None:
    spec = Spec("chat", "m1", {"concurrency": 1})
    slug = job_of(spec)["slug"]
    spec.extra = {"server_metrics": {**SCRAPED, "file": f"jobs/{slug}.server-metrics.jsonl"}}
    run_dir = store_run(tmp_path, [spec])
    (Path(run_dir) / "jobs" / f"{slug}.server-metrics.jsonl").write_text(
        json.dumps({"t_s": 0.0, "unix_s": 1.0, "samples": {"up": 1}}) + "\n")
    html = render_report(run_dir, "html")
    assert html.count('<svg class="chart"') == 3 + PER_JOB
    assert (f"Server metrics: the server exposes none of the charted series (requests waiting, "
            f"KV-cache usage, preemptions); its raw samples are in "
            f"jobs/{slug}.server-metrics.jsonl.") in html
