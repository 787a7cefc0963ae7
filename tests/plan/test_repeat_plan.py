"""load.repeat and load.repeat_pause_s in the plan and lock schemas (issue 13 §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.main import main
from runner.plan.planfile import load_plan
from runner.schema import load_schema, validate
from runner.yamlfile import load_text

HEAD = "version: 1\nname: p\nbenchmarks:\n  - name: a\n    models: all\n"


def problems(lines: str) -> list[str]:
    return [p.render() for p in validate(load_text(HEAD + lines, "f.yaml"), "plan")]


@pytest.mark.parametrize("lines", [
    "    load: {repeat: 1}\n", "    load: {repeat: 100, repeat_pause_s: 3600}\n",
    "    load: {repeat: 3, repeat_pause_s: 0.5, concurrency: 2}\n",
    "    matrix: {repeat: [1, 5], repeat_pause_s: [0, 2]}\n",
    "    matrix: {include: [{repeat: 2, repeat_pause_s: 1}]}\n",
])
def test_repeat_and_its_pause_are_accepted_in_range(lines: str) -> None:
    assert problems(lines) == []


@pytest.mark.parametrize(("lines", "expected"), [
    ("    load: {repeat: 0}\n", "f.yaml:6:20: must be at least 1, got 0 "
                                 "(at $.benchmarks[0].load.repeat)"),
    ("    load: {repeat: 101}\n", "f.yaml:6:20: must be at most 100, got 101 "
                                   "(at $.benchmarks[0].load.repeat)"),
    ("    load: {repeat: 2.5}\n", "f.yaml:6:20: expected an integer, got 2.5 "
                                   "(at $.benchmarks[0].load.repeat)"),
    ("    load: {repeat_pause_s: -1}\n", "f.yaml:6:28: must be at least 0, got -1 "
                                          "(at $.benchmarks[0].load.repeat_pause_s)"),
    ("    load: {repeat_pause_s: 3601}\n", "f.yaml:6:28: must be at most 3600, got 3601 "
                                            "(at $.benchmarks[0].load.repeat_pause_s)"),
    ("    matrix: {repeat: [0]}\n", "f.yaml:6:23: must be at least 1, got 0 "
                                     "(at $.benchmarks[0].matrix.repeat[0])"),
])
def test_repeat_out_of_range_says_where_and_what(lines: str, expected: str) -> None:
    assert problems(lines) == [expected]


def test_a_job_carries_repeat_only_when_the_plan_sets_it(tmp_path: Path) -> None:
    (tmp_path / "once.yaml").write_text(HEAD + "    load: {concurrency: 1}\n")
    (tmp_path / "thrice.yaml").write_text(HEAD + "    load: {repeat: 3, repeat_pause_s: 1}\n")
    once, thrice = (load_plan(str(tmp_path / f"{n}.yaml")) for n in ("once", "thrice"))
    assert "repeat" not in once.benchmarks[0].params
    assert thrice.benchmarks[0].params["repeat"] == 3
    assert thrice.benchmarks[0].params["repeat_pause_s"] == 1
    locked = load_schema("lock")["$defs"]["params"]["properties"]
    assert locked["repeat"] == {"$ref": "plan.schema.json#/$defs/param_repeat"}
    assert locked["repeat_pause_s"] == {"$ref": "plan.schema.json#/$defs/param_repeat_pause_s"}


def test_runner_plan_shows_the_repetitions_and_counts_their_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(
        "servers:\n  sim: {kind: mock, models: [m1]}\n")
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: p\ninventory: {server: sim, fallback: false}\nbenchmarks:\n"
        "  - name: a\n    models: all\n"
        "    load: {concurrency: 2, requests: 8, warmup_requests: 1, repeat: 3,"
        " repeat_pause_s: 2}\n"
        "  - name: once\n    models: all\n    load: {requests: 5}\n")
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "p.yaml"]) == 0
    out = capsys.readouterr().out
    assert "a/m1  concurrency 2, 8 requests (+1 warm-up), ×3 (2 s apart)" in out
    assert "once/m1  concurrency 1, 5 requests\n" in out
    assert "2 jobs, 29 requests and 4 s of pauses between repetitions (+3 warm-up)" in out
