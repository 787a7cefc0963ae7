"""Open-loop modifiers (arrival, burstiness, max_concurrency) where they shape nothing are
refused by validate at the key, as a lock of the same jobs would be refused by apply; where a
rate gives them a job to shape, they pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli

from runner.errors import EXIT_INVALID, EXIT_OK

HEAD = "version: 1\nname: p\nbenchmarks:\n  - name: b\n    models: all\n"
SLO = "    slo: {ttft_ms: {p95: 500}}\n"


@pytest.mark.parametrize(("body", "expected"), [
    ("    load: {rate: 5, burstiness: 0.5}\n",
     "6:33: burstiness shapes gamma arrivals only: set arrival: gamma beside it"),
    ("    load: {concurrency: 2, arrival: gamma, burstiness: 2}\n",
     "6:37: arrival shapes open-loop (rate) jobs, and this load is closed loop (concurrency): "
     "remove arrival, or use load.rate in place of concurrency"),
    ("    load: {sweep: {rates: 1}, arrival: gamma}\n",
     "6:40: arrival shapes open-loop (rate) jobs, and this load is a sweep"),
    ("    load: {search: {over: concurrency, from: 1, to: 4}, max_concurrency: 2}\n" + SLO,
     "6:74: max_concurrency shapes open-loop (rate) jobs, and this load is a concurrency "
     "search: remove max_concurrency"),
    ("    load: {arrival: constant}\n", "6:21: arrival shapes open-loop (rate) jobs"),
])
def test_modifiers_that_shape_nothing_are_refused_where_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str,
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(HEAD + body)
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID and f"{plan}:{expected}" in out + err, out + err
    assert "matrix" not in out + err and "Traceback" not in out + err


@pytest.mark.parametrize("body", [
    "    load: {rate: 5, arrival: gamma, burstiness: 0.5}\n",
    "    load: {concurrency: 2, arrival: constant}\n    matrix: {rate: [1, 2]}\n",
    "    load: {rate: 5, burstiness: 2}\n    matrix: {arrival: [gamma]}\n",
    "    load: {search: {over: rate, from: 1, to: 4}, arrival: gamma, burstiness: 2}\n" + SLO,
])
def test_modifiers_of_a_rate_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str,
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(HEAD + body)
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_OK, out + err


@pytest.mark.parametrize(("body", "expected"), [
    # Siblings of the modifiers above: settings a benchmark writes that its load never uses.
    ("    load: {concurrency: 2, requests: 4, repeat_pause_s: 5}\n",
     "6:57: repeat_pause_s is the pause between repetitions, and this job runs once: set "
     "load.repeat above 1, or remove repeat_pause_s"),
    ("    load: {concurrency: 2, requests: 4, early_stop: {saturation: true}}\n",
     "6:66: early_stop.saturation watches open-loop (rate) jobs, and this load is closed loop "
     "(concurrency): remove saturation"),
])
def test_settings_a_benchmark_never_uses_are_refused_where_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str,
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(HEAD + body)
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID and f"{plan}:{expected}" in out + err, out + err


@pytest.mark.parametrize("body", [
    "    load: {concurrency: 2, requests: 4, repeat: 2, repeat_pause_s: 5}\n",
    "    load: {rate: 5, requests: 4, early_stop: {saturation: true}}\n",
    "    load: {concurrency: 2, requests: 4, early_stop: {saturation: false}}\n",
    "    load: {concurrency: 2, requests: 4, repeat_pause_s: 5}\n    matrix: {repeat: [1, 3]}\n",
])
def test_the_same_settings_pass_where_they_are_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str,
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(HEAD + body)
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_OK, out + err


@pytest.mark.parametrize(("body", "expected"), [
    # a 30 s ramp in a 2 s job sent one request at 0.8/s of a 5/s target: ok and valid
    ("    load: {rate: 5, duration_s: 2, ramp_up: {duration_s: 30}}\n",
     "6:45: ramp_up.duration_s (30 s) is not below duration_s (2 s): the job ends before its "
     "load reaches the target"),
    ("    load: {concurrency: 4, duration_s: 10, ramp_up: {duration_s: 10}}\n",
     "6:53: ramp_up.duration_s (10 s) is not below duration_s (10 s)"),
    ("    load: {rate: 5, requests: 20, ramp_up: {duration_s: 10}}\n",
     "6:44: ramp_up sends about 28 requests over its 10 s, and the job stops after 20: its "
     "rate never reaches 5/s"),
    ("    load: {search: {over: rate, from: 1, to: 100}, requests: 100, ramp_up: {duration_s: 10}}"
     "\n" + SLO, "6:76: the search's trial at search.to: ramp_up sends about 550 requests"),
])
def test_a_ramp_the_job_ends_within_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str,
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(HEAD + body)
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID and f"{plan}:{expected}" in out + err, out + err


@pytest.mark.parametrize("body", [
    "    load: {rate: 5, duration_s: 20, ramp_up: {duration_s: 10}}\n",
    "    load: {rate: 5, requests: 40, ramp_up: {duration_s: 10}}\n",
    "    load: {rate: 5, requests: 20, ramp_up: {duration_s: 10, shape: exponential}}\n",
    "    load: {rate: 5, duration_s: 2, ramp_up: {duration_s: 30}}\n"
    "    matrix: {duration_s: [2, 60]}\n",
])
def test_a_ramp_that_reaches_its_target_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str,
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(HEAD + body)
    code, out, err = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_OK, out + err
