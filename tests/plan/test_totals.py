"""The plan view's totals: how long the jobs take to send, where the plan alone says it."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.plan.planfile import load_plan
from runner.plan.selection import Options, select
from runner.plan.totals import duration_text, sending_s, totals, totals_text

SEARCHES = """\
  - name: cap
    models: Qwen/Qwen3-8B
    load: {requests: 40, search: {over: rate, from: 2, to: 64, precision: 0.1}}
    slo: {ttft_ms: {p95: 500}}
  - name: capc
    models: Qwen/Qwen3-8B
    load: {requests: 40, search: {over: concurrency, from: 1, to: 32}}
    slo: {ttft_ms: {p95: 500}}
  - name: capd
    models: Qwen/Qwen3-8B
    load: {duration_s: 10, search: {over: concurrency, from: 1, to: 32}}
    slo: {ttft_ms: {p95: 500}}
  - name: open
    models: Qwen/Qwen3-8B
    load: {requests: 100, rate: 4, repeat: 2, repeat_pause_s: 5}
"""


def _totals(tmp_path: Path, benchmarks: str) -> dict[str, int | float]:
    path = tmp_path / "p.yaml"
    path.write_text(f"version: 1\nname: p\nbenchmarks:\n{benchmarks}")
    return totals(select(load_plan(str(path)), ["Qwen/Qwen3-8B"], {}, Options()))


def test_a_search_plan_says_how_long_its_trials_take_at_most(tmp_path: Path) -> None:
    found = _totals(tmp_path, SEARCHES)
    # cap: 10 trials of 40 requests at no less than 2 req/s (20 s each); capd: 10 trials of
    # 10 s; open: 2 runs of 100 requests at 4/s (25 s each; its 5 s pause is pause_s); capc:
    # closed loop
    assert found["sending_s"] == pytest.approx(10 * 20 + 10 * 10 + 2 * 25)
    assert found["pause_s"] == 5
    assert found["latency_bound_jobs"] == 10
    assert totals_text(found).endswith(
        "; sending takes at most 5 min 50 s, and 10 closed-loop jobs as long as the server's "
        "latency makes them")


@pytest.mark.parametrize(("params", "seconds"), [
    ({"rate": 4, "requests": 100}, 25.0),
    ({"rate": 4, "requests": 100, "duration_s": 10}, 10.0),  # whichever comes first
    ({"rate": 4, "requests": 100, "ramp_up": {"duration_s": 30}}, 55.0),  # an upper bound
    ({"concurrency": 4, "duration_s": 12}, 12.0),
    ({"concurrency": 4, "requests": 100}, None),
    ({"search": {"over": "rate", "from": 0.5, "to": 8}, "requests": 10}, 20.0),
    ({"search": {"over": "concurrency", "from": 1, "to": 8}, "requests": 10}, None),
    ({"sweep": {"rates": 4}, "requests": 10}, None),
    ({"sweep": {"rates": 4}, "duration_s": 30}, 30.0),
])
def test_sending_time_of_one_run(params: dict[str, object], seconds: float | None) -> None:
    assert sending_s(params) == seconds


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (0.2, "1 s"), (59, "59 s"), (60, "1 min"), (130, "2 min 10 s"),
    (3600, "1 h"), (3900.5, "1 h 5 min"),
])
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_closed_loops_alone_carry_no_estimate(tmp_path: Path) -> None:
    found = _totals(tmp_path, "  - name: a\n    models: Qwen/Qwen3-8B\n")
    assert found["sending_s"] == 0 and found["latency_bound_jobs"] == 1
    assert totals_text(found) == "1 benchmark (0 skipped), 1 model, 1 job, 100 requests"


def test_a_recaps_totals_carry_no_estimate() -> None:
    assert totals_text({"benchmarks": 1, "models": 1, "jobs": 2, "requests": 40}) == (
        "1 benchmark (0 skipped), 1 model, 2 jobs, 40 requests")


def test_an_open_loop_of_sessions_is_not_called_a_closed_loop(tmp_path: Path) -> None:
    # Seen: "sending takes 2 s, and 1 closed-loop job as long as the server's latency makes
    # them" for a rate job of sessions (its later turns follow the answers).
    found = _totals(tmp_path, """\
  - name: talk
    models: Qwen/Qwen3-8B
    workload: {session: {turns: 3}}
    load: {requests: 10, rate: 5}
  - name: closed
    models: Qwen/Qwen3-8B
    load: {requests: 10, concurrency: 2}
  - name: timed
    models: Qwen/Qwen3-8B
    load: {duration_s: 2, rate: 5}
""")
    assert (found["latency_bound_jobs"], found["latency_bound_sessions"]) == (2, 1)
    assert totals_text(found).endswith(
        "; sending takes 2 s, and 1 closed-loop job and 1 session job as long as the server's "
        "latency makes them")
