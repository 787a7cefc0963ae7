"""Plan loading: files, names, datasets, defaults merge, flat params and their completion."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from runner import defaults
from runner.errors import EXIT_INVALID, InputError, Location
from runner.plan.planfile import (
    complete_params,
    flatten,
    load_plan,
    merge_defaults,
    parse_extra_vars,
)

PLAN = """\
# yaml-language-server: $schema=../schemas/plan.schema.json
version: 1
name: nightly
description: Night numbers.
inventory: {server: local}
defaults:
  tags: [nightly]
  retries: 2
  workload:
    synthetic: {input_tokens: 512, input_tokens_stddev: 8}
    max_tokens: 64
  load: {concurrency: 4, requests: 10}
  slo: {error_rate: 0.1}
benchmarks:
  - name: latency
    models: "Qwen/*, !*-FP8"
    matrix:
      concurrency: [1, 2]
  - name: throughput
    description: Open loop.
    models: [all, "!@quantized"]
    tags: [throughput]
    on_empty: skip
    max_error_rate: 0.5
    workload: {template: "Q{{ i }}", temperature: 1}
    load: {rate: 2, arrival: constant}
    slo: {ttft_ms: {p95: 500}}
"""


def write(tmp_path: Path, text: str, name: str = "plan.yaml") -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def errors(path: str, extra: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InputError) as info:
        load_plan(path, extra)
    assert info.value.exit_code == EXIT_INVALID
    return info.value.lines()


def test_load_plan_builds_typed_records(tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    plan = load_plan(path)
    assert (plan.path, plan.name, plan.description) == (path, "nightly", "Night numbers.")
    assert (plan.server, plan.fallback, plan.gate) == ("local", True, False)
    assert plan.variables == {}
    latency, throughput = plan.benchmarks
    assert latency.name == "latency"
    assert latency.index == 0
    assert latency.models == "Qwen/*, !*-FP8"
    assert latency.tags == ("nightly",)
    assert (latency.on_empty, latency.retries, latency.max_error_rate) == ("error", 2, 0)
    assert latency.params == {"input_tokens": 512, "input_tokens_stddev": 8, "max_tokens": 64,
                              "concurrency": 4, "requests": 10}
    assert latency.matrix == {"concurrency": [1, 2]}
    assert latency.slo == {"error_rate": 0.1}
    assert throughput.models == ("all", "!@quantized")
    assert throughput.tags == ("throughput",)
    assert (throughput.on_empty, throughput.max_error_rate) == ("skip", 0.5)
    # the benchmark's prompt source and load mode replace the defaults' ones
    assert throughput.params == {"max_tokens": 64, "template": "Q{{ i }}", "temperature": 1,
                                 "requests": 10, "rate": 2, "arrival": "constant"}
    assert throughput.matrix is None
    assert throughput.slo == {"error_rate": 0.1, "ttft_ms": {"p95": 500}}


def test_benchmark_locations(tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    latency, throughput = load_plan(path).benchmarks
    assert latency.where["name"] == Location(path, 15, 11, "$.benchmarks[0].name")
    assert latency.where["models"] == Location(path, 16, 13, "$.benchmarks[0].models")
    assert latency.where["matrix"] == Location(path, 18, 7, "$.benchmarks[0].matrix")
    # no matrix: the benchmark itself
    assert throughput.where["matrix"] == Location(path, 19, 5, "$.benchmarks[1].matrix")


def test_minimal_plan_gets_code_defaults(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, "version: 1\nname: p\nbenchmarks: [{name: a, models: x}]\n"))
    assert (plan.description, plan.server) == ("", None)
    assert (plan.fallback, plan.gate) == (defaults.PLAN["fallback"], defaults.PLAN["gate"])
    [bench] = plan.benchmarks
    assert (bench.description, bench.tags, bench.params, bench.matrix, bench.slo) == (
        "", (), {}, None, {})
    assert bench.on_empty == defaults.BENCHMARK["on_empty"]
    assert bench.retries == defaults.BENCHMARK["retries"]
    assert bench.max_error_rate == defaults.BENCHMARK["max_error_rate"]


@pytest.mark.parametrize(
    "data",
    [
        PLAN.encode(),
        PLAN.replace("\n", "\r\n").encode(),
        b"\xef\xbb\xbf" + PLAN.encode(),
        PLAN.replace("Night numbers.", "Nuit – numéros.").encode(),
    ],
)
def test_sha256_is_of_the_file_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(data)
    assert load_plan(str(path)).sha256 == hashlib.sha256(data).hexdigest()
    assert load_plan(str(path)).to_json() == {
        "name": "nightly", "path": str(path), "sha256": hashlib.sha256(data).hexdigest(),
        "gate": False}


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yaml")
    assert errors(path) == [f"{path}: plan file not found"]


def test_directory_is_unreadable(tmp_path: Path) -> None:
    assert errors(str(tmp_path)) == [
        f"{tmp_path}: a plan must be a file, not a folder; give a file in it"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    os.chmod(path, 0)
    assert errors(path) == [f"{path}: cannot read the plan: Permission denied"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"name: caf\xe9\n", "not UTF-8 text (invalid continuation byte at byte 9)"),
        (b"\xff\xfename: x\n", "not UTF-8 text (invalid start byte at byte 0)"),
    ],
)
def test_non_utf8_file(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(data)
    assert errors(str(path)) == [f"{path}: {message}"]


@pytest.mark.parametrize("text", ["", "# nothing\n", "[1, 2]\n", "just text\n", "42\n"])
def test_a_plan_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert errors(path) == [
        f"{path}:1:1: a plan must be a mapping with version, name and benchmarks (at $)"
    ]


def test_yaml_errors_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nname: p\nname: q\n")
    assert errors(path) == [
        f"{path}:3:1: duplicate key 'name' (first defined on line 2) (at $.name)"
    ]


DUPLICATES = """\
version: 1
name: p
benchmarks:
  - name: a
    models: x
  - name: b
    models: x
  - name: a
    models: y
  - {name: b, models: z}
  - name: a
    models: z
"""


def duplicate(path: str, line: int, col: int, name: str, first: int, index: int) -> str:
    return (f"{path}:{line}:{col}: duplicate benchmark name '{name}' (first used on line "
            f"{first}) (at $.benchmarks[{index}].name)")


def test_duplicate_benchmark_names(tmp_path: Path) -> None:
    path = write(tmp_path, DUPLICATES)
    assert errors(path) == [
        duplicate(path, 8, 11, "a", 4, 2),
        duplicate(path, 10, 12, "b", 6, 3),
        duplicate(path, 11, 11, "a", 4, 4),
    ]


def test_duplicate_names_are_reported_with_schema_problems(tmp_path: Path) -> None:
    text = DUPLICATES.replace("    models: y\n", "    models: y\n    retries: -1\n")
    path = write(tmp_path, text)
    assert errors(path) == [
        duplicate(path, 8, 11, "a", 4, 2),
        f"{path}:10:14: must be at least 0, got -1 (at $.benchmarks[2].retries)",
        duplicate(path, 11, 12, "b", 6, 3),
        duplicate(path, 12, 11, "a", 4, 4),
    ]


def test_duplicate_names_after_rendering(tmp_path: Path) -> None:
    text = ("version: 1\nname: p\nvars: {n: a}\nbenchmarks:\n  - {name: a, models: x}\n"
            "  - {name: '{{ n }}', models: x}\n")
    path = write(tmp_path, text)
    assert errors(path) == [duplicate(path, 6, 12, "a", 5, 1)]


DATASETS = """\
version: 1
name: p
defaults:
  workload: {dataset: data/default.jsonl}
benchmarks:
  - name: a
    models: x
    workload: {dataset: data/a.jsonl}
  - name: b
    models: x
    matrix:
      dataset: [data/a.jsonl, data/m.jsonl]
      include: [{dataset: data/i.jsonl}]
      exclude: [{dataset: data/e.jsonl}]
"""


def test_dataset_files_are_found_relative_to_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_dir = tmp_path / "plans"
    for name in ("default", "a", "m", "i", "e"):
        write(plan_dir, "{}\n", f"data/{name}.jsonl")
    path = write(plan_dir, DATASETS)
    monkeypatch.chdir(tmp_path)  # not the plan's directory
    plan = load_plan(path)
    assert plan.benchmarks[0].params == {"dataset": "data/a.jsonl"}
    assert plan.benchmarks[1].params == {"dataset": "data/default.jsonl"}


def test_missing_dataset_files_are_located(tmp_path: Path) -> None:
    write(tmp_path, "{}\n", "data/a.jsonl")
    path = write(tmp_path, DATASETS)
    data = tmp_path / "data"
    assert errors(path) == [
        f"{path}:4:23: dataset file not found: {data}/default.jsonl "
        "(at $.defaults.workload.dataset)",
        f"{path}:12:31: dataset file not found: {data}/m.jsonl "
        "(at $.benchmarks[1].matrix.dataset[1])",
        f"{path}:13:27: dataset file not found: {data}/i.jsonl "
        "(at $.benchmarks[1].matrix.include[0].dataset)",
        f"{path}:14:27: dataset file not found: {data}/e.jsonl "
        "(at $.benchmarks[1].matrix.exclude[0].dataset)",
    ]


def test_dataset_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = write(tmp_path, "version: 1\nname: p\nbenchmarks:\n  - name: a\n    models: x\n"
                           "    workload: {dataset: data}\n")
    assert errors(path) == [
        f"{path}:6:25: the dataset {tmp_path}/data must be a file, not a folder; give a file "
        "in it (at $.benchmarks[0].workload.dataset)"
    ]


def test_dataset_names_elsewhere_are_not_files(tmp_path: Path) -> None:
    text = ("version: 1\nname: p\nvars: {dataset: nope.jsonl}\nbenchmarks:\n  - name: a\n"
            "    models: x\n    workload: {extra_body: {dataset: nope.jsonl}}\n")
    assert load_plan(write(tmp_path, text)).variables == {"dataset": "nope.jsonl"}


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {}),
        (["a=1"], {"a": 1}),
        (["a=1", "b=x y"], {"a": 1, "b": "x y"}),
        (["a=1", "a=2"], {"a": 2}),
        (["f=0.5", "t=true", "y=yes", "o=012", "n=null"],
         {"f": 0.5, "t": True, "y": "yes", "o": 12, "n": "null"}),
        (["url=http://x/?q=1"], {"url": "http://x/?q=1"}),
        (["empty="], {"empty": ""}),
        (["_x9=[1, 2]"], {"_x9": "[1, 2]"}),
    ],
)
def test_parse_extra_vars(items: list[str], expected: dict[str, object]) -> None:
    assert parse_extra_vars(items) == expected


@pytest.mark.parametrize("item", ["a", "=1", "1a=2", "a-b=1", "a b=1", " a=1", ""])
def test_parse_extra_vars_rejects_malformed(item: str) -> None:
    with pytest.raises(InputError) as info:
        parse_extra_vars(["ok=1", item])
    assert info.value.exit_code == EXIT_INVALID
    assert info.value.lines() == [f"-e {item!r}: expected KEY=VALUE with KEY a variable name"]


@pytest.mark.parametrize(
    ("base", "bench", "expected"),
    [
        ({}, {"name": "a"}, {"name": "a"}),
        ({"retries": 1, "tags": ["x"]}, {"name": "a", "tags": ["y"]},
         {"retries": 1, "tags": ["y"], "name": "a"}),
        # nested sections merge key by key
        ({"workload": {"max_tokens": 64, "seed": 1}}, {"workload": {"seed": 2}},
         {"workload": {"max_tokens": 64, "seed": 2}}),
        ({"load": {"requests": 10}}, {"load": {"concurrency": 2}},
         {"load": {"requests": 10, "concurrency": 2}}),
        ({"slo": {"error_rate": 0.1}}, {"slo": {"ttft_ms": {"p95": 1}}},
         {"slo": {"error_rate": 0.1, "ttft_ms": {"p95": 1}}}),
        # one level only: a nested mapping of the benchmark replaces the default's
        ({"slo": {"ttft_ms": {"p95": 1}}}, {"slo": {"ttft_ms": {"p50": 2}}},
         {"slo": {"ttft_ms": {"p50": 2}}}),
        ({"workload": {"extra_body": {"a": 1}}}, {"workload": {"extra_body": {"b": 2}}},
         {"workload": {"extra_body": {"b": 2}}}),
        # a section only one side has is kept as is
        ({"workload": {"seed": 1}}, {"load": {"rate": 1}},
         {"workload": {"seed": 1}, "load": {"rate": 1}}),
        # rivals: the benchmark's prompt source replaces the default's
        ({"workload": {"synthetic": {"input_tokens": 8}, "seed": 1}},
         {"workload": {"dataset": "d.jsonl"}},
         {"workload": {"seed": 1, "dataset": "d.jsonl"}}),
        ({"workload": {"dataset": "d.jsonl"}}, {"workload": {"template": "t"}},
         {"workload": {"template": "t"}}),
        ({"workload": {"template": "t"}}, {"workload": {"synthetic": {"input_tokens": 8}}},
         {"workload": {"synthetic": {"input_tokens": 8}}}),
        ({"workload": {"synthetic": {"input_tokens": 8, "input_tokens_stddev": 2}}},
         {"workload": {"synthetic": {"input_tokens": 16}}},
         {"workload": {"synthetic": {"input_tokens": 16}}}),
        # rivals: the benchmark's load mode replaces the default's
        ({"load": {"concurrency": 4, "requests": 9}}, {"load": {"rate": 2}},
         {"load": {"requests": 9, "rate": 2}}),
        ({"load": {"rate": 2, "arrival": "constant", "max_concurrency": 8}},
         {"load": {"concurrency": 1}}, {"load": {"concurrency": 1}}),
        ({"load": {"rate": 2, "arrival": "constant"}}, {"load": {"rate": 5}},
         {"load": {"rate": 5, "arrival": "constant"}}),
        ({"load": {"rate": 2}}, {"load": {"arrival": "constant"}},
         {"load": {"rate": 2, "arrival": "constant"}}),
    ],
)
def test_merge_defaults(base: dict[str, Any], bench: dict[str, Any],
                        expected: dict[str, Any]) -> None:
    assert merge_defaults(base, bench) == expected


def test_merge_defaults_does_not_change_its_inputs() -> None:
    base = {"load": {"concurrency": 4}, "workload": {"seed": 1}}
    bench = {"load": {"rate": 1}, "workload": {"max_tokens": 2}}
    merge_defaults(base, bench)
    assert base == {"load": {"concurrency": 4}, "workload": {"seed": 1}}
    assert bench == {"load": {"rate": 1}, "workload": {"max_tokens": 2}}


@pytest.mark.parametrize(
    ("workload", "load", "expected"),
    [
        ({}, {}, {}),
        ({"synthetic": {"input_tokens": 8, "input_tokens_stddev": 1}, "max_tokens": 4},
         {"concurrency": 2},
         {"max_tokens": 4, "input_tokens": 8, "input_tokens_stddev": 1, "concurrency": 2}),
        ({"dataset": "d", "extra_body": {"ignore_eos": True}}, {"rate": 1, "requests": 5},
         {"dataset": "d", "extra_body": {"ignore_eos": True}, "rate": 1, "requests": 5}),
    ],
)
def test_flatten(workload: dict[str, Any], load: dict[str, Any], expected: dict[str, Any]) -> None:
    assert flatten(workload, load) == expected


FIXED = {k: v for k, v in defaults.PARAMS.items()
         if k not in ("input_tokens_stddev", "arrival", "batch_size")}  # conditional defaults


@pytest.mark.parametrize(
    ("base", "point", "expected"),
    [
        # every default, conditional ones included
        ({}, {}, {**FIXED, "input_tokens": defaults.INPUT_TOKENS, "input_tokens_stddev": 0,
                   "concurrency": defaults.CONCURRENCY, "requests": defaults.REQUESTS}),
        # the point overrides the base
        ({"max_tokens": 64, "concurrency": 4}, {"max_tokens": 8},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "max_tokens": 8,
          "concurrency": 4, "requests": 100}),
        # a matrix rate replaces the base's concurrency; open loop gets its arrival default
        ({"concurrency": 4}, {"rate": 2},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "rate": 2,
          "arrival": "poisson", "requests": 100}),
        # and a matrix concurrency replaces the base's whole open-loop group
        ({"rate": 2, "arrival": "constant", "max_concurrency": 9}, {"concurrency": 3},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "concurrency": 3,
          "requests": 100}),
        # open-loop modifiers keep the base's rate
        ({"rate": 2}, {"arrival": "constant"},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "rate": 2,
          "arrival": "constant", "requests": 100}),
        ({"rate": 2}, {"max_concurrency": 4},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "rate": 2,
          "arrival": "poisson", "max_concurrency": 4, "requests": 100}),
        # prompt sources: a dataset or template replaces synthetic input, and back
        ({"input_tokens": 512, "input_tokens_stddev": 3}, {"dataset": "d.jsonl"},
         {**FIXED, "dataset": "d.jsonl", "concurrency": 1, "requests": 100}),
        ({"dataset": "d.jsonl"}, {"template": "t"},
         {**FIXED, "template": "t", "concurrency": 1, "requests": 100}),
        ({"template": "t"}, {"input_tokens": 64},
         {**FIXED, "input_tokens": 64, "input_tokens_stddev": 0, "concurrency": 1,
          "requests": 100}),
        ({"input_tokens": 512}, {"input_tokens_stddev": 10},
         {**FIXED, "input_tokens": 512, "input_tokens_stddev": 10, "concurrency": 1,
          "requests": 100}),
        ({}, {"input_tokens_stddev": 10},  # the default input_tokens applies
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 10, "concurrency": 1,
          "requests": 100}),
        # a duration stops the job: no default request count, and a grace of duration_s up
        # to 30 s for the requests in flight then
        ({"duration_s": 30}, {},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "concurrency": 1,
          "duration_s": 30, "duration_grace_s": 30}),
        ({"requests": 5}, {"duration_s": 5},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "concurrency": 1,
          "requests": 5, "duration_s": 5, "duration_grace_s": 5}),
        ({"duration_s": 600}, {},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "concurrency": 1,
          "duration_s": 600, "duration_grace_s": 30}),
        ({"duration_s": 600, "duration_grace_s": 0}, {},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "concurrency": 1,
          "duration_s": 600, "duration_grace_s": 0}),
        # explicit values win over defaults, falsy ones included
        ({"stream": False, "temperature": 0.7, "seed": 0, "endpoint": "completions"}, {},
         {**FIXED, "input_tokens": 256, "input_tokens_stddev": 0, "stream": False,
          "temperature": 0.7, "endpoint": "completions", "concurrency": 1, "requests": 100}),
    ],
)
def test_complete_params(base: dict[str, Any], point: dict[str, Any],
                         expected: dict[str, Any]) -> None:
    assert complete_params(base, point) == expected


@pytest.mark.parametrize(
    ("base", "point", "message"),
    [
        ({}, {"concurrency": 1, "rate": 2}, "a matrix point sets both concurrency and rate"),
        ({"concurrency": 4}, {"concurrency": 1, "rate": 2},
         "a matrix point sets both concurrency and rate"),
        ({}, {"input_tokens": 8, "dataset": "d"}, "a matrix point sets both input_tokens and "
         "dataset"),
        ({}, {"dataset": "d", "template": "t"}, "a matrix point sets both dataset and template"),
        ({}, {"input_tokens": 8, "dataset": "d", "template": "t"},
         "a matrix point sets both input_tokens and dataset and template"),
        # a modifier of a mode the job does not use
        ({"concurrency": 4}, {"arrival": "constant"},
         "a matrix point sets arrival, which needs rate"),
        ({}, {"max_concurrency": 4}, "a matrix point sets max_concurrency, which needs rate"),
        ({}, {"concurrency": 2, "arrival": "constant"},
         "a matrix point sets arrival, which needs rate"),
        ({"dataset": "d"}, {"input_tokens_stddev": 3},
         "a matrix point sets input_tokens_stddev, which needs input_tokens"),
        ({}, {"template": "t", "input_tokens_stddev": 3},
         "a matrix point sets input_tokens_stddev, which needs input_tokens"),
    ],
)
def test_complete_params_conflicts(base: dict[str, Any], point: dict[str, Any],
                                   message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        complete_params(base, point)


ORDER = ["endpoint", "input_tokens", "input_tokens_stddev", "max_tokens", "temperature", "seed",
         "stream", "extra_body", "rate", "arrival", "max_concurrency", "requests", "duration_s",
         "duration_grace_s", "warmup_requests", "request_timeout_s", "stall_timeout_s",
         "job_timeout_s"]


@pytest.mark.parametrize("reverse", [False, True])
def test_param_order_is_stable_whatever_the_input_order(reverse: bool) -> None:
    base = {"job_timeout_s": 9, "duration_s": 5, "extra_body": {}, "max_concurrency": 3,
            "requests": 7, "input_tokens": 8}
    point = {"rate": 1, "arrival": "constant"}
    if reverse:
        base = dict(reversed(base.items()))
        point = dict(reversed(point.items()))
    assert list(complete_params(base, point)) == ORDER


def test_unknown_params_go_last_in_their_own_order() -> None:
    assert list(complete_params({"zz": 1, "aa": 2}, {}))[-2:] == ["zz", "aa"]


def test_complete_params_does_not_change_its_inputs() -> None:
    base = {"concurrency": 4, "input_tokens": 8}
    point = {"rate": 2, "dataset": "d"}
    complete_params(base, point)
    assert base == {"concurrency": 4, "input_tokens": 8}
    assert point == {"rate": 2, "dataset": "d"}


def test_every_plan_param_is_completed_with_code_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    latency, throughput = load_plan(path).benchmarks
    assert complete_params(latency.params, {"concurrency": 2}) == {
        **FIXED, "input_tokens": 512, "input_tokens_stddev": 8, "max_tokens": 64,
        "concurrency": 2, "requests": 10}
    assert complete_params(throughput.params, {}) == {
        **FIXED, "template": "Q{{ i }}", "max_tokens": 64, "temperature": 1, "rate": 2,
        "arrival": "constant", "requests": 10}


def test_a_failed_template_is_reported_once(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nname: p\nbenchmarks:\n  - name: a\n    models: x\n"
                           "    workload: {dataset: '{{ where }}/d.jsonl'}\n")
    assert errors(path) == [
        f"{path}:6:25: template error: 'where' is undefined; define it under vars: or pass "
        "-e NAME=VALUE (at $.benchmarks[0].workload.dataset)"
    ]


def test_a_rendered_dataset_path_is_checked(tmp_path: Path) -> None:
    write(tmp_path, "{}\n", "data/d.jsonl")
    text = ("version: 1\nname: p\nbenchmarks:\n  - name: a\n    models: x\n"
            "    workload: {dataset: '{{ where }}/d.jsonl'}\n")
    path = write(tmp_path, text)
    assert load_plan(path, {"where": "data"}).benchmarks[0].params == {"dataset": "data/d.jsonl"}
    assert errors(path, {"where": "elsewhere"}) == [
        f"{path}:6:25: dataset file not found: {tmp_path}/elsewhere/d.jsonl "
        "(at $.benchmarks[0].workload.dataset)"
    ]


def test_integer_params_written_as_floats_become_ints() -> None:
    params = complete_params({"concurrency": 4.0}, {"max_tokens": 64.0})
    assert params["concurrency"] == 4 and isinstance(params["concurrency"], int)
    assert isinstance(params["max_tokens"], int)
    assert isinstance(params["temperature"], int | float)
