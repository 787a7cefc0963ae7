"""The plan view's words: each job's load, and totals that count in English."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli, write_configs, write_plan

from runner.commands.plan import describe_load
from runner.errors import EXIT_INVALID, EXIT_INVENTORY
from runner.plan.totals import totals_text


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"concurrency": 4, "requests": 20, "warmup_requests": 2},
         "concurrency 4, 20 requests (+2 warm-up)"),
        ({"concurrency": 1, "requests": 1, "warmup_requests": 0}, "concurrency 1, 1 request"),
        ({"rate": 2.5, "arrival": "constant", "requests": 50},
         "rate 2.5/s constant, 50 requests (about 20 s)"),
        ({"rate": 4, "arrival": "poisson", "max_concurrency": 64, "duration_s": 60},
         "rate 4/s poisson (at most 64 in flight), 60 s"),
        ({"concurrency": 8, "requests": 200, "duration_s": 120.5, "warmup_requests": 5},
         "concurrency 8, 200 requests or 120.5 s, whichever comes first (+5 warm-up)"),
        ({"search": {"over": "rate", "from": 1, "to": 8, "precision": 0.001, "max_jobs": 50},
          "requests": 10},
         "capacity search over rate 1..8 req/s (precision 0.1%, at most 14 trials), each trial, "
         "10 requests (at most 10 s)"),
        ({"rate": 4, "requests": 100, "duration_s": 10}, "rate 4/s, 100 requests or 10 s, "
         "whichever comes first"),
        # a rate search's max_concurrency and any ramp-up were left out of the plan view
        ({"search": {"over": "rate", "from": 1, "to": 8}, "max_concurrency": 2,
          "ramp_up": {"shape": "exponential", "duration_s": 5}, "requests": 10},
         "capacity search over rate 1..8 req/s (precision 10%, at most 8 trials), each trial "
         "(at most 2 in flight), ramp-up exponential over 5 s, 10 requests (at most 15 s)"),
        ({"rate": 2, "arrival": "poisson", "ramp_up": {"duration_s": 3}, "duration_s": 9},
         "rate 2/s poisson, ramp-up linear over 3 s, 9 s"),
        ({"search": {"over": "concurrency", "from": 1, "to": 8, "precision": 0.1,
                     "max_jobs": 12}, "requests": 10},
         "capacity search over concurrency 1..8 streams (precision 10%, at most 6 trials), each "
         "trial, 10 requests"),
    ],
)
def test_describe_load(params: dict[str, Any], text: str) -> None:
    assert describe_load(params) == text


def totals(**given: int) -> dict[str, int]:
    base = {"benchmarks": 1, "skipped": 0, "models": 1, "jobs": 1, "requests": 1,
            "warmup_requests": 0, "time_bound_jobs": 0, "time_bound_s": 0}
    return {**base, **given}


@pytest.mark.parametrize(
    ("given", "text"),
    [
        ({}, "TOTAL: 1 benchmark (0 skipped), 1 model, 1 job, 1 request"),
        ({"benchmarks": 2, "skipped": 1, "models": 3, "jobs": 6, "requests": 600,
          "warmup_requests": 30},
         "TOTAL: 2 benchmarks (1 skipped), 3 models, 6 jobs, 600 requests (+30 warm-up)"),
        ({"jobs": 3, "requests": 100, "time_bound_jobs": 2, "time_bound_s": 120,
          "warmup_requests": 3},
         "TOTAL: 1 benchmark (0 skipped), 1 model, 3 jobs, 100 requests and 120 s of timed jobs "
         "(+3 warm-up)"),
        ({"jobs": 2, "requests": 0, "time_bound_jobs": 2, "time_bound_s": 90.5},
         "TOTAL: 1 benchmark (0 skipped), 1 model, 2 jobs, 90.5 s of timed jobs"),
        ({"benchmarks": 0, "models": 0, "jobs": 0, "requests": 0},
         "TOTAL: 0 benchmarks (0 skipped), 0 models, 0 jobs, 0 requests"),
    ],
)
def test_totals_text_counts_in_english(given: dict[str, int], text: str) -> None:
    assert f"TOTAL: {totals_text(totals(**given))}" == text


def test_an_unknown_inventory_server_is_located_in_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    dead_url: str
) -> None:
    write_configs(tmp_path / "configs", dead_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    body = ("version: 1\nname: t\ninventory: {server: locl}\n"
            "benchmarks:\n  - {name: b, models: all}\n")
    write_plan(tmp_path, body, "p.yaml")
    code, out, err = run_cli(capsys, "plan", "p.yaml")
    assert (code, out) == (EXIT_INVALID, "")
    assert err == ("error: p.yaml:3:21: server 'locl' (from the plan's inventory.server) is not "
                   "defined in configs/servers.yaml (did you mean 'local'?) "
                   "(at $.inventory.server)\n")
    monkeypatch.setenv("RUNNER_SERVER", "nope")
    code, _, err = run_cli(capsys, "plan", "p.yaml")
    assert code == EXIT_INVALID and err.startswith("error: server 'nope' (from $RUNNER_SERVER)")


def test_a_catastrophic_regex_in_limit_or_plan_ends_at_once(tmp_path: Path) -> None:
    """`~(a+)+$` against a 29-character id hung `runner plan` (Python's backtracking re)."""
    write_configs(tmp_path / "configs", "http://127.0.0.1:9")
    (tmp_path / "configs" / "models.yaml").write_text(f"models:\n  - id: {'a' * 29}!\n")
    write_plan(tmp_path, "version: 1\nname: p\nbenchmarks:\n  - {name: b, models: '~(a+)+$'}\n")
    write_plan(tmp_path, "version: 1\nname: p\nbenchmarks:\n  - {name: b, models: all}\n",
               "all.yaml")
    plan = [sys.executable, "-m", "runner", "plan", "--source", "fallback"]
    for argv in ([*plan, "plan.yaml"], [*plan, "all.yaml", "--limit", "~(a+)+$"]):
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == EXIT_INVENTORY, done.stderr
        assert "matches no model" in done.stderr


def test_a_regex_re2_cannot_run_is_exit_2_at_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_configs(tmp_path / "configs", "http://127.0.0.1:9")
    plan = write_plan(tmp_path, "version: 1\nname: p\nbenchmarks:\n"
                                "  - {name: b, models: '~.*(?<!-FP8)$'}\n")
    code, out, _ = run_cli(capsys, "validate", str(plan), "--config-dir",
                           str(tmp_path / "configs"))
    assert code == EXIT_INVALID
    assert out.startswith(f"{plan}:4:") and "is not RE2 syntax" in out
    code, out, err = run_cli(capsys, "plan", str(plan), "--config-dir",
                             str(tmp_path / "configs"), "--source", "fallback")
    assert code == EXIT_INVALID
    assert err.startswith(f"error: {plan}:4:") and "is not RE2 syntax (invalid perl operator" in err


def test_the_totals_count_the_pauses_between_repetitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    dead_url: str
) -> None:
    """100 repetitions an hour apart: the plan said '1000 s of timed jobs' for a job of 4
    days."""
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(write_configs(tmp_path / "configs", dead_url)))
    body = ("version: 1\nname: t\nbenchmarks:\n  - name: b\n    models: Qwen/Qwen3-8B\n"
            "    load: {rate: 5, duration_s: 10, repeat: 100, repeat_pause_s: 3600}\n")
    code, out, err = run_cli(capsys, "plan", str(write_plan(tmp_path, body, "p.yaml")),
                             "--source", "fallback")
    assert code == 0, err
    assert ("1 job, 1000 s of timed jobs and 356400 s of pauses between repetitions"
            in out), out
