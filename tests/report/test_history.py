from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakeclock import StepClock

from runner.errors import InputError, InventoryError
from runner.main import main
from runner.redaction import url_password
from runner.report.compare import METRICS
from runner.report.history import job_order, load_history, sparkline
from runner.results.store import RunStore

QWEN, LLAMA = "Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B"
Q1, Q8, L1, LONG = (f"chat/{QWEN}/concurrency=1", f"chat/{QWEN}/concurrency=8",
                    f"chat/{LLAMA}/concurrency=1", f"long/{QWEN}")



class Backend:
    """The results index of the running test: None (results/index.sqlite) or a PostgreSQL URL."""

    location: str | None = None


INDEX = Backend()


@pytest.fixture(autouse=True)
def backend(index_location: str | None, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Every test here runs on SQLite and on PostgreSQL (the CLI through $RUNNER_INDEX_URL)."""
    monkeypatch.setattr(INDEX, "location", index_location)
    if index_location:
        monkeypatch.setenv("RUNNER_INDEX_URL", index_location)
    else:
        monkeypatch.delenv("RUNNER_INDEX_URL", raising=False)
    return index_location


def Clock() -> StepClock:
    return StepClock(datetime(2026, 11, 20, 0, 0, 0, tzinfo=UTC), timedelta(hours=1))


def job(job_id: str) -> dict[str, Any]:
    benchmark, rest = job_id.split("/", 1)
    model = rest.rsplit("/", 1)[0] if "concurrency" in rest else rest
    return {"id": job_id, "slug": job_id.replace("/", "_"), "benchmark": benchmark,
            "model": model, "params": {"max_tokens": 32}}


def metrics(ttft_p95: float, error_rate: float = 0.0) -> dict[str, Any]:
    return {"ttft_ms": {"p95": ttft_p95}, "error_rate": error_rate,
            "throughput": {"output_tokens_per_s": 1000.0 - ttft_p95}}


def store_run(results: Path, clock: StepClock, values: Mapping[str, dict[str, Any]],
              plan: str = "nightly", status: Mapping[str, str] | None = None) -> str:
    manifest = {"plan": {"name": plan, "path": f"plans/{plan}.yaml", "sha256": "ab" * 32}}
    store = RunStore.create(str(results), plan, manifest, now=clock,
                            index_location=INDEX.location)
    store.set_jobs([job(j) for j in values])
    for job_id, data in values.items():
        state = (status or {}).get(job_id, "ok")
        store.write_job({**job(job_id), "status": state, "metrics": data})
    store.finish("ok")
    return store.run_id


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Four nightly runs (one with an interrupted job) and one run of plan `other`."""
    clock, folder = Clock(), tmp_path / "results"
    rows = [(100, 50, 200, 0.0), (120, 55, 210, 0.01), (110, 60, 190, 0.0), (150, 65, 205, 0.03)]
    for n, (q1, q8, l1, errors) in enumerate(rows):
        store_run(folder, clock, {Q1: metrics(q1, errors), Q8: metrics(q8), L1: metrics(l1),
                                  LONG: metrics(900)},
                  status={Q8: "interrupted"} if n == 2 else None)
        if n == 1:
            store_run(folder, clock, {Q1: metrics(999)}, plan="other")
    return folder


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ([100, 120, 110, 150], "▁▄▂█"),
        ([1, 2, 3, 4, 5, 6, 7, 8], "▁▂▃▄▅▆▇█"),
        ([5, 5, 5], "▄▄▄"),
        ([3.0], "▄"),
        ([], ""),
        ([-1, 1], "▁█"),
    ],
)
def test_sparkline(values: list[float], line: str) -> None:
    assert sparkline(values) == line


def test_text_one_line_per_job(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "history", "--plan", "nightly", "--results", str(results))
    assert (code, err) == (0, "")
    head, *lines, unknown = out.splitlines()
    assert head == "ttft_p95 (ms) over the last 4 runs of plan nightly"
    assert unknown == "validity unknown for 15 points (stored before verdicts)"
    assert [line.split()[0] for line in lines] == [Q1, Q8, L1, LONG]
    q1 = lines[0].split("  ")
    assert [part.strip() for part in q1 if part.strip()] == [
        Q1, "▁▄▂█", "first 100.0", "last 150.0", "min 100.0", "max 150.0",
        "change +50.0% (worse)", "4 runs"]
    q8 = next(line for line in lines if line.startswith(Q8))
    assert "▁▃█ " in q8 and q8.endswith("3 runs")  # the interrupted job is left out
    assert len({line.index("first") for line in lines}) == 1  # aligned


def test_jobs_sort_numbers_as_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [f"chat/{m}/concurrency={c}" for m in ("Qwen/Qwen3-30B", "Qwen/Qwen3-8B")
           for c in (16, 4, 1)]
    store_run(tmp_path, Clock(), {job_id: metrics(100) for job_id in ids})
    code, out, _ = cli(capsys, "history", "--results", str(tmp_path))
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == [
        f"chat/Qwen/Qwen3-8B/concurrency={c}" for c in (1, 4, 16)] + [
        f"chat/Qwen/Qwen3-30B/concurrency={c}" for c in (1, 4, 16)]
    assert out.splitlines()[1].endswith("  1 run")


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["b/m/rate=2.5", "b/m/rate=10", "b/m/rate=2.25"],
         ["b/m/rate=2.25", "b/m/rate=2.5", "b/m/rate=10"]),
        (["b/m/c=1,input_tokens=2048", "b/m/c=1,input_tokens=512", "b/m/c=16", "b/m/c=4"],
         ["b/m/c=1,input_tokens=512", "b/m/c=1,input_tokens=2048", "b/m/c=4", "b/m/c=16"]),
        (["b/Qwen/Qwen3-8B-FP8", "b/Qwen/Qwen3-8B", "a/z"],
         ["a/z", "b/Qwen/Qwen3-8B", "b/Qwen/Qwen3-8B-FP8"]),
    ],
)
def test_job_order(ids: list[str], expected: list[str]) -> None:
    assert sorted(ids, key=job_order) == expected


def test_text_direction_of_change(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "history", "--metric", "output_tps", "--plan", "nightly",
                    "--benchmark", "chat", "--model", QWEN, "--results", str(results))
    q1 = out.splitlines()[1]
    assert "change -5.6% (worse)" in q1  # throughput 900 -> 850: down is worse
    _, out, _ = cli(capsys, "history", "--metric", "error_rate", "--plan", "nightly",
                    "--results", str(results))
    q1 = next(line for line in out.splitlines() if line.startswith(Q1))
    assert "first 0.00" in q1 and "max 3.00" in q1 and "change +3.00pp (worse)" in q1


def test_last_n_runs(results: Path) -> None:
    series = load_history(str(results), METRICS["ttft_p95"], plan="nightly", last=2,
                          index=INDEX.location)
    assert {s.job_id: s.values for s in series} == {
        L1: [190.0, 205.0], Q1: [110.0, 150.0], Q8: [65.0], LONG: [900.0, 900.0]}


def test_without_plan_the_runs_of_every_plan_count(results: Path) -> None:
    series = load_history(str(results), METRICS["ttft_p95"], benchmark="chat", model=QWEN,
                          index=INDEX.location)
    q1 = next(s for s in series if s.job_id == Q1)
    assert q1.values == [100.0, 120.0, 999.0, 110.0, 150.0]
    assert [p.plan for p in q1.points] == ["nightly", "nightly", "other", "nightly", "nightly"]
    assert q1.points == tuple(sorted(q1.points, key=lambda p: p.started_at or ""))


@pytest.mark.parametrize(
    ("options", "jobs"),
    [
        ({"plan": "other"}, [Q1]),
        ({"benchmark": "long"}, [LONG]),
        ({"model": "meta-llama/*"}, [L1]),
        ({"model": "~.*8B, !meta-*", "benchmark": "chat"}, [Q1, Q8]),
        ({"model": "all", "plan": "nightly"}, [Q1, Q8, L1, LONG]),
    ],
)
def test_filters(results: Path, options: dict[str, Any], jobs: list[str]) -> None:
    series = load_history(str(results), METRICS["ttft_p95"], **options, index=INDEX.location)
    assert [s.job_id for s in series] == jobs


def test_csv_has_every_point(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "history", "--plan", "nightly", "--benchmark", "chat",
                       "--format", "csv", "--results", str(results))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 4 + 4 + 3
    assert list(rows[0]) == ["job_id", "benchmark", "model", "run_id", "plan", "started_at",
                             "status", "metric", "value", "validity"]
    assert {r["validity"] for r in rows} == {"unknown"}  # stored before verdicts
    q1 = [r for r in rows if r["job_id"] == Q1]
    assert [float(r["value"]) for r in q1] == [100.0, 120.0, 110.0, 150.0]
    assert q1[0]["started_at"] < q1[1]["started_at"] and q1[0]["metric"] == "ttft_p95"


def test_json_has_every_point(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "history", "--model", LLAMA, "--last", "3", "--format", "json",
                       "--results", str(results))
    data = json.loads(out)
    assert code == 0
    assert (data["metric"], data["index_name"], data["unit"]) == ("ttft_p95", "ttft_ms.p95", "ms")
    assert data["filters"] == {"plan": None, "benchmark": None, "model": LLAMA, "last": 3}
    [series] = data["series"]
    assert (series["job_id"], series["benchmark"], series["model"]) == (L1, "chat", LLAMA)
    assert series["params"] == {"max_tokens": 32}
    assert [p["value"] for p in series["points"]] == [210.0, 190.0, 205.0]
    assert set(series["points"][0]) == {"run_id", "plan", "started_at", "value", "status",
                                        "validity"}
    assert series["points"][0]["validity"] == "unknown"
    assert (series["first"], series["last"], series["min"], series["max"]) == (210, 205, 190, 210)
    assert series["change"] == pytest.approx(-5 / 210)


def test_no_stored_values(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "history", "--metric", "goodput", "--results", str(results))
    assert (code, out) == (0, "goodput (req/s) over the last 0 runs: no stored values\n")
    code, out, _ = cli(capsys, "history", "--metric", "goodput", "--format", "csv",
                       "--results", str(results))
    assert out.count("\n") == 1


def test_missing_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "history", "--results", str(tmp_path / "results"))
    assert (code, out) == (2, "")
    if INDEX.location is None:
        assert "no runs are stored yet" in err and "index.sqlite" in err
    else:  # an empty database: one line, without the password
        assert "no runs are indexed in it yet" in err and err.count("\n") == 1
        assert "postgresql://runner_admin:***@" in err
        assert url_password(INDEX.location) not in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--plan", "nighty"], 2, "no plan 'nighty' in the results index; did you mean nightly?"),
        (["--benchmark", "lng"], 2, "no benchmark 'lng'"),
        (["--model", "mistral*"], 3, "--model mistral* matches no model in the results index"),
        (["--model", "Qwen/*,!Qwen/*"], 3, "the terms exclude every model"),
        (["--model", "~(bad"], 2, ""),
        (["--last", "0"], 2, "--last must be at least 1"),
        (["--metric", "ttft"], 2, "unknown metric 'ttft'"),
    ],
)
def test_errors(results: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                message: str) -> None:
    got, out, err = cli(capsys, "history", *argv, "--results", str(results))
    assert (got, out) == (code, "") and message in err


def test_load_history_errors_are_typed(results: Path) -> None:
    with pytest.raises(InventoryError):
        load_history(str(results), METRICS["ttft_p95"], model="nothing", index=INDEX.location)
    with pytest.raises(InputError, match="known: nightly, other"):
        load_history(str(results), METRICS["ttft_p95"], plan="zzzzzz", index=INDEX.location)


def test_invalid_and_degraded_points_are_marked_under_the_sparkline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    verdicts = ["valid", "invalid", "valid", "degraded"]
    for n, verdict in enumerate(verdicts):
        store_run(tmp_path, clock, {Q1: {**metrics(100 + n), "validity": {
            "verdict": verdict, "reasons": []}}, L1: {**metrics(100), "validity": {
                "verdict": "valid", "reasons": []}}})
    code, out, err = cli(capsys, "history", "--results", str(tmp_path))
    assert (code, err) == (0, "")
    _, qwen, marks, llama = out.splitlines()  # every point has a verdict: no unknown line
    assert qwen.startswith(Q1) and llama.startswith(L1)  # a valid series has no marks line
    assert marks.split() == ["·!·~", "(!", "invalid,", "~", "degraded:", "see", "runner",
                             "report", "RUN)"]
    assert marks.index("·!·~") == qwen.index("▁▃▆█")
    data = json.loads(cli(capsys, "history", "--results", str(tmp_path), "--format", "json")[1])
    q1 = next(s for s in data["series"] if s["job_id"] == Q1)
    assert [p["validity"] for p in q1["points"]] == verdicts


def test_a_capacity_point_carries_its_searchs_validity(tmp_path: Path) -> None:
    """A capacity has no job file: its points were all 'validity unknown (stored before
    verdicts)', and a search cut short by an invalid trial looked like any other."""
    from runner.report.compare import CAPACITY_METRIC

    clock, folder = Clock(), tmp_path / "results"
    for reason in ("precision", "invalid"):
        store = RunStore.create(str(folder), "cap", {"plan": {"name": "cap"}}, now=clock,
                                index_location=INDEX.location)
        store.set_jobs([])
        store.write_capacity({"id": "knee/a", "benchmark": "knee", "model": "a", "point": {},
                              "over": "rate", "unit": "req/s", "capacity": 12.5,
                              "stopped_reason": reason})
        store.finish("ok")
        store.close()
    [series] = load_history(str(folder), CAPACITY_METRIC, index=INDEX.location)
    assert [p.validity for p in series.points] == ["valid", "degraded"]


def test_capacities_of_searches_over_other_parameters_are_separate_series(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A plan's search moved from rate (8 req/s) to concurrency (4 streams): history drew one
    series, 'change -50.0% (worse)', from req/s to streams."""
    from runner.report.compare import CAPACITY_METRIC

    clock, folder = Clock(), tmp_path / "results"
    for over, unit, value in (("rate", "req/s", 8.0), ("rate", "req/s", 9.0),
                              ("concurrency", "streams", 4.0)):
        store = RunStore.create(str(folder), "cap", {"plan": {"name": "cap"}}, now=clock,
                                index_location=INDEX.location)
        store.set_jobs([])
        store.write_capacity({"id": "knee/a", "benchmark": "knee", "model": "a", "point": {},
                              "over": over, "unit": unit, "capacity": value,
                              "stopped_reason": "precision"})
        store.finish("ok")
        store.close()
    series = load_history(str(folder), CAPACITY_METRIC, index=INDEX.location)
    assert [(s.job_id, s.values) for s in series] == [
        ("knee/a#capacity (req/s)", [8.0, 9.0]), ("knee/a#capacity (streams)", [4.0])]
    code, out, _ = cli(capsys, "history", "--metric", "capacity", "--results", str(folder))
    assert code == 0 and "worse" not in out and "-50.0%" not in out


def test_runs_started_within_one_second_keep_the_order_they_were_stored_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # The sibling of `latest`'s fault: ordered by (started_at, run_id), two runs of one second
    # were ordered by their ids' random suffixes. Now by when each was stored (its index row).
    clock = StepClock(step=timedelta(0))
    folder = tmp_path / "results"
    for value in (100, 200, 300, 400):
        store_run(folder, clock, {Q1: metrics(value)})
    code, out, _ = cli(capsys, "history", "--results", str(folder), "--metric", "ttft_p95",
                       "--format", "json")
    assert code == 0
    [series] = [s for s in json.loads(out)["series"] if s["job_id"] == Q1]
    assert [p["value"] for p in series["points"]] == [100, 200, 300, 400]
