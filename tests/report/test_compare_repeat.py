"""compare with repeated jobs (issue 13 §2): each run's interval across its repetitions is the
noise, rows say whether the change is outside both, and only such a change gates."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from runner.commands.compare import _row_json, as_text
from runner.load.records import RequestRecord
from runner.report.compare import METRICS, Comparison, Row, compare
from runner.report.noise import repetition_intervals


class Run:
    """A stored run as compare reads it; asking for requests is an error (intervals suffice)."""

    def __init__(self, jobs: Sequence[Mapping[str, Any]]) -> None:
        self.jobs = jobs
        self.plan_name, self.run_id, self.manifest = "p", "r", {}

    def requests(self, slug: str) -> Sequence[RequestRecord]:
        raise AssertionError("a repeated job's noise must not come from its request log")


def job(ttft: float, interval: tuple[float, float] | None, tps: float = 100.0) -> dict[str, Any]:
    metrics: dict[str, Any] = {"ttft_ms": {"p50": ttft}, "error_rate": 0.0,
                               "throughput": {"output_tokens_per_s": tps},
                               "validity": {"verdict": "valid", "reasons": []}}
    if interval is not None:
        metrics["repetitions"] = {"count": 3, "method": "student_t", "level": 0.95,
                                  "per_repetition": [],
                                  "intervals": {"ttft_ms.p50": list(interval)}}
    return {"id": "b/m", "slug": "b_m", "benchmark": "b", "model": "m", "point": {},
            "params": {}, "status": "ok", "metrics": metrics}


def row(base: dict[str, Any], new: dict[str, Any]) -> Row:
    result = compare(Run([base]), Run([new]), [METRICS["ttft_p50"]], 0.1)
    [[only]] = [pair.rows for pair in result.jobs]
    return only


def test_a_change_outside_both_intervals_gates() -> None:
    found = row(job(100.0, (95.0, 105.0)), job(130.0, (124.0, 136.0)))
    assert found.intervals == ((95.0, 105.0), (124.0, 136.0))
    assert found.outside_both is True and found.within_noise is False
    assert found.verdict == "regression" and found.gates and found.ci is None
    data = _row_json(found)
    assert data["outside_both"] is True
    assert data["intervals"] == {"base": [95.0, 105.0], "new": [124.0, 136.0]}
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize(("base", "new"), [
    # NEW's value inside BASE's interval (a wide, noisy base)
    (job(100.0, (80.0, 125.0)), job(120.0, (117.0, 123.0))),
    # BASE's value inside NEW's interval (a noisy new run)
    (job(100.0, (98.0, 102.0)), job(120.0, (95.0, 145.0))),
])
def test_a_change_inside_either_interval_is_noise_and_does_not_gate(
    base: dict[str, Any], new: dict[str, Any]
) -> None:
    found = row(base, new)
    assert found.verdict == "regression"  # 20% worse than the 10% threshold ...
    assert found.outside_both is False and found.within_noise is True
    assert not found.gates  # ... but within run-to-run noise
    assert _row_json(found)["outside_both"] is False


def test_the_comparison_counts_and_gates_on_the_intervals() -> None:
    outside = compare(Run([job(100.0, (95.0, 105.0))]), Run([job(130.0, (124.0, 136.0))]),
                      [METRICS["ttft_p50"]], 0.1)
    inside = compare(Run([job(100.0, (80.0, 125.0))]), Run([job(120.0, (117.0, 123.0))]),
                     [METRICS["ttft_p50"]], 0.1)
    assert outside.failed and outside.counts()["regressions"] == 1
    assert not inside.failed and inside.counts()["within_noise"] == 1
    text = as_text(outside, Run([]), Run([]))  # type: ignore[arg-type]
    assert "REGRESSION (outside both)" in text and "interval across its repetitions" in text
    assert "regression (within noise)" in as_text(inside, Run([]), Run([]))  # type: ignore[arg-type]


def test_one_side_without_repetitions_keeps_the_request_bootstrap() -> None:
    base, new = job(100.0, None), job(130.0, (124.0, 136.0))
    assert repetition_intervals(base, new, "metrics", "ttft_ms.p50") is None
    with pytest.raises(AssertionError, match="request log"):
        row(base, new)  # falls back to the request values, as before repetitions


def test_a_metric_without_an_interval_is_judged_as_before() -> None:
    base, new = job(100.0, (95.0, 105.0), tps=100.0), job(100.0, (95.0, 105.0), tps=50.0)
    result: Comparison = compare(Run([base]), Run([new]), [METRICS["output_tps"]], 0.1)
    [[tps]] = [pair.rows for pair in result.jobs]
    assert tps.intervals is None and tps.outside_both is None and tps.gates


@pytest.mark.parametrize("bad", [None, [], [1.0], ["a", "b"], [float("nan"), 1.0], "xy", {}])
def test_malformed_stored_intervals_are_ignored(bad: Any) -> None:
    base, new = job(100.0, (95.0, 105.0)), job(130.0, (124.0, 136.0))
    new["metrics"]["repetitions"]["intervals"]["ttft_ms.p50"] = bad
    assert repetition_intervals(base, new, "metrics", "ttft_ms.p50") is None
