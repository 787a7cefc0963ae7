from __future__ import annotations

import json
import random
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fakeclock import StepClock

from runner.errors import InputError
from runner.load.records import RequestRecord
from runner.main import main
from runner.report.compare import (
    DEFAULT_METRICS,
    METRICS,
    Row,
    compare,
    find_metric,
    match_jobs,
    parse_metrics,
    parse_threshold,
    verdict,
)
from runner.report.noise import difference_interval, request_values, resampled_percentile
from runner.results.runs import load_run
from runner.results.store import RunStore
from runner.run.metrics import _percentile, summarize

Samples = Mapping[str, list[RequestRecord]]



def Clock() -> StepClock:
    return StepClock()


def job(model: str, concurrency: int = 1, **params: Any) -> dict[str, Any]:
    point = {"concurrency": concurrency}
    return {"id": f"chat/{model}/concurrency={concurrency}",
            "slug": f"chat_{model}_c{concurrency}", "benchmark": "chat", "model": model,
            "point": point, "params": {"max_tokens": 32, **point, **params}}


def records(seed: int, n: int = 200, ttft: float = 100.0, sd: float = 10.0,
            failed: int = 0) -> list[RequestRecord]:
    """n requests: TTFT ~ N(ttft, sd), 32 tokens at ~10 ms each; then `failed` failures."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        first, gap = max(1.0, rng.gauss(ttft, sd)), max(0.1, rng.gauss(10.0, 1.0))
        out.append(RequestRecord(index=i, sent_ms=i * 50.0, ttft_ms=first, itl_ms=[gap] * 31,
                                 e2e_ms=first + 31 * gap, output_tokens=32,
                                 output_tokens_source="usage", ok=True))
    out += [RequestRecord(index=n + i, sent_ms=(n + i) * 50.0, ok=False, error_kind="timeout")
            for i in range(failed)]
    return out


def store_run(results: Path, clock: StepClock, jobs: Mapping[str, tuple[dict[str, Any],
              list[RequestRecord]]], plan: str = "nightly", *, logs: bool = True) -> str:
    """A finished run of `jobs` (slug -> (job, records)); returns its directory."""
    manifest = {"plan": {"name": plan, "path": f"plans/{plan}.yaml", "sha256": "ab" * 32}}
    store = RunStore.create(str(results), plan, manifest, now=clock)
    store.set_jobs([j for j, _ in jobs.values()])
    for slug, (spec, recs) in jobs.items():
        if logs:
            with store.request_log(slug) as log:
                for rec in recs:
                    log.write(rec)
        store.write_job({"status": "ok", **spec, "metrics": summarize(recs)})
    store.finish("ok")
    return store.run_dir


@pytest.fixture
def runs(tmp_path: Path) -> tuple[str, str]:
    """base and new runs of plan nightly: m1 regresses on TTFT (~100 -> ~130 ms); m2's TTFT
    p95 is 22% worse on 30 noisy samples (within noise); m3 only in base, m4 only in new."""
    clock, results = Clock(), tmp_path / "results"
    m1, m2, m3, m4 = job("m1"), job("m2"), job("m3"), job("m4")
    base = store_run(results, clock, {"chat_m1_c1": (m1, records(1)),
                                      "chat_m2_c1": (m2, records(7, n=30, sd=40)),
                                      "chat_m3_c1": (m3, records(3))})
    new = store_run(results, clock, {"chat_m1_c1": (m1, records(2, ttft=130)),
                                     "chat_m2_c1": (m2, records(107, n=30, sd=40)),
                                     "chat_m4_c1": (m4, records(4))})
    return base, new


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- metric names and thresholds ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path", "higher_is_better", "samples"),
    [
        ("ttft_p50", ("ttft_ms", "p50"), False, "ttft_ms"),
        ("tpot_p99", ("tpot_ms", "p99"), False, "tpot_ms"),
        ("itl_p90", ("itl_ms", "p90"), False, "itl_ms"),
        ("e2e_mean", ("e2e_ms", "mean"), False, "e2e_ms"),
        ("output_tps", ("throughput", "output_tokens_per_s"), True, None),
        ("request_tps", ("throughput", "requests_per_s"), True, None),
        ("total_tps", ("throughput", "total_tokens_per_s"), True, None),
        ("prompt_tps", ("throughput", "prompt_tokens_per_s"), True, None),
        ("input_tps", ("throughput", "inputs_per_s"), True, None),
        ("goodput", ("goodput", "requests_per_s"), True, None),
        ("error_rate", ("error_rate",), False, None),
        ("prefix_hit_rate", ("prefix_cache", "achieved"), True, None),
    ],
)
def test_metric_table(
    name: str, path: tuple[str, ...], higher_is_better: bool, samples: str | None
) -> None:
    metric = METRICS[name]
    assert (metric.path, metric.higher_is_better, metric.samples) == (path, higher_is_better,
                                                                       samples)
    assert metric.index_name == ".".join(path)


def test_metric_value_reads_the_summary_and_tolerates_gaps() -> None:
    summary = {"metrics": {"ttft_ms": {"p95": 12}, "goodput": None, "error_rate": True}}
    assert METRICS["ttft_p95"].value(summary) == 12.0
    assert METRICS["goodput"].value(summary) is None
    assert METRICS["error_rate"].value(summary) is None
    assert METRICS["ttft_p50"].value({"metrics": None}) is None


def test_parse_metrics_default_dedup_and_unknown() -> None:
    assert [m.name for m in parse_metrics(None)] == list(DEFAULT_METRICS)
    assert [m.name for m in parse_metrics(" ttft_p99, goodput,ttft_p99")] == ["ttft_p99",
                                                                              "goodput"]
    with pytest.raises(InputError, match="did you mean ttft_p95"):
        parse_metrics("ttft_p95,tfft_p95")
    with pytest.raises(InputError, match="names no metric"):
        parse_metrics(" , ")
    with pytest.raises(InputError, match="known: ttft_p50"):
        find_metric("zzzzzzzz")


@pytest.mark.parametrize(
    ("text", "value"),
    [("10%", 0.1), ("0.1", 0.1), (" 5 % ", 0.05), ("0", 0.0), ("0%", 0.0), ("150%", 1.5),
     ("1", 1.0)],
)
def test_parse_threshold(text: str, value: float) -> None:
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("10", "did you mean 10%"), ("-5%", "expected a percentage"), ("abc", "expected"),
     ("nan", "expected"), ("inf%", "expected"), ("", "expected")],
)
def test_parse_threshold_rejects(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_threshold(text)


# --- verdicts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "base", "new", "threshold", "expected"),
    [
        ("ttft_p95", 100.0, 130.0, 0.10, "regression"),  # latency up: worse
        ("ttft_p95", 100.0, 109.0, 0.10, "worse"),
        ("ttft_p95", 100.0, 110.0, 0.10, "worse"),  # exactly the threshold is not beyond it
        ("ttft_p95", 100.0, 70.0, 0.10, "better"),
        ("ttft_p95", 100.0, 100.4, 0.10, "same"),  # under 0.5% is the same
        ("ttft_p95", 100.0, 100.4, 0.0, "regression"),  # threshold 0: any worsening fails
        ("ttft_p95", 100.0, 100.0, 0.0, "same"),
        ("output_tps", 1000.0, 800.0, 0.10, "regression"),  # throughput down: worse
        ("output_tps", 1000.0, 950.0, 0.10, "worse"),
        ("output_tps", 1000.0, 1300.0, 0.10, "better"),
        ("goodput", 0.0, 5.0, 0.10, "better"),  # a zero base: any gain is better
        ("goodput", 5.0, 0.0, 0.10, "regression"),
        ("request_tps", 0.0, 0.0, 0.10, "same"),
        ("error_rate", 0.0, 0.02, 0.10, "worse"),  # absolute: +2 points of 10 allowed
        ("error_rate", 0.0, 0.15, 0.10, "regression"),
        ("error_rate", 0.05, 0.0, 0.10, "better"),
        ("error_rate", 0.01, 0.0104, 0.10, "same"),  # under 0.05 points
        ("error_rate", 0.0, 0.01, 0.0, "regression"),
        ("prefix_hit_rate", 0.8, 0.2, 0.10, "regression"),  # absolute: the cache hit less
        ("prefix_hit_rate", 0.8, 0.75, 0.10, "worse"),
        ("prefix_hit_rate", 0.5, 0.8, 0.10, "better"),
        ("ttft_p95", None, 100.0, 0.10, "no data"),
        ("ttft_p95", 100.0, None, 0.10, "no data"),
    ],
)
def test_verdict(name: str, base: float | None, new: float | None, threshold: float,
                 expected: str) -> None:
    assert verdict(METRICS[name], base, new, threshold) == expected


def test_row_deltas_error_rate_is_absolute() -> None:
    row = Row(METRICS["error_rate"], 0.0, 0.03, "worse")
    assert row.delta == pytest.approx(0.03)
    assert row.delta_pct is None
    latency = Row(METRICS["ttft_p50"], 200.0, 250.0, "regression")
    assert (latency.delta, latency.delta_pct) == (50.0, 25.0)
    assert Row(METRICS["goodput"], 0.0, 1.0, "better").delta_pct is None


@pytest.mark.parametrize(
    ("verdict_", "ci", "gates", "within_noise"),
    [
        ("regression", None, True, None),  # no request data: the threshold alone decides
        ("regression", (5.0, 40.0), True, False),
        ("regression", (-5.0, 40.0), False, True),  # within noise: reported, not gating
        ("worse", (1.0, 2.0), False, False),
        ("better", (-3.0, 1.0), False, True),
    ],
)
def test_row_gates_unless_within_noise(
    verdict_: str, ci: tuple[float, float] | None, gates: bool, within_noise: bool | None
) -> None:
    row = Row(METRICS["ttft_p95"], 100.0, 130.0, verdict_, ci)
    assert (row.gates, row.within_noise) == (gates, within_noise)


# --- noise -------------------------------------------------------------------------------


def test_resampled_percentile_matches_a_plain_bootstrap() -> None:
    rng = random.Random(5)
    data = sorted(rng.lognormvariate(4, 0.5) for _ in range(57))
    for p in (50, 95, 99):
        fast = [resampled_percentile(data, p, rng) for _ in range(4000)]
        plain = [_percentile(sorted(rng.choices(data, k=len(data))), p) for _ in range(4000)]
        assert statistics.fmean(fast) == pytest.approx(statistics.fmean(plain), rel=0.02)
        assert statistics.pstdev(fast) == pytest.approx(statistics.pstdev(plain), rel=0.1)


def test_resampled_percentile_stays_inside_the_data() -> None:
    rng = random.Random(1)
    assert resampled_percentile([7.0], 99, rng) == 7.0
    draws = [resampled_percentile([1.0, 2.0, 3.0], 50, rng) for _ in range(500)]
    assert min(draws) >= 1.0 and max(draws) <= 3.0 and len(set(draws)) > 2


def _values(seed: int, n: int, mean: float, sd: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


@pytest.mark.parametrize("name", ["ttft_p50", "ttft_p95", "ttft_mean"])
def test_a_real_shift_is_outside_the_noise(name: str) -> None:
    ci = difference_interval(_values(1, 200, 100, 10), _values(2, 200, 130, 10),
                             METRICS[name].path[-1], "seed")
    assert ci is not None and 20 < ci[0] < 30 < ci[1] < 40


@pytest.mark.parametrize("name", ["ttft_p50", "ttft_p95", "ttft_mean"])
def test_the_same_distribution_is_within_noise(name: str) -> None:
    ci = difference_interval(_values(1, 200, 100, 10), _values(2, 200, 100, 10),
                             METRICS[name].path[-1], "seed")
    assert ci is not None and ci[0] < 0 < ci[1]


def test_difference_interval_is_seeded_and_needs_samples() -> None:
    base, new, metric = _values(1, 50, 100, 10), _values(2, 50, 105, 10), "p90"
    assert difference_interval(base, new, metric, "a") == difference_interval(base, new,
                                                                               metric, "a")
    assert difference_interval(base[:9], new, metric, "a") is None


def test_request_values_skip_warmup_and_failures() -> None:
    recs = [*records(1, n=3), RequestRecord(index=9, warmup=True, ttft_ms=1.0, ok=True)]
    recs += records(1, n=0, failed=2)
    assert len(request_values(recs, "ttft_ms")) == 3
    assert len(request_values(recs, "itl_ms")) == 93
    assert len(request_values(recs, "tpot_ms")) == 3


# --- matching and the comparison ---------------------------------------------------------


def test_match_jobs_by_id_then_by_point() -> None:
    renamed = {**job("m2"), "id": "chat/m2/c=1"}  # an older id format, same point
    moved = job("m5", concurrency=8)
    pairs, only_base, only_new = match_jobs([job("m1"), job("m2"), job("m3")],
                                            [job("m1"), renamed, moved])
    assert [(b["id"], n["id"]) for b, n in pairs] == [
        ("chat/m1/concurrency=1", "chat/m1/concurrency=1"),
        ("chat/m2/concurrency=1", "chat/m2/c=1")]
    assert [j["id"] for j in only_base] == ["chat/m3/concurrency=1"]
    assert [j["id"] for j in only_new] == ["chat/m5/concurrency=8"]


def test_match_jobs_without_point_use_the_id() -> None:
    old = {k: v for k, v in job("m1").items() if k != "point"}
    pairs, only_base, only_new = match_jobs([old], [{**old, "id": "other"}])
    assert (pairs, len(only_base), len(only_new)) == ([], 1, 1)


def test_compare_stored_runs(runs: tuple[str, str]) -> None:
    result = compare(load_run(runs[0]), load_run(runs[1]), parse_metrics(None), 0.1)
    rows = {(job.id.split("/")[1], row.metric.name): row for job in result.jobs
            for row in job.rows}
    assert rows["m1", "ttft_p50"].verdict == "regression" and rows["m1", "ttft_p50"].gates
    assert rows["m1", "ttft_p95"].within_noise is False
    assert rows["m1", "tpot_p50"].within_noise is True
    assert rows["m1", "output_tps"].ci is None
    m2 = rows["m2", "ttft_p95"]
    assert m2.verdict == "regression" and m2.within_noise and not m2.gates
    assert (result.only_in_base, result.only_in_new) == (("chat/m3/concurrency=1",),
                                                        ("chat/m4/concurrency=1",))
    assert result.failed
    assert result.counts()["regressions"] == sum(r.gates for r in rows.values())


def test_compare_without_request_logs_has_no_noise_verdict(tmp_path: Path) -> None:
    clock, results, m1 = Clock(), tmp_path / "results", job("m1")
    base = store_run(results, clock, {"chat_m1_c1": (m1, records(1))}, logs=False)
    new = store_run(results, clock, {"chat_m1_c1": (m1, records(2, ttft=130))})
    result = compare(load_run(base), load_run(new), parse_metrics("ttft_p50"), 0.1)
    assert [(r.verdict, r.ci, r.gates) for r in result.jobs[0].rows] == [
        ("regression", None, True)]


class FakeRun:
    """A run in memory; counts request reads."""

    def __init__(self, jobs: Sequence[dict[str, Any]], recs: list[RequestRecord]) -> None:
        self.jobs = jobs
        self.recs, self.reads = recs, 0

    def requests(self, slug: str) -> Sequence[RequestRecord]:
        self.reads += 1
        return self.recs


def test_compare_reads_each_request_log_once_and_only_when_needed() -> None:
    summary = {**job("m1"), "status": "ok", "metrics": summarize(records(1))}
    base, new = FakeRun([summary], records(1)), FakeRun([summary], records(1))
    result = compare(base, new, parse_metrics("ttft_p50,ttft_p99,itl_p50"), 0.1)
    assert (base.reads, new.reads) == (1, 1)
    assert {r.verdict for r in result.rows()} == {"same"}
    compare(base, new, parse_metrics("output_tps,error_rate"), 0.1)
    assert (base.reads, new.reads) == (1, 1)


def test_params_changed_and_failed_status(tmp_path: Path) -> None:
    clock, results = Clock(), tmp_path / "results"
    base = store_run(results, clock, {"s": ({**job("m1"), "slug": "s"}, records(1))})
    new = store_run(results, clock, {"s": ({**job("m1", max_tokens=64), "slug": "s"},
                                           records(1, failed=50))})
    result = compare(load_run(base), load_run(new), parse_metrics("error_rate"), 0.1)
    pair = result.jobs[0]
    assert pair.params_changed() == {"max_tokens": (32, 64)}
    assert pair.rows[0].verdict == "regression" and pair.rows[0].delta == pytest.approx(0.2)


# --- the command -------------------------------------------------------------------------


def test_cli_text_marks_regressions_and_exits_4(
    runs: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "compare", *runs, "--allow-missing")
    assert code == 4 and err == "GATE: 2 regressions beyond the 10% threshold\n"
    lines = out.splitlines()
    assert lines[0].startswith("base: nightly/") and lines[1].startswith("new:  nightly/")
    m1 = lines[lines.index("chat/m1/concurrency=1") + 1:]
    assert m1[0].split() == ["metric", "unit", "base", "new", "delta", "delta%", "verdict"]
    ttft = m1[1].split()
    assert ttft[:3] == [">>", "ttft_p50", "ms"] and ttft[-1] == "REGRESSION"
    assert "regression (within noise)" in out
    assert "only in base: chat/m3/concurrency=1" in lines
    assert "only in new: chat/m4/concurrency=1" in lines
    assert lines[-2].endswith("within noise; jobs only in base: 1; only in new: 1")
    assert lines[-1] == "gate: FAILED: 2 regressions beyond the 10% threshold"


def test_cli_summary_line_counts(runs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "compare", *runs, "--format", "json")
    summary = json.loads(out)["summary"]
    _, text, _ = cli(capsys, "compare", *runs)
    assert text.splitlines()[-3] == (
        f"{summary['regressions']} regression{'s' if summary['regressions'] != 1 else ''}, "
        f"{summary['improvements']} improvement{'s' if summary['improvements'] != 1 else ''}, "
        f"{summary['within_noise']} within noise; jobs only in base: 1; only in new: 1")
    assert summary["gate"] == "failed" and code == 4


def test_cli_threshold_and_metrics_decide_the_gate(
    runs: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    allow = "--allow-missing"
    assert cli(capsys, "compare", *runs, "--threshold", "50%", allow)[0] == 0
    assert cli(capsys, "compare", *runs, "--threshold", "0.2", allow)[0] == 4
    assert cli(capsys, "compare", *runs, "--metric", "output_tps,error_rate", allow)[0] == 0


def test_cli_jobs_missing_from_new_fail_the_gate_unless_allowed(
    runs: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Seen: NEW ran nothing at all, and compare said "jobs only in base: 18" and exited 0.
    code, out, err = cli(capsys, "compare", *runs, "--threshold", "50%", "--gate")
    assert code == 4
    assert "GATE: 1 job(s) of BASE missing from NEW (chat/m3/concurrency=1)" in err
    assert "--allow-missing" in err and out.splitlines()[-1].startswith("gate: FAILED: 1 job")
    code, data, _ = cli(capsys, "compare", *runs, "--threshold", "50%", "--format", "json")
    assert code == 4 and json.loads(data)["summary"]["gate"] == "failed"
    assert json.loads(data)["summary"]["gate_failures"][0].startswith("1 job(s) of BASE")
    code, out, err = cli(capsys, "compare", *runs, "--threshold", "50%", "--allow-missing")
    assert (code, err) == (0, "") and out.splitlines()[-1] == "gate: passed"
    assert "only in base: chat/m3/concurrency=1" in out.splitlines()


def test_cli_a_regression_within_noise_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock, results, m2 = Clock(), tmp_path / "results", job("m2")
    base = store_run(results, clock, {"chat_m2_c1": (m2, records(7, n=30, sd=40))})
    new = store_run(results, clock, {"chat_m2_c1": (m2, records(107, n=30, sd=40))})
    code, out, _ = cli(capsys, "compare", base, new, "--metric", "ttft_p95")
    assert code == 0
    row = next(line for line in out.splitlines() if "ttft_p95" in line)
    assert not row.startswith("  >>") and row.endswith("  regression (within noise)")
    assert out.splitlines()[-2].startswith("0 regressions, 0 improvements, 1 within noise")


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--threshold", "ten"], "--threshold ten"), (["--threshold", "10"], "did you mean 10%"),
     (["--metric", "ttft_p96"], "unknown metric 'ttft_p96'; did you mean ttft_p99 or ttft_p95")],
)
def test_cli_invalid_options_exit_2(
    runs: tuple[str, str], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "compare", *runs, *extra)
    assert (code, out) == (2, "") and message in err


def test_cli_resolves_latest_previous_and_run_ids(
    runs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = str(tmp_path / "results")
    by_dir = json.loads(cli(capsys, "compare", *runs, "--format", "json")[1])
    by_name = cli(capsys, "compare", "previous", "latest", "--plan", "nightly",
                  "--results", results, "--format", "json")
    ids = [Path(r).name for r in runs]
    by_id = cli(capsys, "compare", *ids, "--results", results, "--format", "json")
    no_plan = cli(capsys, "compare", "previous", "latest", "--results", results,
                  "--format", "json")
    for code, out, _ in (by_name, by_id, no_plan):
        assert code == 4
        data = json.loads(out)
        assert [data["base"]["run_id"], data["new"]["run_id"]] == ids
        assert data["jobs"] == by_dir["jobs"]


def test_cli_unknown_run_and_same_run(
    runs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = str(tmp_path / "results")
    code, _, err = cli(capsys, "compare", "nope", "latest", "--results", results)
    assert code == 2 and "no run 'nope'" in err
    code, _, err = cli(capsys, "compare", "latest", "latest", "--results", results)
    assert code == 0 and "BASE and NEW are the same run" in err


def test_cli_json_has_everything(runs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(cli(capsys, "compare", *runs, "--format", "json")[1])
    assert data["threshold"] == 0.1 and data["metrics"] == list(DEFAULT_METRICS)
    assert data["noise"] == {"level": 0.95, "rounds": 1000, "min_samples": 10,
                             "repetitions": {"method": "student_t", "level": 0.95}}
    m1 = data["jobs"][0]
    assert (m1["id"], m1["benchmark"], m1["model"], m1["point"]) == (
        "chat/m1/concurrency=1", "chat", "m1", {"concurrency": 1})
    row = m1["rows"][0]
    assert set(row) == {"metric", "unit", "base", "new", "delta", "delta_pct", "verdict",
                        "within_noise", "ci", "gates"}
    assert row["metric"] == "ttft_p50" and row["gates"] and row["ci"][0] > 0
    assert row["delta_pct"] == pytest.approx(row["delta"] / row["base"] * 100)
    assert data["only_in_base"] == ["chat/m3/concurrency=1"]
    assert data["only_in_new"] == ["chat/m4/concurrency=1"]


def test_cli_markdown(runs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "compare", *runs, "--format", "md")
    assert code == 4
    assert out.startswith("**runner compare**: base `nightly/")
    assert "#### `chat/m1/concurrency=1`" in out
    assert "| metric | base | new | Δ | Δ% | verdict |" in out
    ttft = next(line for line in out.splitlines() if line.startswith("| ttft_p50 (ms)"))
    assert ttft.endswith("| **REGRESSION** |")
    assert "**Only in base:** `chat/m3/concurrency=1`" in out
    assert "**Only in new:** `chat/m4/concurrency=1`" in out


def test_cli_text_notes_status_and_params(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock, results = Clock(), tmp_path / "results"
    base = store_run(results, clock, {"s": ({**job("m1"), "slug": "s"}, records(1))})
    new = store_run(results, clock, {"s": ({**job("m1", max_tokens=64), "slug": "s"},
                                           records(1, failed=1))})
    code, out, _ = cli(capsys, "compare", base, new, "--metric", "error_rate")
    assert code == 0
    assert "  params changed: max_tokens 32 -> 64" in out.splitlines()
    error = next(line for line in out.splitlines() if "error_rate" in line).split()
    assert error[2:] == ["0.00", "0.50", "+0.50pp", "-", "worse"]


def test_cli_a_job_that_failed_in_new_fails_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A failed job has no numbers to regress: without this check compare would say 0.
    clock, results = Clock(), tmp_path / "results"
    base = store_run(results, clock, {"s": ({**job("m1"), "slug": "s"}, records(1))})
    new = store_run(results, clock, {"s": ({**job("m1"), "slug": "s", "status": "failed"},
                                           records(1, n=0, failed=3))})
    code, out, err = cli(capsys, "compare", base, new)
    assert code == 4
    assert "GATE: 1 job(s) ok in BASE did not succeed in NEW (chat/m1/concurrency=1)" in err
    assert "  status: ok -> failed" in out.splitlines()


def test_cli_an_empty_new_run_fails_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Seen: an empty run (a tag typo ran nothing) became `latest`; compare said
    # "jobs only in base: 2" and exited 0.
    clock, results = Clock(), tmp_path / "results"
    store_run(results, clock, {f"s{i}": ({**job(f"m{i}"), "slug": f"s{i}"}, records(i))
                               for i in (1, 2)})
    store_run(results, clock, {})
    code, out, err = cli(capsys, "compare", "previous", "latest", "--results", str(results))
    assert code == 4 and "jobs only in base: 2" in out
    assert "GATE: 2 job(s) of BASE missing from NEW" in err
    code, out, _ = cli(capsys, "compare", "previous", "latest", "--results", str(results),
                       "--format", "md")
    assert code == 4 and "**Gate failed:** 2 job(s) of BASE missing from NEW" in out


# --- validity: jobs that are not valid do not gate ---------------------------------------------


def verdict_runs(tmp_path: Path, *, bound: bool = True, verdicts: bool = True) -> tuple[str, str]:
    """Two stored runs of one plan: `steady` the same in both, `busy` 3x slower in NEW, where
    the load generator was client-bound (event-loop delay p99 40 ms)."""
    from stored_runs import Spec, store_run

    def specs(ttft: float, client_bound: bool) -> list[Spec]:
        return [Spec("b", "steady", {"concurrency": 1}, verdict=verdicts),
                Spec("b", "busy", {"concurrency": 8}, ttft=ttft, client_bound=client_bound,
                     verdict=verdicts)]

    base = store_run(tmp_path, specs(20.0, False))
    return base, store_run(tmp_path, specs(60.0, bound))


def test_cli_sets_aside_a_client_bound_regression_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Seen: two back-to-back runs on a busy laptop, 42 REGRESSION lines and exit 4, all on
    # client-bound jobs.
    runs = verdict_runs(tmp_path)
    code, out, err = cli(capsys, "compare", *runs, "--gate")
    assert code == 0 and err == "" and "REGRESSION" not in out
    why = "new invalid: client_bound (event-loop delay p99 40.0 ms > 10 ms)"
    assert f"set aside: b/busy/concurrency=8: {why}" in out.splitlines()
    assert "set aside: 1 job not valid on a side: compared, not gated (--gate-invalid gates them)" \
        in out.splitlines()
    assert "regression (set aside)" in out and f"  set aside, not gated: {why}" in out
    assert out.splitlines()[-1] == "gate: passed"
    data = json.loads(cli(capsys, "compare", *runs, "--format", "json")[1])
    assert data["set_aside"] == [{"id": "b/busy/concurrency=8", "why": why}]
    busy = next(j for j in data["jobs"] if j["id"] == "b/busy/concurrency=8")
    assert busy["validity"] == {"base": "valid", "new": "invalid"}
    assert data["summary"]["regressions"] == 0 and data["summary"]["set_aside"] >= 1
    md = cli(capsys, "compare", *runs, "--format", "md")[1]
    assert "**Set aside from the gate:**" in md and f"- b/busy/concurrency=8: {why}" in md


def test_cli_gate_invalid_gates_them_and_a_valid_regression_still_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = verdict_runs(tmp_path)
    code, out, err = cli(capsys, "compare", *runs, "--gate-invalid")
    assert code == 4 and "REGRESSION" in out and "set aside" not in out
    assert err.startswith("GATE: ") and "regression" in err
    valid = verdict_runs(tmp_path / "valid", bound=False)
    code, out, _ = cli(capsys, "compare", *valid)
    assert code == 4 and "REGRESSION" in out and "set aside" not in out


def test_cli_runs_stored_before_verdicts_are_gated_and_say_validity_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = verdict_runs(tmp_path, verdicts=False)
    code, out, _ = cli(capsys, "compare", *runs)
    assert code == 4 and "REGRESSION" in out and "set aside" not in out
    assert "  validity unknown in base and new (stored before verdicts): gated as before" in out
    data = json.loads(cli(capsys, "compare", *runs, "--format", "json")[1])
    assert data["jobs"][0]["validity"] == {"base": "unknown", "new": "unknown"}


def test_metrics_without_data_on_a_side_are_skipped_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # issue 10 §7: answers that were not streamed have no TTFT/TPOT; compare skips those
    # metrics (never a 0.0 that gates or passes) and says which side had no data.
    whole = [RequestRecord(index=i, sent_ms=i * 50.0, e2e_ms=400.0 + i, output_tokens=32,
                           output_tokens_source="usage", streamed=False, ok=True)
             for i in range(50)]
    clock, results, m1 = Clock(), tmp_path / "results", job("m1")
    base = store_run(results, clock, {"chat_m1_c1": (m1, records(1, n=50))})
    new = store_run(results, clock, {"chat_m1_c1": (m1, whole)})
    code, out, _ = cli(capsys, "compare", base, new, "--gate")
    assert code == 0, out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines["ttft_p50"].rstrip().endswith("no data")
    assert lines["tpot_p50"].rstrip().endswith("no data")
    assert "skipped, no data: ttft_p50 (new), ttft_p95 (new), tpot_p50 (new)" in out
    code, out, _ = cli(capsys, "compare", base, new, "--format", "json")
    [pair] = json.loads(out)["jobs"]
    verdicts = {row["metric"]: row["verdict"] for row in pair["rows"]}
    assert verdicts["tpot_p50"] == "no data" and verdicts["e2e_p95"] != "no data"


def test_capacities_of_searches_over_other_parameters_are_not_gated() -> None:
    """A plan's search moved from concurrency (2 streams) to rate (40 req/s): compare called
    it +1900% better (and the other way round, a regression that failed the gate)."""
    from dataclasses import dataclass

    @dataclass
    class Run:
        manifest: dict[str, Any]
        jobs: tuple[()] = ()

        def requests(self, slug: str) -> list[RequestRecord]:
            return []

    def run(over: str, unit: str, value: float) -> Run:
        return Run({"capacity": [{"id": "knee/m", "benchmark": "knee", "model": "m",
                                  "point": {}, "over": over, "unit": unit, "capacity": value,
                                  "stopped_reason": "precision"}]})

    result = compare(run("rate", "req/s", 40.0), run("concurrency", "streams", 2.0),
                     [METRICS["ttft_p50"]], 0.1, gate_invalid=True)
    [pair] = result.jobs
    assert pair.aside is not None and "unit changed (req/s -> streams)" in pair.aside
    assert not result.gate_failures()


def embedding_records(seed: int, n: int = 40, e2e: float = 20.0) -> list[RequestRecord]:
    """n embeddings requests of 4 inputs (48 prompt tokens) each, E2E ~ N(e2e, 2) ms."""
    rng = random.Random(seed)
    return [RequestRecord(index=i, sent_ms=i * 25.0, e2e_ms=max(1.0, rng.gauss(e2e, 2.0)),
                          prompt_tokens=48, inputs=4, streamed=False, ok=True)
            for i in range(n)]


def test_an_embeddings_job_is_compared_on_its_inputs_not_on_output_tokens() -> None:
    summary = {**job("e1", endpoint="embeddings"), "status": "ok",
               "metrics": summarize(embedding_records(1))}
    assert summary["metrics"]["throughput"]["output_tokens_per_s"] is None
    run = FakeRun([summary], embedding_records(1))
    result = compare(run, run, parse_metrics(None), 0.1)
    names = [row.metric.name for row in result.rows()]
    assert names == ["e2e_p95", "input_tps", "prompt_tps", "error_rate"]
    assert all(row.base and row.base > 0 and row.verdict == "same" for row in result.rows()
               if row.metric.name != "error_rate")
    # a chat job beside it keeps every default metric
    chat = {**job("m1"), "status": "ok", "metrics": summarize(records(1))}
    rows = compare(FakeRun([chat], records(1)), FakeRun([chat], records(1)),
                   parse_metrics(None), 0.1).rows()
    assert [row.metric.name for row in rows] == list(DEFAULT_METRICS)
