from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from stored_runs import EVIL, PER_JOB, Spec, grid, job_of, mixed_run, store_job, store_run

from runner.main import main
from runner.report import data as reportdata
from runner.report import svgchart, svgdist
from runner.report.html import SAMPLE_CAP, charts
from runner.report.render import DYNAMIC, render_report, schema_leaves, write_reports
from runner.results.runs import load_run
from runner.results.store import RunStore
from runner.schema import load_schema


def count_svgs(html: str) -> int:
    return html.count('<svg class="chart"')


# --- svgchart / svgdist -------------------------------------------------------------------


@pytest.mark.parametrize(("lo", "hi", "count", "ticks"), [
    (0, 10, 5, [0, 2, 4, 6, 8, 10]),
    (0, 10, 4, [0, 2.5, 5, 7.5, 10]),
    (0, 1, 5, [0, 0.2, 0.4, 0.6, 0.8, 1]),
    (0, 3300, 4, [0, 1000, 2000, 3000]),
    (0, 0.013, 5, [0, 0.005, 0.01]),
    (0, 0.013, 6, [0, 0.0025, 0.005, 0.0075, 0.01, 0.0125]),
    (-3, 3, 3, [-2, 0, 2]),
])
def test_linear_ticks_are_round_numbers(
    lo: float, hi: float, count: int, ticks: list[float]
) -> None:
    assert svgchart.linear_ticks(lo, hi, count) == ticks


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (0.25, "0.25"), (2.5, "2.5"), (512, "512"), (1200, "1200"), (12500, "12.5k"),
    (3_000_000, "3M"), (0.001234, "0.00123"),
])
def test_tick_labels_are_short(value: float, text: str) -> None:
    assert svgchart.fmt_num(value) == text


def test_log_ticks_use_decades_over_wide_ranges() -> None:
    assert svgchart.log_ticks(1, 100) == [1, 2, 5, 10, 20, 50, 100]
    assert svgchart.log_ticks(0.1, 100000) == [0.1, 1, 10, 100, 1000, 10000, 100000]


def test_value_axis_starts_at_zero_unless_the_range_is_log_ish() -> None:
    scale, ticks = svgchart.value_scale([3.0, 7.0], 200, 0)
    assert (scale.lo, scale.log, ticks[0]) == (0, False, 0)
    scale, ticks = svgchart.value_scale([2.0, 5000.0], 200, 0)
    assert scale.log and (scale.lo, scale.hi) == (2, 5000)
    assert scale(2) == 200 and scale(5000) == 0
    scale, ticks = svgchart.value_scale([3.0, 700.0], 200, 0)
    assert (scale.lo, scale.hi, ticks) == (2, 1000, [2, 5, 10, 20, 50, 100, 200, 500, 1000])


def test_position_axis_is_log_for_doubling_sweeps_and_ticks_at_the_data() -> None:
    scale, ticks = svgchart.position_scale([1, 2, 4, 8, 16, 32, 64], 0, 100)
    assert scale.log and ticks == [1, 2, 4, 8, 16, 32, 64]
    assert scale(2) - scale(1) == pytest.approx(scale(64) - scale(32))


def line(points: Sequence[tuple[float, float | None]], name: str = "m", **kw: Any) -> str:
    return svgchart.line_chart([svgchart.Series(name, tuple(points))], title="TTFT",
                               x_label="concurrency", y_label="ms", **kw)


def test_line_chart_has_axes_ticks_legend_and_a_tooltip_per_point() -> None:
    svg = line([(1, 10.0), (2, 12.0), (4, 20.0)])
    assert svg.startswith('<svg class="chart"') and svg.endswith("</svg>")
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3
    assert ">concurrency<" in svg and ">ms<" in svg and ">m<" in svg
    assert "m: 20 at concurrency 4" in svg


def test_line_chart_breaks_lines_at_missing_values() -> None:
    svg = line([(1, 10.0), (2, None), (4, 20.0), (8, 22.0)])
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 3


@pytest.mark.parametrize("points", [[(4, 10.0)], [(4, 0.0)], [(0, 5.0)]])
def test_line_chart_with_a_single_point(points: list[tuple[float, float]]) -> None:
    svg = line(points)
    assert svg.count("<circle") == 1 and "nan" not in svg.lower()


def test_line_chart_without_data_says_so() -> None:
    svg = line([(1, None)])
    assert "no data" in svg and svg.startswith('<svg class="chart"')


@pytest.mark.parametrize(("text", "width", "clipped"), [
    ("short", 10, "short"),
    ("Qwen/Qwen3-Coder-30B-A3B-Instruct-v02", 20, "Qwen/Qwen…struct-v02"),
    ("abcdefghijk", 10, "abcd…ghijk"),
])
def test_long_names_keep_both_ends(text: str, width: int, clipped: str) -> None:
    assert svgchart.clip_middle(text, width) == clipped
    assert len(clipped) <= width


def test_chart_text_is_escaped() -> None:
    svg = svgchart.line_chart([svgchart.Series(EVIL, ((0, 1.0),))], title="<b>", x_label="m",
                              y_label="ms", categories=["<i>"])
    assert "<script" not in svg and "<b>" not in svg and "<i>" not in svg
    assert "&lt;script&gt;" in svg


def test_histogram_counts_every_value_and_draws_the_cdf() -> None:
    values = [float(v) for v in range(50, 150)]
    svg = svgdist.histogram(values, title="TTFT", x_label="ms", marks=[("p50", 99.5)])
    counts = [int(n) for n in re.findall(r"<title>(\d+) in ", svg)]
    assert sum(counts) == 100 and len(counts) == 20
    assert 'class="cdf"' in svg and ">p50<" in svg and ">100%<" in svg


def test_histogram_of_one_value_and_of_none() -> None:
    assert "<title>3 in " in svgdist.histogram([7.0, 7.0, 7.0], title="t", x_label="ms")
    assert "no data" in svgdist.histogram([], title="t", x_label="ms")


def test_histogram_goes_log_for_long_tails() -> None:
    svg = svgdist.histogram([1.0] * 50 + [500.0], title="t", x_label="ms")
    assert "ms (log)" in svg


# --- shared report data --------------------------------------------------------------------


def jobs(*points: dict[str, Any], model: str = "m") -> list[dict[str, Any]]:
    return [{"model": model, "point": p} for p in points]


def test_axis_prefers_concurrency_and_names_series_by_the_other_varied_keys() -> None:
    ax = reportdata.axis(jobs({"concurrency": 1, "input_tokens": 128},
                              {"concurrency": 8, "input_tokens": 128},
                              {"concurrency": 1, "input_tokens": 1024}))
    assert ax.param == "concurrency" and ax.categories is None and ax.xs == (1, 8, 1)
    assert ax.series == ("m · input_tokens=128", "m · input_tokens=128", "m · input_tokens=1024")


def test_axis_uses_categories_for_text_values_and_models_when_nothing_varies() -> None:
    ax = reportdata.axis(jobs({"endpoint": "chat"}, {"endpoint": "completions"}))
    assert (ax.param, ax.categories, ax.xs) == ("endpoint", ("chat", "completions"), (0, 1))
    ax = reportdata.axis([{"model": "a", "point": {}}, {"model": "b", "point": {}}])
    assert (ax.param, ax.categories, ax.series) == (None, ("a", "b"), ("a", "b"))


def test_metric_definitions_come_from_the_result_schema() -> None:
    found = dict(reportdata.metric_definitions())
    metrics = load_schema("result")["$defs"]["metrics"]["properties"]
    assert found["ttft_ms"] == metrics["ttft_ms"]["description"]
    assert found["throughput.output_tokens_per_s"].startswith("Sum of output_tokens")
    assert {"statistics", "tpot_ms", "itl_ms", "e2e_ms", "goodput", "client"} <= set(found)


def test_warnings_name_fallback_client_bound_slo_and_failures(tmp_path: Path) -> None:
    run = load_run(mixed_run(tmp_path))
    texts = [w.text for w in reportdata.warnings(run, reportdata.all_jobs(run))]
    assert any("fallback file" in t and "connection refused" in t for t in texts)
    assert any(t.startswith("1 job was invalid") and "stress/org/alpha/rate=2: client_bound "
               "(event-loop delay p99 40.0 ms > 10 ms)" in t for t in texts)
    assert not any("unknown" in t or "client-bound" in t for t in texts)
    assert any("missed the SLO" in t and "ttft_ms p95" in t for t in texts)
    assert any(t.startswith("2 jobs failed") for t in texts)


def test_a_run_stored_before_verdicts_reads_with_validity_unknown(tmp_path: Path) -> None:
    specs = [Spec("b", "m", {"rate": 2}, client_bound=True, verdict=False),
             Spec("b", "m", {"rate": 4}, verdict=False)]
    run_dir = store_run(tmp_path, specs)
    run = load_run(run_dir)
    texts = [w.text for w in reportdata.warnings(run, reportdata.all_jobs(run))]
    assert any(t.startswith("2 jobs were stored before validity verdicts") for t in texts)
    assert any("1 job was client-bound" in t for t in texts)
    md = render_report(run_dir, "md")
    assert "| ok · validity unknown · client-bound |" in md and "**Validity**" not in md
    assert "validity unknown" in render_report(run_dir, "html")


def test_tokens_counted_by_chunks_are_marked_in_every_report(tmp_path: Path) -> None:
    run_dir = store_run(tmp_path, [Spec("b", "m", {"concurrency": 1}, source="chunks")])
    md = render_report(run_dir, "md")
    assert "| ok · degraded · tokens≈chunks |" in md
    assert "**tokens_from_chunks** (30 of 30 ok requests counted by content chunks" in md
    html = render_report(run_dir, "html")
    assert "ok · degraded · tokens≈chunks" in html and "Remedy: serve with usage" in html


def test_interrupted_run_reports_unfinished_jobs_as_pending(tmp_path: Path) -> None:
    specs = grid("latency", ["m"], [1, 2, 4])
    specs[2].write = False
    run_dir = store_run(tmp_path, specs, status="interrupted")
    md = render_report(run_dir, "md")
    assert "The run was interrupted: 1 job did not finish" in md
    assert "| m | concurrency=4 | pending |" in md
    assert "<td class=\"status s-pending\"" in render_report(run_dir, "html")


def test_a_partial_run_says_which_jobs_are_still_to_run(tmp_path: Path) -> None:
    specs = grid("latency", ["m"], [1, 2, 4])
    specs[1].write = specs[2].write = False
    md = render_report(store_run(tmp_path, specs, status="partial"), "md")
    assert "The run is partial: 2 jobs of its record have not run yet" in md
    assert "has not finished" not in md


def test_unfinished_and_empty_runs_still_render(tmp_path: Path) -> None:
    store = RunStore.create(str(tmp_path / "a"), "nightly", {"plan": {"name": "nightly"}})
    store.set_jobs([job_of(s) for s in grid("x", ["m"], [1, 2])])
    store_job(store, Spec("x", "m", {"concurrency": 1}), job_of(Spec("x", "m", {"concurrency": 1})))
    html = render_report(store.run_dir, "html")
    assert "The run has not finished (status running)" in html and count_svgs(html) == 3 + PER_JOB
    empty = store_run(tmp_path / "b", [])
    for fmt in ("html", "md", "csv", "json"):
        assert render_report(empty, fmt)
    assert json.loads(render_report(empty, "json"))["jobs"] == []


# --- formats ---------------------------------------------------------------------------------


def test_html_is_one_self_contained_file_with_charts_tables_and_distributions(
    tmp_path: Path,
) -> None:
    html = render_report(mixed_run(tmp_path), "html")
    assert html.count('<details class="bench"') == 2
    # job rows, headers, validity header and row, errors header and rows
    assert html.count("<tr>") == 12 + 2 + 2 + 1 + 3
    assert '<td class="status v-invalid">invalid</td><td class="mono">client_bound</td>' in html
    assert "Remedy: lower concurrency or rate" in html
    # per benchmark: 3 trend charts + PER_JOB per job with successful requests
    assert count_svgs(html) == (3 + PER_JOB * 8) + (3 + PER_JOB * 3)
    assert 'class="dist-select"' in html and "Metric definitions" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html


def test_html_escapes_untrusted_model_ids_and_error_messages(tmp_path: Path) -> None:
    html = render_report(mixed_run(tmp_path), "html")
    assert "alert(" in html  # the text is there...
    assert "<script>alert" not in html  # ...but never as markup
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "bad &lt;script&gt;" in html and "error budget broken &lt;script&gt;" in html


def test_html_banners_and_error_breakdown(tmp_path: Path) -> None:
    html = render_report(mixed_run(tmp_path), "html")
    assert html.count('<div class="banner') == 4
    assert "http_500 ×10" in html and "http_500 ×15" in html  # every 3rd and every 2nd of 30
    assert "http_500: bad &lt;script&gt;" in html


def test_html_distribution_samples_are_capped(tmp_path: Path) -> None:
    run_dir = store_run(tmp_path, [Spec("big", "m", {}, n=SAMPLE_CAP * 2 + 10)])
    html = render_report(run_dir, "html")
    note = f"{SAMPLE_CAP:,} of {SAMPLE_CAP * 2 + 10:,} ok requests (an evenly spaced sample)"
    assert note in html


def test_markdown_summary_is_compact_and_escaped(tmp_path: Path) -> None:
    md = render_report(mixed_run(tmp_path), "md")
    assert md.startswith("### runner · nightly · run `")
    assert "**failed** · jobs: ok=10 slo_missed=1 failed=2 · inventory: fallback (local)" in md
    assert "- ⚠ The model inventory came from the fallback file" in md
    assert "#### latency (ok=8)" in md and "#### stress (ok=2 slo_missed=1 failed=2)" in md
    assert "| org/alpha | concurrency=1 | ok | 12.5 | 15.0 | 2.00 | 2,560 | 0 |" in md
    assert "| ok · invalid · SLO missed |" in md
    assert ("- `stress/org/alpha/rate=2` invalid: **client_bound** (event-loop delay p99 40.0 ms "
            "\\> 10 ms): the load generator, not the server, was the limit") in md
    assert "Remedy: lower concurrency or rate per runner process" in md
    assert re.search(r"(?<!\\)[<>]", md) is None and "\\<script\\>" in md
    assert "&lt;" not in md and "&amp;" not in md  # Markdown, not HTML: entities show as typed
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") == 7 for line in rows)  # pipes in text never add a column


def test_markdown_caps_rows_per_benchmark(tmp_path: Path) -> None:
    run_dir = store_run(tmp_path, grid("wide", ["m"], list(range(1, 61)), n=3))
    md = render_report(run_dir, "md")
    assert "| … 10 more jobs: see report.html |" in md


def test_csv_has_one_row_per_job_and_every_metric(tmp_path: Path) -> None:
    text = render_report(mixed_run(tmp_path), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    header = next(csv.reader(io.StringIO(text)))
    assert len(rows) == 12 and len(header) == len(set(header))
    fixed = [c for c in schema_leaves() if c not in DYNAMIC]
    assert [c for c in header if c in fixed] == fixed  # every metric, in schema order
    assert {"ttft_ms.p95", "throughput.output_tokens_per_s", "client.client_bound",
            "param.concurrency", "param.rate", "param.extra_body", "errors.http_500",
            "slo.checks.ttft_ms.p95.value", "slo.passed", "load_duration_s"} <= set(header)
    beta = next(r for r in rows if r["id"] == "latency/org/beta/concurrency=4")
    assert beta["param.concurrency"] == "4" and beta["param.rate"] == ""
    assert beta["errors.http_500"] == "0" and beta["client.client_bound"] == "false"
    assert float(beta["ttft_ms.p50"]) > 0 and beta["param.extra_body"] == '{"ignore_eos": true}'
    unreachable = next(r for r in rows if r["error"] == "unreachable")
    assert unreachable["ttft_ms.p50"] == "" and unreachable["errors.http_500"] == ""


def test_csv_metric_columns_are_the_same_for_every_run(tmp_path: Path) -> None:
    def header(run_dir: str) -> list[str]:
        names = next(csv.reader(io.StringIO(render_report(run_dir, "csv"))))
        return [c for c in names if "." in c and not c.startswith(("param.", "errors."))]

    one = store_run(tmp_path / "a", grid("x", ["m"], [1]))
    other = store_run(tmp_path / "b", grid("y", ["n", "o"], [1, 2], param="rate"))
    assert header(one) == header(other)


def test_json_has_run_info_warnings_and_every_job(tmp_path: Path) -> None:
    data = json.loads(render_report(mixed_run(tmp_path), "json"))
    assert data["run"]["plan"]["name"] == "nightly" and data["run"]["status"] == "failed"
    assert data["run"]["inventory"]["source"] == "fallback"
    assert data["run"]["totals"] == {"ok": 10, "slo_missed": 1, "failed": 2}
    assert len(data["jobs"]) == 12 and data["jobs"][0]["metrics"]["requests"]["ok"] == 30
    assert any("client_bound" in w for w in data["warnings"])


def test_write_reports_writes_html_and_markdown_into_the_run(tmp_path: Path) -> None:
    run_dir = mixed_run(tmp_path)
    paths = write_reports(run_dir)
    assert [Path(p).name for p in paths] == ["report.html", "summary.md"]
    assert all(Path(p).parent == Path(run_dir) and Path(p).stat().st_size > 0 for p in paths)
    assert Path(paths[0]).read_text() == render_report(run_dir, "html")


# --- CLI -------------------------------------------------------------------------------------


def test_cli_prints_or_writes_each_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = mixed_run(tmp_path)
    assert main(["report", run_dir, "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("### runner · nightly")
    for fmt in ("html", "csv", "json"):
        out = tmp_path / f"report.{fmt}"
        assert main(["report", run_dir, "--format", fmt, "-o", str(out)]) == 0
        assert out.read_text() == render_report(run_dir, fmt)
        assert f"to {out}" in capsys.readouterr().err


def test_cli_resolves_a_run_id_and_reports_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = store_run(tmp_path / "results", grid("x", ["m"], [1]))
    monkeypatch.chdir(tmp_path)
    assert main(["report", Path(run_dir).name, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["run"]["run_id"] == Path(run_dir).name
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no run" in capsys.readouterr().err
    assert main(["report", run_dir, "-o", str(tmp_path / "no" / "dir" / "r.html")]) == 2
    assert "cannot write the report" in capsys.readouterr().err


def test_a_report_the_disk_has_no_room_for_is_exit_74(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk said exit 2 ("invalid input") and no 'free some space'."""
    run_dir = store_run(tmp_path / "results", grid("x", ["m"], [1]))
    assert main(["report", run_dir, "-o", "/dev/full"]) == 74
    assert capsys.readouterr().err == ("error: /dev/full: cannot write the report (No space left "
                                       "on device); free some space, then run it again\n")


def test_report_of_a_real_run_against_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        "default: sim\nservers:\n  sim: {kind: mock, models: [a/b, 'c:d'], ttft_ms: 2, "
        "itl_ms: 1, output_tokens: 16}\n")
    (configs / "models.yaml").write_text("models: []\n")
    plan = tmp_path / "e2e.yaml"
    plan.write_text("version: 1\nname: e2e\nbenchmarks:\n  - name: latency\n    models: all\n"
                    "    load: {requests: 12}\n    matrix: {concurrency: [1, 4]}\n")
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    assert main(["apply", str(plan), "--results", str(tmp_path / "results")]) == 0
    capsys.readouterr()
    run_dir = str(next((tmp_path / "results" / "e2e").iterdir()))
    html = Path(write_reports(run_dir)[0]).read_text()
    # job rows and header; prompt lengths (synthetic prompts, calibrated): header and 4 rows
    assert count_svgs(html) == 3 + PER_JOB * 4 and html.count("<tr>") == 4 + 1 + 1 + 4
    assert "latency/c:d/concurrency=4" in html
    rows = list(csv.DictReader(io.StringIO(render_report(run_dir, "csv"))))
    assert [r["requests.ok"] for r in rows] == ["12"] * 4
    assert {r["param.concurrency"] for r in rows} == {"1", "4"}
    assert "| c:d | concurrency=4 | ok |" in render_report(run_dir, "md")


def test_three_hundred_jobs_stay_usable(tmp_path: Path) -> None:
    models = [f"org/model-{i:02d}" for i in range(10)]
    specs = [s for b in ("latency", "throughput", "long") for s in
             grid(b, models, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], n=20)]
    run_dir = store_run(tmp_path, specs)
    started = time.process_time()  # CPU time: other processes on a busy machine do not count
    html = render_report(run_dir, "html")
    seconds = time.process_time() - started
    print(f"300 jobs: html {len(html) / 1e6:.2f} MB in {seconds:.2f} s of CPU")
    assert len(specs) == 300 and html.count("<tr>") == 300 + 3
    assert len(html) < 5_000_000 and seconds < 30
    assert html.count(" open>") + html.count(" open=") <= 1  # only the first benchmark expanded
    assert count_svgs(html) == 3 * (3 + PER_JOB * 40)


def test_tick_labels_keep_neighbouring_ticks_apart() -> None:
    from runner.report.svgchart import tick_labels

    assert tick_labels([165.8, 166.0, 166.2]) == ["165.8", "166", "166.2"]
    assert tick_labels([0, 20, 40]) == ["0", "20", "40"]
    assert tick_labels([12_000, 14_000]) == ["12k", "14k"]


def test_report_command_takes_latest_of_a_plan_among_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.main import main

    results = tmp_path / "results"
    for plan in ("alpha", "beta"):
        store = RunStore.create(str(results), plan, {"plan": {"name": plan}})
        store.set_jobs([])
        store.finish("ok")
    assert main(["report", "latest", "--plan", "beta", "--results", str(results),
                 "--format", "json"]) == 0
    assert '"beta"' in capsys.readouterr().out


def test_cli_html_on_a_terminal_goes_to_the_runs_file_and_its_path_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = mixed_run(tmp_path)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["report", run_dir]) == 0
    out = capsys.readouterr().out
    page = Path(run_dir) / "report.html"
    assert out == f"wrote html report of {run_dir} to {page}\n"
    assert page.read_text() == render_report(run_dir, "html")
    assert main(["report", run_dir, "-o", "-"]) == 0  # asked for on stdout: it goes there
    assert capsys.readouterr().out.startswith("<!doctype html>")
    assert main(["report", run_dir, "--format", "md"]) == 0  # Markdown reads well on screen
    assert capsys.readouterr().out.startswith("### runner · nightly")


def test_cli_html_piped_goes_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = mixed_run(tmp_path)
    assert main(["report", run_dir]) == 0  # capsys: not a terminal, as in `| less`
    assert capsys.readouterr().out.startswith("<!doctype html>")
    assert not (Path(run_dir) / "report.html").exists()


def test_cli_report_to_dev_null_or_a_symlink_writes_into_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = mixed_run(tmp_path)
    assert main(["report", run_dir, "-o", os.devnull]) == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    real, link = tmp_path / "real.html", tmp_path / "link.html"
    real.write_text("")
    link.symlink_to(real)
    assert main(["report", run_dir, "-o", str(link)]) == 0
    assert link.is_symlink() and real.read_text().startswith("<!doctype html>")


def test_cli_a_plan_folder_lists_its_runs_and_no_runs_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for command in (["report", "latest"], ["compare", "previous", "latest"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: no runs are stored yet under results/; run `runner apply")
    run_dir = store_run(tmp_path / "results", grid("x", ["m"], [1]))
    assert main(["report", "results/nightly"]) == 2
    err = capsys.readouterr().err
    assert f"results/nightly is a plan's folder, not a run; its runs: {Path(run_dir).name}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("job", "text"), [
    ({"point": {"concurrency": 1, "max_tokens": 64}}, "concurrency=1,max_tokens=64"),
    ({"point": {}, "params": {"concurrency": 8, "requests": 40}}, "concurrency=8"),
    ({"point": {}, "params": {"rate": 4}}, "rate=4"),
    ({"point": {}, "params": {}}, "-"),
])
def test_a_job_without_a_matrix_point_is_labelled_by_its_load(job: dict[str, Any],
                                                              text: str) -> None:
    assert reportdata.label(job) == text


def test_reports_show_queue_inclusive_latency_when_the_client_queue_is_material(
    tmp_path: Path,
) -> None:
    """Issue 10 §4: summary.md and the HTML showed only TTFT; an open loop whose requests
    waited 900 ms for a max_concurrency slot now shows latency from the scheduled time too."""
    run_dir = store_run(tmp_path, [Spec("open", "org/alpha", {"rate": 10}, queued_ms=900.0),
                                   Spec("open", "org/beta", {"rate": 10}, queued_ms=1.0)])
    note = "queued: TTFT p50 925 ms, E2E p50 955 ms from scheduled (queue p50 900 ms)"
    for fmt_name in ("md", "html"):
        text = render_report(run_dir, fmt_name)
        assert text.count(note) == 1, fmt_name  # alpha's; beta's 1 ms queue is not material
        assert "queue p50 1 ms" not in text



def test_an_embeddings_benchmarks_charts_are_its_latency_and_inputs() -> None:
    def job(size: int, inputs: float | None) -> dict[str, Any]:
        return {"id": f"e/m/batch_size={size}", "benchmark": "e", "model": "m",
                "point": {"batch_size": size},
                "params": {"endpoint": "embeddings", "batch_size": size},
                "metrics": {"e2e_ms": {"p50": 5.0 * size, "p95": 6.0 * size},
                            "ttft_ms": {"p50": None, "p95": None},
                            "throughput": {"output_tokens_per_s": None, "inputs_per_s": inputs}}}

    jobs = [job(1, 300.0), job(4, 1200.0)]
    titles = [re.findall(r'class="title"[^>]*>([^<]*)', str(c))
              for c in charts(jobs, reportdata.axis(jobs))]
    assert titles == [["E2E latency"], ["Inputs/s"]]
    chat = [dict(j, params={"endpoint": "chat"}, metrics={
        **j["metrics"], "throughput": {"output_tokens_per_s": 9.0, "inputs_per_s": None}})
            for j in jobs]
    assert [re.findall(r'class="title"[^>]*>([^<]*)', str(c))
            for c in charts(chat, reportdata.axis(chat))] == [["TTFT"], ["TPOT"],
                                                                ["Output tokens/s"]]


def test_a_point_without_the_axis_key_is_named_by_its_own_load_never_null() -> None:
    # Seen in a sweep's chart: concurrency ticks "1 3 null", its rate jobs "at concurrency 2".
    ax = reportdata.axis(jobs({"concurrency": 1}, {"concurrency": 3}, {"rate": 60.54},
                              {"rate": 84.01}))
    assert ax.param == "concurrency"
    assert ax.categories == ("1", "3", "rate=60.54", "rate=84.01")
    assert ax.xs == (0, 1, 2, 3)


def test_a_category_charts_tooltips_name_the_category_not_its_index() -> None:
    # Seen in a sweep's chart: "m1: 20.6 at concurrency 0" for the job at concurrency 1.
    svg = svgchart.line_chart([svgchart.Series("m1", ((0, 20.6), (1, 21.0)))], title="TTFT",
                              x_label="concurrency", y_label="ms", categories=("1", "3"))
    assert "<title>m1: 20.6 at concurrency 1</title>" in svg
    assert "<title>m1: 21 at concurrency 3</title>" in svg


def test_an_embeddings_benchmark_charts_e2e_and_inputs_per_s_not_empty_token_charts() -> None:
    # Seen: an embeddings search's charts were "TTFT no data", "TPOT no data" and an output
    # tokens/s line at 0: no chart of what the job measures (E2E, inputs/s).
    from runner.report.html import charts
    made = [{"model": "e1", "point": {"batch_size": b}, "params": {"endpoint": "embeddings"},
             "metrics": {"e2e_ms": {"p50": 5.0 * b, "p95": 6.0 * b},
                         "throughput": {"inputs_per_s": 100.0 * b, "output_tokens_per_s": 0}}}
            for b in (1, 16)]
    shown = "".join(charts(made, reportdata.axis(made)))
    assert "E2E latency" in shown and "Inputs/s" in shown
    assert "TTFT" not in shown and "Output tokens/s" not in shown and "no data" not in shown


def test_an_embeddings_jobs_distribution_and_timeline_skip_token_charts() -> None:
    from runner.load.records import RequestRecord
    from runner.report.html import distribution
    job = {"id": "e/e1", "params": {"endpoint": "embeddings"},
           "metrics": {"e2e_ms": {"p50": 5.0, "p99": 6.0}}}
    records = [RequestRecord(index=i, ok=True, sent_ms=i * 10.0, e2e_ms=5.0, streamed=False)
               for i in range(4)]
    shown = "".join(map(str, [*distribution(job, records).charts,
                              *distribution(job, records).timeline]))
    assert "E2E latency" in shown and "E2E p50 by send time" in shown
    assert "TTFT" not in shown and "Output tokens/s" not in shown and "no data" not in shown


def test_an_inventory_of_one_model_is_one_model() -> None:
    # Seen in the HTML report of a run on a one-model simulator: "live from simemb, 1 models".
    from stored_runs import LIVE
    with __import__("tempfile").TemporaryDirectory() as results:
        run = store_run(Path(results), grid("b", ["m"], [1]), inventory={**LIVE, "model_count": 1})
        html = render_report(run, "html")
    assert ", 1 model at " in html and "1 models" not in html
