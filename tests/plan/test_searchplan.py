"""load.search and load.sweep in a plan: the schema's ranges, the checks beyond it (each at its
file:line:col), and the job params they give."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli

from runner.errors import EXIT_INVALID, EXIT_OK
from runner.plan.planfile import load_plan

HEAD = "version: 1\nname: p\nbenchmarks:\n  - name: b\n    models: all\n"
SLO = "    slo: {ttft_ms: {p95: 500}}\n"


@pytest.mark.parametrize(("body", "expected"), [
    ("    load: {search: {over: rate, from: 8, to: 8}}\n" + SLO,
     "6:46: search.to (8) must be above search.from (8)"),
    ("    load: {search: {over: concurrency, from: 1.5, to: 8}}\n" + SLO,
     "6:46: search.from must be a whole number of streams for a concurrency search, got 1.5"),
    ("    load: {search: {over: concurrency, from: 1, to: 1000000}}\n" + SLO,
     "6:53: search.to (1000000) is above the most streams load.concurrency allows (100000)"),
    ("    load: {search: {over: rate, from: 1, to: 8}}\n" + SLO
     + "    matrix: {max_tokens: [4], include: [{max_tokens: 8, concurrency: 3}]}\n",
     "8:57: matrix key 'concurrency': a capacity search sets the load itself"),
    ("    load: {sweep: {rates: 2}}\n    matrix: {include: [{rate: 3}]}\n",
     "7:25: matrix key 'rate': a sweep sets the load itself"),
    ("    load: {search: {over: rate, from: 1, to: 8}}\n",
     "6:20: a capacity search needs the benchmark's slo"),
    ("    load: {search: {over: rate, from: 1, to: 8}}\n" + SLO
     + "    matrix: {concurrency: [1, 2]}\n",
     "8:14: matrix key 'concurrency': a capacity search sets the load itself"),
    ("    load: {search: {over: speed, from: 1, to: 8}}\n" + SLO,
     "6:27: \"speed\" is not one of rate, concurrency"),
    ("    load: {search: {over: rate, from: 1, to: 8, max_jobs: 51}}\n" + SLO,
     "6:59: must be at most 50, got 51"),
    ("    load: {search: {over: rate, from: 1, to: 8}, rate: 2}\n" + SLO,
     "a search sets the load itself: give search, or concurrency/rate, not both"),
    ("    load: {sweep: {rates: 3}, concurrency: 2}\n",
     "a sweep sets the load itself: give sweep, search, or concurrency/rate, only one"),
    ("    load: {sweep: {rates: 0}}\n", "6:27: must be at least 1, got 0"),
    ("    load: {sweep: {rates: 2}}\n    matrix: {rate: [1, 2]}\n",
     "7:14: matrix key 'rate': a sweep sets the load itself"),
    # a trial of 512 streams sent 12 requests: never more than 12 in flight, and the search
    # called the capacity 512 streams (the vLLM search's 48 streams came from 24 requests)
    ("    load: {search: {over: concurrency, from: 1, to: 64}, requests: 12}\n" + SLO,
     "6:53: search.to (64 streams) is above the 12 requests a job sends: no more than 12 "
     "streams are ever in flight; raise load.requests to at least 64"),
    ("    load: {search: {over: concurrency, from: 1, to: 200}}\n" + SLO,
     "6:53: search.to (200 streams) is above the 100 requests a job sends"),
    ("    load: {search: {over: concurrency, from: 1, to: 64}}\n" + SLO
     + "    matrix: {requests: [100, 50]}\n", "above the 50 requests a job sends"),
    ("    load: {sweep: {rates: 2}, requests: 30}\n",
     "6:19: sweep.concurrency (64 streams) is above the 30 requests a job sends"),
    ("    load: {sweep: {rates: 2, concurrency: 40}, requests: 30}\n",
     "6:43: sweep.concurrency (40 streams) is above the 30 requests"),
])
def test_bad_searches_and_sweeps_are_refused_where_they_are_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str,
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(HEAD + body)
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID and expected in out + err, out + err
    assert "Traceback" not in out + err


def test_a_search_job_carries_its_search_with_defaults_and_starts_at_from(tmp_path: Path) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(HEAD.replace("  - name: b\n", "  - name: b\n") + SLO
                    + "    load: {search: {over: concurrency, from: 2.0, to: 64}}\n")
    [bench] = load_plan(str(plan)).benchmarks
    assert bench.params["search"] == {"over": "concurrency", "from": 2, "to": 64,
                                      "precision": 0.1, "max_jobs": 12}
    assert bench.params["concurrency"] == 2 and "rate" not in bench.params


def test_defaults_load_gives_way_to_a_benchmarks_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text("version: 1\nname: p\ndefaults:\n  load: {concurrency: 4, requests: 5}\n"
                    "benchmarks:\n  - name: b\n    models: all\n" + SLO
                    + "    load: {search: {over: rate, from: 1, to: 8}}\n")
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_OK, out + err
    [bench] = load_plan(str(plan)).benchmarks
    assert bench.params["rate"] == 1.0 and "concurrency" not in bench.params
    assert bench.params["requests"] == 5


def test_a_search_from_defaults_names_the_benchmark_without_an_slo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text("version: 1\nname: p\ndefaults:\n  load: {search: {over: rate, from: 1, "
                    "to: 4}}\nbenchmarks:\n  - name: a\n    models: all\n" + SLO
                    + "  - name: nameless\n    models: all\n")
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID
    assert ("4:18: a capacity search needs the benchmark's slo, the target it searches for "
            "(benchmark 'nameless' takes it from defaults)") in out + err


def test_a_search_or_sweep_a_lock_gives_without_its_defaults_takes_them() -> None:
    """A hand-written lock's search without precision (or sweep without concurrency) was a
    KeyError at apply time, exit 70."""
    from runner.plan.searchplan import Search, sweep_settings

    found = Search.from_json({"over": "rate", "from": 1, "to": 8})
    assert (found.precision, found.max_jobs) == (0.1, 12)
    assert sweep_settings({"sweep": {"rates": 2}}) == {"rates": 2, "concurrency": 64}


@pytest.mark.parametrize("load", [
    "{search: {over: concurrency, from: 1, to: 64}, requests: 64}",
    "{search: {over: concurrency, from: 1, to: 500}, duration_s: 5}",
    "{search: {over: rate, from: 1, to: 500}, requests: 10}",
    "{sweep: {rates: 2, concurrency: 8}, requests: 8}",
    "{sweep: {rates: 2}}",
])
def test_searches_and_sweeps_within_their_requests_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], load: str,
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(HEAD + SLO + f"    load: {load}\n")
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_OK, out + err


def test_a_search_in_defaults_is_checked_once_and_names_the_benchmark_that_falls_short(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A search in defaults said its bounds' problem once per benchmark (the same line twice),
    and a too-small request count did not say whose."""
    plan = tmp_path / "p.yaml"
    plan.write_text("version: 1\nname: p\ndefaults:\n  load: {search: {over: concurrency, "
                    "from: 1, to: 200}}\n  slo: {ttft_ms: {p95: 100}}\nbenchmarks:\n"
                    "  - {name: a, models: all, load: {requests: 500}}\n"
                    "  - {name: b, models: all}\n  - {name: c, models: all}\n")
    code, out, err = run_cli(capsys, "validate", str(plan))
    lines = out.splitlines()
    assert code == EXIT_INVALID and len(lines) == 2, out + err
    assert "(benchmark 'b' takes it from defaults)" in lines[0]
    assert "(benchmark 'c' takes it from defaults)" in lines[1]
    plan.write_text(plan.read_text().replace("to: 200", "to: 0.5"))
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID and len(set(out.splitlines())) == len(out.splitlines()), out


def test_an_embeddings_search_needs_an_slo_it_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # the defaults' ttft_ms is left out of an embeddings job's SLO: it would search for nothing
    plan = tmp_path / "p.yaml"
    plan.write_text("version: 1\nname: p\ndefaults:\n" + SLO[2:] + "benchmarks:\n  - name: e\n"
                    "    models: all\n    workload: {endpoint: embeddings, synthetic: "
                    "{input_tokens: 8}}\n    load: {search: {over: rate, from: 1, to: 4}}\n")
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID
    assert ("9:20: a capacity search needs the benchmark's slo, the target it searches for: add "
            "e.g. slo: {ttft_ms: {p95: 500}} (an embeddings job: e2e_ms)") in out + err
    plan.write_text(plan.read_text().replace("ttft_ms", "e2e_ms"))
    assert run_cli(capsys, "validate", str(plan))[0] == EXIT_OK
