"""JSON Schema validation with file positions, schema/code defaults in step, example files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner import defaults, schema
from runner.errors import EXIT_INTERNAL, InputError, Location, Problem
from runner.inventory import config
from runner.main import main
from runner.plan.planfile import load_plan
from runner.schema import SCHEMA_NAMES, expected_types, load_schema, validate
from runner.yamlfile import load_file, load_text

REPO = Path(__file__).resolve().parent.parent
NAME_RULE = "must start with a letter or digit and hold only letters, digits and _ . -"
HEAD = "version: 1\nname: p\nbenchmarks:\n  - name: a\n    models: all\n"


def problems(text: str, schema: str = "plan") -> list[str]:
    return [p.render() for p in validate(load_text(text, "f.yaml"), schema)]


def bench_problems(lines: str) -> list[str]:
    """Problems of a plan whose first benchmark (line 4) gets `lines` (indented 4) added."""
    if lines.lstrip().startswith("models:"):
        return problems(HEAD.replace("    models: all\n", "") + lines)
    return problems(HEAD + lines)


def test_problem_renders_file_line_col_message_and_path() -> None:
    where = Location("plans/x.yaml", 12, 9, "$.benchmarks[1].load.concurrency")
    assert Problem("must be at least 1, got 0", where).render() == (
        "plans/x.yaml:12:9: must be at least 1, got 0 (at $.benchmarks[1].load.concurrency)"
    )
    assert Problem("oops").render() == "oops"
    assert Problem("oops", Location(path="$.a")).render() == "oops (at $.a)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: p\nbenchmarks: [{name: a, models: all}]\n",
         ["f.yaml:1:1: missing required key 'version' (at $)"]),
        ("version: 1\nbenchmarks: [{name: a, models: all}]\n",
         ["f.yaml:1:1: missing required key 'name' (at $)"]),
        ("version: 1\nname: p\n", ["f.yaml:1:1: missing required key 'benchmarks' (at $)"]),
        # two keys missing from one mapping: each is named once
        ("description: only\n",
         ["f.yaml:1:1: missing required key 'benchmarks' (at $)",
          "f.yaml:1:1: missing required key 'name' (at $)",
          "f.yaml:1:1: missing required key 'version' (at $)"]),
        ("version: 1\nname: p\nbenchmarks:\n  - models: all\n",
         ["f.yaml:4:5: missing required key 'name' (at $.benchmarks[0])"]),
        ("version: 1\nname: p\nbenchmarks:\n  - {}\n",
         ["f.yaml:4:5: missing required key 'models' (at $.benchmarks[0])",
          "f.yaml:4:5: missing required key 'name' (at $.benchmarks[0])"]),
        (HEAD + "    workload: {synthetic: {input_tokens_stddev: 3}}\n",
         ["f.yaml:6:27: missing required key 'input_tokens' "
          "(at $.benchmarks[0].workload.synthetic)"]),
    ],
)
def test_missing_required_keys(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("    load: {concurrency: '8'}\n",
         'f.yaml:6:25: expected an integer, got "8" (at $.benchmarks[0].load.concurrency)'),
        ("    load: {concurrency: 1.5}\n",
         "f.yaml:6:25: expected an integer, got 1.5 (at $.benchmarks[0].load.concurrency)"),
        ("    load: {rate: fast}\n",
         'f.yaml:6:18: expected a number, got "fast" (at $.benchmarks[0].load.rate)'),
        ("    workload: {stream: yes}\n",  # YAML 1.2: `yes` is a string
         'f.yaml:6:24: expected true or false, got "yes" (at $.benchmarks[0].workload.stream)'),
        ("    workload: {max_tokens: [64]}\n",
         "f.yaml:6:28: expected an integer, got [64] (at $.benchmarks[0].workload.max_tokens)"),
        ("    workload: {extra_body: 1}\n",
         "f.yaml:6:28: expected a mapping, got 1 (at $.benchmarks[0].workload.extra_body)"),
        # a section of the wrong type gets one problem, not also a rival-settings one
        ("    workload: 5\n",
         "f.yaml:6:15: expected a mapping, got 5 (at $.benchmarks[0].workload)"),
        ("    load: [1]\n", "f.yaml:6:11: expected a mapping, got [1] (at $.benchmarks[0].load)"),
        ("    tags: latency\n",
         'f.yaml:6:11: expected a list, got "latency" (at $.benchmarks[0].tags)'),
        ("    tags: [1]\n", "f.yaml:6:12: expected a string, got 1 (at $.benchmarks[0].tags[0])"),
        ("    description: 5\n",
         "f.yaml:6:18: expected a string, got 5 (at $.benchmarks[0].description)"),
        ("    models: 5\n",
         "f.yaml:5:13: 5 is not valid here: Model pattern: a comma-separated string or a list "
         "(all, *, exact id, glob, ~regex, @group; !exclude, &intersect). "
         "(at $.benchmarks[0].models)"),
        ("    models: []\n",
         "f.yaml:5:13: [] is not valid here: Model pattern: a comma-separated string or a list "
         "(all, *, exact id, glob, ~regex, @group; !exclude, &intersect). "
         "(at $.benchmarks[0].models)"),
        ("    slo: {ttft_ms: 500}\n",
         "f.yaml:6:20: expected a mapping, got 500 (at $.benchmarks[0].slo.ttft_ms)"),
    ],
)
def test_wrong_types(lines: str, expected: str) -> None:
    assert bench_problems(lines) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 2\nname: p\nbenchmarks: [{name: a, models: all}]\n",
         "f.yaml:1:10: must be 1, got 2 (at $.version)"),
        ("version: '1'\nname: p\nbenchmarks: [{name: a, models: all}]\n",
         'f.yaml:1:10: must be 1, got "1" (at $.version)'),
        ("version: 1\nname: p\nbenchmarks: []\n",
         "f.yaml:3:13: [] needs at least 1 item (at $.benchmarks)"),
        ("version: 1\nname: p\nbenchmarks: {}\n",
         "f.yaml:3:13: expected a list, got {} (at $.benchmarks)"),
        ("version: 1\nname: p\nbenchmarks: [1]\n",
         "f.yaml:3:14: expected a mapping, got 1 (at $.benchmarks[0])"),
        (HEAD + "gate: 1\n", "f.yaml:6:7: expected true or false, got 1 (at $.gate)"),
        (HEAD + "vars: []\n", "f.yaml:6:7: expected a mapping, got [] (at $.vars)"),
        (HEAD + "inventory: {fallback: no}\n",
         'f.yaml:6:23: expected true or false, got "no" (at $.inventory.fallback)'),
        (HEAD + "inventory: {server: ''}\n",
         'f.yaml:6:21: "" needs at least 1 character (at $.inventory.server)'),
        (HEAD + "vars: {1st: x}\n",
         'f.yaml:6:8: key "1st" must be a variable name: letters, digits and _, not starting '
         "with a digit (at $.vars.1st)"),
        ("[]\n", "f.yaml:1:1: expected a mapping, got [] (at $)"),
    ],
)
def test_top_level_problems(text: str, expected: str) -> None:
    assert problems(text) == [expected]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("    load: {concurrency: 0}\n",
         "f.yaml:6:25: must be at least 1, got 0 (at $.benchmarks[0].load.concurrency)"),
        ("    load: {concurrency: 100001}\n",
         "f.yaml:6:25: must be at most 100000, got 100001 (at $.benchmarks[0].load.concurrency)"),
        ("    load: {rate: 0}\n",
         "f.yaml:6:18: must be at least 0.001, got 0 (at $.benchmarks[0].load.rate)"),
        ("    load: {rate: -1.5}\n",
         "f.yaml:6:18: must be at least 0.001, got -1.5 (at $.benchmarks[0].load.rate)"),
        ("    load: {max_concurrency: 0}\n",
         "f.yaml:6:29: must be at least 1, got 0 (at $.benchmarks[0].load.max_concurrency)"),
        ("    load: {requests: 0}\n",
         "f.yaml:6:22: must be at least 1, got 0 (at $.benchmarks[0].load.requests)"),
        ("    load: {duration_s: 0}\n",
         "f.yaml:6:24: must be greater than 0, got 0 (at $.benchmarks[0].load.duration_s)"),
        ("    load: {warmup_requests: -1}\n",
         "f.yaml:6:29: must be at least 0, got -1 (at $.benchmarks[0].load.warmup_requests)"),
        ("    load: {request_timeout_s: 0}\n",
         "f.yaml:6:31: must be greater than 0, got 0 (at $.benchmarks[0].load.request_timeout_s)"),
        ("    workload: {temperature: 2.5}\n",
         "f.yaml:6:29: must be at most 2, got 2.5 (at $.benchmarks[0].workload.temperature)"),
        ("    workload: {temperature: -0.1}\n",
         "f.yaml:6:29: must be at least 0, got -0.1 (at $.benchmarks[0].workload.temperature)"),
        ("    workload: {max_tokens: 0}\n",
         "f.yaml:6:28: must be at least 1, got 0 (at $.benchmarks[0].workload.max_tokens)"),
        ("    workload: {synthetic: {input_tokens: 0}}\n",
         "f.yaml:6:42: must be at least 1, got 0 "
         "(at $.benchmarks[0].workload.synthetic.input_tokens)"),
        ("    workload: {synthetic: {input_tokens: 8, input_tokens_stddev: -1}}\n",
         "f.yaml:6:66: must be at least 0, got -1 "
         "(at $.benchmarks[0].workload.synthetic.input_tokens_stddev)"),
        ("    workload: {dataset: ''}\n",
         'f.yaml:6:25: "" needs at least 1 character (at $.benchmarks[0].workload.dataset)'),
        ("    max_error_rate: 1.5\n",
         "f.yaml:6:21: must be at most 1, got 1.5 (at $.benchmarks[0].max_error_rate)"),
        ("    retries: 11\n",
         "f.yaml:6:14: must be at most 10, got 11 (at $.benchmarks[0].retries)"),
        ("    retries: -1\n",
         "f.yaml:6:14: must be at least 0, got -1 (at $.benchmarks[0].retries)"),
        ("    slo: {error_rate: 2}\n",
         "f.yaml:6:23: must be at most 1, got 2 (at $.benchmarks[0].slo.error_rate)"),
        ("    slo: {ttft_ms: {p95: 0}}\n",
         "f.yaml:6:26: must be greater than 0, got 0 (at $.benchmarks[0].slo.ttft_ms.p95)"),
        ("    slo: {ttft_ms: {}}\n",
         "f.yaml:6:20: {} needs at least 1 key (at $.benchmarks[0].slo.ttft_ms)"),
        ("    tags: [a, a]\n",
         'f.yaml:6:11: ["a", "a"] has duplicate items (at $.benchmarks[0].tags)'),
        ("    tags: ['a b']\n",
         'f.yaml:6:12: "a b" may hold only letters, digits and _ . - '
         "(at $.benchmarks[0].tags[0])"),
    ],
)
def test_out_of_range_values(lines: str, expected: str) -> None:
    assert bench_problems(lines) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD + "benchmark: []\n",
         "f.yaml:6:1: unknown key 'benchmark' (did you mean 'benchmarks'?) (at $.benchmark)"),
        (HEAD + "defualts: {}\n",
         "f.yaml:6:1: unknown key 'defualts' (did you mean 'defaults'?) (at $.defualts)"),
        (HEAD + "inventory: {servr: x}\n",
         "f.yaml:6:13: unknown key 'servr' (did you mean 'server'?) (at $.inventory.servr)"),
        (HEAD + "defaults: {load: {concurency: 2}}\n",
         "f.yaml:6:19: unknown key 'concurency' (did you mean 'concurrency'?) "
         "(at $.defaults.load.concurency)"),
        (HEAD + "    modles: x\n",
         "f.yaml:6:5: unknown key 'modles' (did you mean 'models'?) (at $.benchmarks[0].modles)"),
        (HEAD + "    load: {concurency: 2}\n",
         "f.yaml:6:12: unknown key 'concurency' (did you mean 'concurrency'?) "
         "(at $.benchmarks[0].load.concurency)"),
        (HEAD + "    workload: {max_token: 1}\n",
         "f.yaml:6:16: unknown key 'max_token' (did you mean 'max_tokens'?) "
         "(at $.benchmarks[0].workload.max_token)"),
        (HEAD + "    slo: {ttft: {p95: 1}}\n",
         "f.yaml:6:11: unknown key 'ttft' (did you mean 'ttft_ms'?) (at $.benchmarks[0].slo.ttft)"),
        (HEAD + "    slo: {ttft_ms: {p59: 1}}\n",
         "f.yaml:6:21: unknown key 'p59' (did you mean 'p99'?) "
         "(at $.benchmarks[0].slo.ttft_ms.p59)"),
        (HEAD + "    matrix: {include: [{rte: 1}]}\n",
         "f.yaml:6:25: unknown key 'rte' (did you mean 'rate'?) "
         "(at $.benchmarks[0].matrix.include[0].rte)"),
        # no close match: the allowed keys are listed
        (HEAD + "    load: {velocity: 1}\n",
         "f.yaml:6:12: unknown key 'velocity'; allowed: arrival, burstiness, concurrency, "
         "duration_grace_s, duration_s, early_stop, job_timeout_s, max_concurrency, ramp_up, "
         "rate, repeat, repeat_pause_s, replay, request_timeout_s, requests, search, "
         "stall_timeout_s, sweep, warmup_requests "
         "(at $.benchmarks[0].load.velocity)"),
        # a key one level too high: where it belongs (judged by its value)
        (HEAD + "    concurrency: 4\n",
         "f.yaml:6:5: unknown key 'concurrency' (it belongs under 'load:') "
         "(at $.benchmarks[0].concurrency)"),
        (HEAD + "    concurrency: [1, 4]\n",
         "f.yaml:6:5: unknown key 'concurrency' (it belongs under 'matrix:') "
         "(at $.benchmarks[0].concurrency)"),
        (HEAD + "    temperature: 0.5\n",
         "f.yaml:6:5: unknown key 'temperature' (it belongs under 'workload:') "
         "(at $.benchmarks[0].temperature)"),
        (HEAD + "    slo: {p95: 100}\n",
         "f.yaml:6:11: unknown key 'p95' (it belongs under 'ttft_ms:' or 'tpot_ms:' or "
         "'itl_ms:' or 'e2e_ms:' or 'ttfo_ms:') (at $.benchmarks[0].slo.p95)"),
    ],
)
def test_unknown_keys_at_every_depth_with_hints(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_unknown_key_is_located_at_the_key_not_the_value() -> None:
    [problem] = validate(load_text(HEAD + "    load:\n      rat:\n        5\n", "f.yaml"), "plan")
    assert (problem.where.line, problem.where.col) == (7, 7)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("    load: {concurrency: 4, rate: 2}\n",
         "f.yaml:6:11: give either concurrency (closed loop) or rate (open loop), not both "
         "(at $.benchmarks[0].load)"),
        ("    workload:\n      synthetic: {input_tokens: 8}\n      dataset: d.jsonl\n",
         "f.yaml:7:7: give only one prompt source: synthetic, dataset, template or trace "
         "(at $.benchmarks[0].workload)"),
        ("    workload: {dataset: d.jsonl, template: 'hi {{ i }}'}\n",
         "f.yaml:6:15: give only one prompt source: synthetic, dataset, template or trace "
         "(at $.benchmarks[0].workload)"),
    ],
)
def test_rival_settings_in_one_section(lines: str, expected: str) -> None:
    assert bench_problems(lines) == [expected]


def test_rivals_in_defaults_are_rejected_too() -> None:
    text = HEAD + "defaults:\n  load: {concurrency: 1, rate: 1}\n"
    assert problems(text) == [
        "f.yaml:7:9: give either concurrency (closed loop) or rate (open loop), not both "
        "(at $.defaults.load)"
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("    workload: {endpoint: chatt}\n",
         "f.yaml:6:26: \"chatt\" is not one of chat, completions, responses, embeddings "
         "(did you mean 'chat'?) "
         "(at $.benchmarks[0].workload.endpoint)"),
        ("    load: {rate: 1, arrival: poison}\n",
         "f.yaml:6:30: \"poison\" is not one of poisson, constant, gamma (did you mean 'poisson'?) "
         "(at $.benchmarks[0].load.arrival)"),
        ("    on_empty: skp\n",
         "f.yaml:6:15: \"skp\" is not one of error, skip (did you mean 'skip'?) "
         "(at $.benchmarks[0].on_empty)"),
        ("    on_empty: ignore\n",
         'f.yaml:6:15: "ignore" is not one of error, skip (at $.benchmarks[0].on_empty)'),
        ("    matrix: {arrival: [constant, burst]}\n",
         'f.yaml:6:34: "burst" is not one of poisson, constant, gamma '
         "(at $.benchmarks[0].matrix.arrival[1])"),
    ],
)
def test_bad_enum_values_with_suggestions(lines: str, expected: str) -> None:
    assert bench_problems(lines) == [expected]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("'bad name'", '"bad name" ' + NAME_RULE),
        ("-lead", '"-lead" ' + NAME_RULE),
        ("a/b", '"a/b" ' + NAME_RULE),
        ("''", '"" ' + NAME_RULE),
        ("x" * 65, f'"{"x" * 56}... allows at most 64 characters'),
        ("5", "expected a string, got 5"),
        ("null", "expected a string, got null"),
    ],
)
def test_bad_benchmark_names(name: str, expected: str) -> None:
    text = f"version: 1\nname: p\nbenchmarks:\n  - name: {name}\n    models: all\n"
    assert problems(text) == [f"f.yaml:4:11: {expected} (at $.benchmarks[0].name)"]


@pytest.mark.parametrize("name", ["a", "A1", "long-context", "v1.2_x", "'9'", "x" * 64])
def test_good_benchmark_names(name: str) -> None:
    assert problems(f"version: 1\nname: p\nbenchmarks: [{{name: {name}, models: all}}]\n") == []


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("    matrix: {concurency: [1]}\n",
         ["f.yaml:6:14: unknown key 'concurency' (did you mean 'concurrency'?) "
          "(at $.benchmarks[0].matrix.concurency)"]),
        ("    matrix: {models: [a]}\n",
         ["f.yaml:6:14: unknown key 'models'; allowed: arrival, batch_size, burstiness, calibrate, "
          "concurrency, dataset, duration_grace_s, duration_s, early_stop, endpoint, exclude, "
          "include, input_tokens, input_tokens_stddev, job_timeout_s, max_concurrency, "
          "max_tokens, prefix, prompt_reuse, ramp_up, rate, repeat, repeat_pause_s, replay, "
          "request_timeout_s, requests, seed, session, stall_timeout_s, "
          "stream, temperature, template, tokenizer, trace, trace_format, warmup_requests "
          "(at $.benchmarks[0].matrix.models)"
          ]),
        ("    matrix: {concurrency: 4}\n",
         ["f.yaml:6:27: expected a list, got 4 (at $.benchmarks[0].matrix.concurrency)"]),
        ("    matrix: {concurrency: []}\n",
         ["f.yaml:6:27: [] needs at least 1 item (at $.benchmarks[0].matrix.concurrency)"]),
        ("    matrix: {concurrency: ['1', 0]}\n",
         ['f.yaml:6:28: expected an integer, got "1" (at $.benchmarks[0].matrix.concurrency[0])',
          "f.yaml:6:33: must be at least 1, got 0 (at $.benchmarks[0].matrix.concurrency[1])"]),
        ("    matrix: {rate: [1, x]}\n",
         ['f.yaml:6:24: expected a number, got "x" (at $.benchmarks[0].matrix.rate[1])']),
        ("    matrix: {stream: [true, 1]}\n",
         ["f.yaml:6:29: expected true or false, got 1 (at $.benchmarks[0].matrix.stream[1])"]),
        ("    matrix: {include: {}}\n",
         ["f.yaml:6:23: expected a list, got {} (at $.benchmarks[0].matrix.include)"]),
        ("    matrix: {include: [1]}\n",
         ["f.yaml:6:24: expected a mapping, got 1 (at $.benchmarks[0].matrix.include[0])"]),
        ("    matrix: {include: [{}]}\n",
         ["f.yaml:6:24: {} needs at least 1 key (at $.benchmarks[0].matrix.include[0])"]),
        ("    matrix: {exclude: [{concurrency: [1]}]}\n",
         ["f.yaml:6:38: expected an integer, got [1] "
          "(at $.benchmarks[0].matrix.exclude[0].concurrency)"]),
        ("    matrix: 5\n", ["f.yaml:6:13: expected a mapping, got 5 (at $.benchmarks[0].matrix)"]),
    ],
)
def test_matrix_problems(lines: str, expected: list[str]) -> None:
    assert bench_problems(lines) == expected


SEVERAL = """\
version: 1
name: p
benchmarks:
  - name: a
    models: all
    load: {concurrency: 0}
  - name: b
    models: all
    load:
      concurrency: 2
      rate: 0
    workload: {temperature: 2.5}
    max_error_rate: 1.5
  - nme: c
    models: all
"""


def test_every_problem_is_reported_at_once_in_document_order() -> None:
    assert problems(SEVERAL) == [
        "f.yaml:6:25: must be at least 1, got 0 (at $.benchmarks[0].load.concurrency)",
        "f.yaml:10:7: give either concurrency (closed loop) or rate (open loop), not both "
        "(at $.benchmarks[1].load)",
        "f.yaml:11:13: must be at least 0.001, got 0 (at $.benchmarks[1].load.rate)",
        "f.yaml:12:29: must be at most 2, got 2.5 (at $.benchmarks[1].workload.temperature)",
        "f.yaml:13:21: must be at most 1, got 1.5 (at $.benchmarks[1].max_error_rate)",
        "f.yaml:14:5: missing required key 'name' (at $.benchmarks[2])",
        "f.yaml:14:5: unknown key 'nme' (did you mean 'name'?) (at $.benchmarks[2].nme)",
    ]


def test_a_valid_plan_has_no_problems() -> None:
    text = HEAD + (
        "    workload: {synthetic: {input_tokens: 8}, max_tokens: 4, extra_body: {x: [1]}}\n"
        "    load: {rate: 2.5, arrival: constant, max_concurrency: 4, duration_s: 1.5}\n"
        "    matrix:\n"
        "      rate: [1, 2]\n"
        "      include: [{rate: 4, max_tokens: 8}]\n"
        "      exclude: [{rate: 2}]\n"
        "    slo: {ttft_ms: {p95: 500}, error_rate: 0, min_output_tokens_per_s: 0}\n"
        "    tags: [x, y]\n"
        "    on_empty: skip\n"
        "defaults:\n"
        "  workload: {template: 'Hi {{ i }}'}\n"
        "  retries: 2\n"
        "vars: {x: 1, _y: [2]}\n"
        "gate: true\n"
        "inventory: {server: local, fallback: false}\n"
    )
    assert problems(text) == []


def test_a_url_without_scheme_says_what_it_must_start_with() -> None:
    assert problems("servers:\n  local: {url: 127.0.0.1:4400}\n", "servers") == [
        f'f.yaml:2:16: "127.0.0.1:4400" {URL_RULE} (at $.servers.local.url)']


URL_RULE = ("must start with http:// or https://, hold no spaces, control characters, query (?) "
            "or credentials (no user:password@: the key goes in the variable that api_key_env "
            "names), e.g. http://127.0.0.1:4000")


@pytest.mark.parametrize(("url", "shown"), [
    ("http://admin:PWSECRET@127.0.0.1:18555", "http://***@127.0.0.1:18555"),
    ("https://PWSECRET@proxy.x/v1", "https://***@proxy.x/v1"),
])
def test_a_url_with_credentials_is_refused_without_showing_them(url: str, shown: str) -> None:
    assert problems(f"servers:\n  local: {{url: '{url}'}}\n", "servers") == [
        f'f.yaml:2:16: "{shown}" {URL_RULE} (at $.servers.local.url)']


@pytest.mark.parametrize("url", ["http://127.0.0.1:4000", "https://proxy.example/v1/a@b",
                                 "http://[::1]:4000/path"])
def test_urls_without_credentials_pass(url: str) -> None:
    assert problems(f"servers:\n  local: {{url: '{url}'}}\n", "servers") == []


def _patterns(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node
        for child in node.values():
            yield from _patterns(child)
    elif isinstance(node, list):
        for child in node:
            yield from _patterns(child)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_pattern_says_in_words_what_it_wants(name: str) -> None:
    """A regex is no message: each pattern carries patternErrorMessage (editors show it too)."""
    for node in _patterns(load_schema(name)):
        said = node.get("patternErrorMessage")
        assert isinstance(said, str) and "^" not in said, node["pattern"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("servers: {}\n", ["s.yaml:1:10: {} needs at least 1 key (at $.servers)"]),
        ("server: {}\n",
         ["s.yaml:1:1: missing required key 'servers' (at $)",
          "s.yaml:1:1: unknown key 'server' (did you mean 'servers'?) (at $.server)"]),
        ("servers:\n  a: {}\n", ["s.yaml:2:6: missing required key 'url' (at $.servers.a)"]),
        ("servers:\n  a: {url: ftp://x}\n",
         [f's.yaml:2:12: "ftp://x" {URL_RULE} (at $.servers.a.url)']),
        ("servers:\n  a: {url: 'http://x', timeout_s: 0}\n",
         ["s.yaml:2:35: must be greater than 0, got 0 (at $.servers.a.timeout_s)"]),
        ("servers:\n  a: {url: 'http://x', verify_ssl: false}\n",
         ["s.yaml:2:24: unknown key 'verify_ssl' (did you mean 'verify_tls'?) "
          "(at $.servers.a.verify_ssl)"]),
        ("servers:\n  -a: {url: 'http://x'}\n",
         [f's.yaml:2:3: key "-a" {NAME_RULE} (at $.servers.-a)']),
        # a pasted secret is not echoed back
        ("servers:\n  a: {url: 'http://x', api_key_env: sk-live-123}\n",
         ["s.yaml:2:37: api_key_env must be the NAME of an environment variable that holds the "
          "key (e.g. LITELLM_API_KEY), never the key itself (at $.servers.a.api_key_env)"]),
        ("default: 5\nservers:\n  a: {url: 'http://x'}\n",
         ["s.yaml:1:10: expected a string, got 5 (at $.default)"]),
        ("servers:\n  a: {url: 'http://x', limits: {line_bytes: 1048576, chunks: 1}}\n", []),
        ("servers:\n  a: {url: 'http://x', limits: {line_bytes: 100}}\n",
         ["s.yaml:2:45: must be at least 65536, got 100 (at $.servers.a.limits.line_bytes)"]),
        ("servers:\n  a: {url: 'http://x', limits: {error_bytes: 2048.5}}\n",
         ["s.yaml:2:46: expected an integer, got 2048.5 (at $.servers.a.limits.error_bytes)"]),
        ("servers:\n  a: {url: 'http://x', limits: {inventory: 1}}\n",
         ["s.yaml:2:33: unknown key 'inventory' (did you mean 'inventory_bytes'?) "
          "(at $.servers.a.limits.inventory)"]),
    ],
)
def test_servers_schema(text: str, expected: list[str]) -> None:
    assert [p.render() for p in validate(load_text(text, "s.yaml"), "servers")] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}\n", []),
        ("models: [{}]\n", ["m.yaml:1:10: missing required key 'id' (at $.models[0])"]),
        ("models: [{id: x, mod: chat}]\n",
         ["m.yaml:1:18: unknown key 'mod' (did you mean 'mode'?) (at $.models[0].mod)"]),
        ("models: [{id: x, max_input_tokens: 0}]\n",
         ["m.yaml:1:36: must be at least 1, got 0 (at $.models[0].max_input_tokens)"]),
        ("models: [{id: x, servers: []}]\n",
         ["m.yaml:1:27: [] needs at least 1 item (at $.models[0].servers)"]),
        ("groups: {a: []}\n",
         ["m.yaml:1:13: [] is not valid here: A group's members: a model pattern or a non-empty "
          "list of patterns. (at $.groups.a)"]),
        ("groups: {'a b': x}\n",
         ['m.yaml:1:10: key "a b" must start with a letter, digit or _ and hold only letters, '
          "digits and _ . - (at $.groups.a b)"]),
    ],
)
def test_models_schema(text: str, expected: list[str]) -> None:
    assert [p.render() for p in validate(load_text(text, "m.yaml"), "models")] == expected


@pytest.mark.parametrize(
    ("schema", "path", "types"),
    [
        ("plan", ("version",), {"number"}),
        ("plan", ("name",), {"string"}),
        ("plan", ("gate",), {"boolean"}),
        ("plan", ("inventory", "fallback"), {"boolean"}),
        ("plan", ("benchmarks",), {"array"}),
        ("plan", ("benchmarks", 3), {"object"}),
        ("plan", ("benchmarks", 0, "models"), {"string", "array"}),
        ("plan", ("benchmarks", 0, "models", 2), {"string"}),
        ("plan", ("benchmarks", 0, "load", "concurrency"), {"integer"}),
        ("plan", ("benchmarks", 0, "load", "rate"), {"number"}),
        ("plan", ("benchmarks", 0, "load", "arrival"), {"string"}),
        ("plan", ("benchmarks", 0, "workload", "max_tokens"), {"integer"}),
        ("plan", ("benchmarks", 0, "workload", "stream"), {"boolean"}),
        ("plan", ("benchmarks", 0, "workload", "synthetic", "input_tokens"), {"integer"}),
        ("plan", ("benchmarks", 0, "workload", "extra_body"), {"object"}),
        ("plan", ("benchmarks", 0, "workload", "extra_body", "min_tokens"), set()),
        ("plan", ("benchmarks", 0, "matrix", "concurrency"), {"array"}),
        ("plan", ("benchmarks", 0, "matrix", "concurrency", 1), {"integer"}),
        ("plan", ("benchmarks", 0, "matrix", "include", 0, "temperature"), {"number"}),
        ("plan", ("benchmarks", 0, "slo", "ttft_ms", "p95"), {"number"}),
        ("plan", ("defaults", "load", "requests"), {"integer"}),
        ("plan", ("defaults", "max_error_rate"), {"number"}),
        ("plan", ("vars", "anything"), set()),
        ("plan", ("no_such_key",), set()),
        ("plan", ("benchmarks", 0, "no_such_key", "deeper"), set()),
        ("servers", ("servers", "local", "timeout_s"), {"number"}),
        ("servers", ("servers", "local", "url"), {"string"}),
        ("models", ("groups", "coder"), {"string", "array"}),
        ("models", ("models", 0, "max_input_tokens"), {"integer"}),
        # the lock schema refers into the plan schema for params and SLOs
        ("lock", ("jobs", 0, "params", "rate"), {"number"}),
        ("lock", ("jobs", 0, "params", "endpoint"), {"string"}),
        ("lock", ("benchmarks", 0, "slo", "ttft_ms", "p95"), {"number"}),
        ("lock", ("plan", "name"), {"string"}),
    ],
)
def test_expected_types(schema: str, path: tuple[Any, ...], types: set[str]) -> None:
    assert expected_types(schema, path) == types


def test_unknown_schema_name() -> None:
    with pytest.raises(InputError, match="unknown schema 'nope'; choose one of plan, servers"):
        load_schema("nope")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schemas_are_valid_json_schemas(name: str) -> None:
    schema = load_schema(name)
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# --- one place for defaults: schema defaults and code defaults stay equal -------------------


SCHEMA_MAPS = ("properties", "$defs", "patternProperties")  # name -> subschema
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("items", "additionalProperties", "not", "propertyNames", "if", "then", "else")


def schema_defaults(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (`path`, `default`) of a schema, walking subschemas only (a property may be
    called `default`, as in servers.yaml)."""
    if not isinstance(node, dict):
        return
    if "default" in node:
        yield path, node["default"]
    for keyword, child in node.items():
        if keyword in SCHEMA_MAPS:
            for name, sub in child.items():
                yield from schema_defaults(sub, (*path, keyword, name))
        elif keyword in SCHEMA_LISTS:
            for i, sub in enumerate(child):
                yield from schema_defaults(sub, (*path, keyword, str(i)))
        elif keyword in SCHEMA_ONE:
            yield from schema_defaults(child, (*path, keyword))


def code_default(schema: str, path: tuple[str, ...]) -> Any:
    """The runner/defaults.py value that a schema `default` at `path` must equal."""
    name = path[-1]
    if schema == "plan" and path[:2] == ("$defs", "param_prefix"):
        return defaults.PREFIX[name]
    if schema == "plan" and path[:1] == ("$defs",) and path[1].startswith("param_"):
        return defaults.PARAMS[path[1].removeprefix("param_")]
    if schema == "plan" and path[-2:-1] == ("properties",) and name in defaults.BENCHMARK:
        return defaults.BENCHMARK[name]
    if schema == "plan" and path in (("properties", "inventory", "properties", "fallback"),
                                     ("properties", "inventory", "properties",
                                      "include_wildcard_expansions"),
                                     ("properties", "gate")):
        return defaults.PLAN[name]
    if schema == "plan" and path[:2] in (("$defs", "search"), ("$defs", "sweep")):
        return (defaults.SEARCH if path[1] == "search" else defaults.SWEEP)[name]
    if schema == "servers" and path[:3] == ("$defs", "server", "properties"):
        return defaults.SERVER[name]
    if schema == "servers" and path[:3] == ("$defs", "limits", "properties"):
        return defaults.LIMITS[name]
    if schema == "servers" and path[:3] == ("$defs", "gateway", "properties"):
        return defaults.GATEWAY[name]
    raise AssertionError(f"{schema}: a default at {'/'.join(path)} has no code default")


ALL_DEFAULTS = [(s, p, v) for s in SCHEMA_NAMES for p, v in schema_defaults(load_schema(s))]


@pytest.mark.parametrize(("schema", "path", "value"), ALL_DEFAULTS,
                         ids=[f"{s}:{'/'.join(p)}" for s, p, _ in ALL_DEFAULTS])
def test_schema_default_equals_code_default(schema: str, path: tuple[str, ...], value: Any) -> None:
    expected = code_default(schema, path)
    assert value == expected
    assert type(value) is type(expected)


def test_every_code_default_has_a_schema_default() -> None:
    found = {(s, p) for s, p, _ in ALL_DEFAULTS}
    wanted = {("plan", ("$defs", f"param_{k}")) for k in defaults.PARAMS}
    wanted |= {("plan", ("$defs", d, "properties", k))
               for d in ("benchmark", "defaults") for k in defaults.BENCHMARK}
    wanted |= {("plan", ("properties", "inventory", "properties", "fallback")),
               ("plan", ("properties", "inventory", "properties", "include_wildcard_expansions")),
               ("plan", ("properties", "gate"))}
    wanted |= {("servers", ("$defs", "server", "properties", k)) for k in defaults.SERVER}
    wanted |= {("servers", ("$defs", "limits", "properties", k)) for k in defaults.LIMITS}
    wanted |= {("servers", ("$defs", "gateway", "properties", k)) for k in defaults.GATEWAY}
    assert set(defaults.PLAN) == {"fallback", "gate", "include_wildcard_expansions"}
    assert wanted - found == set()


CONDITIONAL = {"input_tokens": defaults.INPUT_TOKENS, "concurrency": defaults.CONCURRENCY,
               "requests": defaults.REQUESTS}


@pytest.mark.parametrize(
    "param", sorted(k.removeprefix("param_") for k in load_schema("plan")["$defs"]
                    if k.startswith("param_")))
def test_every_param_default_is_fixed_conditional_or_absent(param: str) -> None:
    spec = load_schema("plan")["$defs"][f"param_{param}"]
    if param in defaults.PARAMS:
        assert spec["default"] == defaults.PARAMS[param]
    elif param in CONDITIONAL:
        # a conditional default has no schema `default`, but its description states it
        assert "default" not in spec
        assert f"({CONDITIONAL[param]} when " in spec["description"]
    else:
        assert "default" not in spec


def test_every_param_is_a_workload_or_load_key_and_a_matrix_axis() -> None:
    defs = load_schema("plan")["$defs"]
    params = {k.removeprefix("param_") for k in defs if k.startswith("param_")}
    sections = set(defs["workload"]["properties"]) | set(defs["load"]["properties"])
    sections |= set(defs["synthetic"]["properties"]) | set(defs["embeddings"]["properties"])
    assert params == sections - {"synthetic", "embeddings", "search", "sweep"}  # no axis
    assert set(defs["matrix"]["properties"]) - {"include", "exclude"} == params - {"extra_body"}
    assert set(defs["matrix_point"]["properties"]) == params - {"extra_body"}
    assert set(defaults.PARAMS) <= params


def test_a_locked_job_takes_every_param_a_plan_does() -> None:
    # A plan with `prompt_reuse` once made a lock that `validate` refused (the lock's params
    # lacked it): every param of the plan schema is a key of a locked job's params, by $ref.
    params = {k.removeprefix("param_") for k in load_schema("plan")["$defs"]
              if k.startswith("param_")}
    # search and sweep are load modes, not matrix axes: their own $defs, not param_*.
    modes = {"search", "sweep"}
    locked = load_schema("lock")["$defs"]["params"]["properties"]
    assert set(locked) == params | modes
    for name, spec in locked.items():
        target = name if name in modes else f"param_{name}"
        assert spec == {"$ref": f"plan.schema.json#/$defs/{target}"}, name


# --- the example files validate ---------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(REPO.glob("plans/*.yaml")), ids=lambda p: p.name)
def test_example_plans_are_valid(path: Path) -> None:
    plan = load_plan(str(path))
    assert plan.benchmarks


@pytest.mark.parametrize(
    ("name", "schema"), [("servers.yaml", "servers"), ("models.yaml", "models")]
)
def test_example_configs_are_valid(name: str, schema: str) -> None:
    assert validate(load_file(str(REPO / "configs" / name)), schema) == []


def test_example_configs_load() -> None:
    servers = config.load_servers(str(REPO / "configs"))
    assert servers.default in servers.servers
    assert config.load_models(str(REPO / "configs")).models


@pytest.fixture
def uncached_schemas() -> Iterator[None]:
    """Forget loaded schemas before and after, so a test may point the loader elsewhere."""
    caches = (schema.load_schema, schema.schema_bytes, schema._validator)
    for cached in caches:
        cached.cache_clear()
    yield
    for cached in caches:
        cached.cache_clear()


def test_an_installed_package_reads_its_own_copy_of_the_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uncached_schemas: None
) -> None:
    package = tmp_path / "site-packages" / "runner"
    (package / "schemas").mkdir(parents=True)
    for name in SCHEMA_NAMES:
        source = REPO / "schemas" / f"{name}.schema.json"
        (package / "schemas" / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(schema, "__file__", str(package / "schema.py"))
    assert schema.schema_dir() == package / "schemas"
    assert load_schema("plan")["$id"].endswith("plan.schema.json")


@pytest.mark.parametrize("missing", ["folder", "one file"])
def test_missing_schemas_say_reinstall_and_name_no_path(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    uncached_schemas: None, capsys: pytest.CaptureFixture[str],
) -> None:
    package = tmp_path / "site-packages" / "runner"
    (package / "schemas").mkdir(parents=True)
    if missing == "one file":
        (package / "schemas" / "plan.schema.json").write_bytes(
            (REPO / "schemas" / "plan.schema.json").read_bytes())
    monkeypatch.setattr(schema, "__file__", str(package / "schema.py"))
    code = main(["schema", "result"])
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL
    assert err.startswith("error: this installation of runner has no ") and err.endswith("\n")
    assert "reinstall" in err and str(tmp_path) not in err and err.count("\n") == 1


@pytest.mark.parametrize("model", ['"m\\u0000z"', '"a,b"', '"tab\\there"', '" "', '" m"', '"m "'])
def test_a_simulated_model_id_the_simulator_cannot_take_is_refused(model: str) -> None:
    """A NUL or a comma in a `kind: mock` model id passed validate, then apply exited 70; so did
    a blank id " " (found by tests/commands/test_fuzz.py)."""
    text = f"servers:\n  demo:\n    kind: mock\n    models: [{model}]\n"
    [problem] = problems(text, "servers")
    assert problem.startswith("f.yaml:4:14: ") and "without commas, control characters" in problem


def test_the_lock_schema_is_printed_and_refers_to_the_plan_schema_beside_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schema", "lock"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$id"].endswith("/lock.schema.json")
    refs = {v["$ref"].split("#")[0] for v in printed["$defs"]["params"]["properties"].values()}
    assert refs == {"plan.schema.json"}  # resolved beside the file, as editors do


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("    load: {rate: 1, arrival: gamma, burstiness: 0}\n",
         "f.yaml:6:49: must be at least 0.01, got 0 (at $.benchmarks[0].load.burstiness)"),
        ("    load: {rate: 1, ramp_up: {shape: steep, duration_s: 5}}\n",
         'f.yaml:6:38: "steep" is not one of linear, exponential '
         "(at $.benchmarks[0].load.ramp_up.shape)"),
        ("    load: {rate: 1, ramp_up: {start: 2}}\n",
         "f.yaml:6:30: missing required key 'duration_s' (at $.benchmarks[0].load.ramp_up)"),
        ("    load: {rate: 1, early_stop: {min_requests: 0}}\n",
         "f.yaml:6:48: must be at least 1, got 0 "
         "(at $.benchmarks[0].load.early_stop.min_requests)"),
        ("    load: {rate: 1, early_stop: {saturation: 1}}\n",
         "f.yaml:6:46: expected true or false, got 1 "
         "(at $.benchmarks[0].load.early_stop.saturation)"),
    ],
)
def test_bad_arrival_shapes_and_early_stops_are_located(lines: str, expected: str) -> None:
    assert bench_problems(lines) == [expected]
