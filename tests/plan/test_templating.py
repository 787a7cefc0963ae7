"""Sandboxed Jinja2 in plan strings: typed results, variables, sandbox limits, locations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError

from runner.errors import EXIT_INVALID, InputError
from runner.plan.planfile import Plan, load_plan
from runner.plan.templating import (
    coerce,
    environment,
    explain,
    has_template,
    render_document,
    render_text,
)
from runner.yamlfile import load_text


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def plan_with(tmp_path: Path, lines: str, extra: dict[str, str] | None = None) -> Plan:
    """A plan whose only benchmark gets `lines` (indented 4) added."""
    text = "version: 1\nname: p\nbenchmarks:\n  - name: a\n    models: all\n" + lines
    return load_plan(write(tmp_path, text), extra)


def plan_errors(tmp_path: Path, text: str, extra: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InputError) as info:
        load_plan(write(tmp_path, text), extra)
    assert info.value.exit_code == EXIT_INVALID
    return info.value.lines()


class Holder:
    _private = "secret"


def render_error(template: str, variables: dict[str, Any] | None = None) -> str:
    with pytest.raises(Exception) as info:  # any error: `explain` says which
        render_text(template, variables or {})
    return explain(info.value)


@pytest.mark.parametrize(
    ("text", "types", "expected"),
    [
        ("64", {"integer"}, 64),
        ("-3", {"integer"}, -3),
        ("012", {"integer"}, 12),  # YAML 1.2: not octal
        ("0x10", {"integer"}, 16),
        ("64.5", {"number"}, 64.5),
        ("64", {"number"}, 64),
        ("1e3", {"number"}, 1000.0),
        ("true", {"boolean"}, True),
        ("False", {"boolean"}, False),
        ("yes", {"boolean"}, "yes"),  # YAML 1.2: a string, and the schema will say so
        ("on", {"boolean"}, "on"),
        ("[1, 2]", {"array"}, [1, 2]),
        ("['a', 'b']", {"array"}, ["a", "b"]),  # what a rendered Python list looks like
        ("{'a': 1}", {"object"}, {"a": 1}),
        ("a, b", {"string", "array"}, "a, b"),
        ("64", {"string"}, "64"),
        ("true", {"string"}, "true"),
        ("64", set(), "64"),  # the schema does not say: a string
        ("true", {"integer"}, "true"),  # a bool is not an integer here
        ("", {"integer"}, ""),
        ("null", {"integer"}, "null"),
        ("null", {"integer", "null"}, None),
        ("2024-01-02", {"integer"}, "2024-01-02"),  # no date objects
        ("[1, 2", {"array"}, "[1, 2"),  # not YAML: left for the schema to report
        ("a: 1\na: 2", {"object"}, "a: 1\na: 2"),
        ("!!python/name:os.system", {"integer"}, "!!python/name:os.system"),
        ("&a [*a]", {"array"}, "&a [*a]"),
    ],
)
def test_coerce(text: str, types: set[str], expected: Any) -> None:
    value = coerce(text, types)
    assert value == expected
    assert type(value) is type(expected)


TYPED = """\
version: 1
name: "{{ plan_name }}"
description: "{{ mt }} tokens"
benchmarks:
  - name: "b{{ mt }}"
    models: "{{ model }}"
    tags: ["{{ mt }}"]
    workload:
      max_tokens: "{{ mt }}"
      temperature: "{{ temp }}"
      stream: "{{ stream }}"
      seed: "{{ mt * 2 }}"
      extra_body: {min_tokens: "{{ mt }}"}
    load: {rate: "{{ rate }}", duration_s: "{{ rate * 10 }}"}
    matrix:
      max_tokens: ["{{ mt }}", 128]
      rate: "{{ rates }}"
    max_error_rate: "{{ temp }}"
"""


def test_rendered_values_take_the_schema_type(tmp_path: Path) -> None:
    doc = load_text(TYPED, "f.yaml")
    variables = {"plan_name": "p", "mt": 64, "temp": "0.5", "stream": "false", "rate": 2,
                 "rates": [1, 2.5], "model": "Qwen/*"}
    assert render_document(doc, variables, "plan", lambda path: False) == []
    bench = doc.data["benchmarks"][0]
    assert doc.data["description"] == "64 tokens"
    assert bench["name"] == "b64"
    assert bench["tags"] == ["64"]  # tags are strings
    assert bench["models"] == "Qwen/*"
    assert bench["workload"] == {"max_tokens": 64, "temperature": 0.5, "stream": False,
                                 "seed": 128, "extra_body": {"min_tokens": "64"}}
    assert bench["load"] == {"rate": 2, "duration_s": 20}
    assert bench["matrix"] == {"max_tokens": [64, 128], "rate": [1, 2.5]}
    assert bench["max_error_rate"] == 0.5
    assert type(bench["workload"]["max_tokens"]) is int


@pytest.mark.parametrize(
    ("lines", "path", "expected"),
    [
        ("name: '{{ v }}'", ("name",), "123"),  # a name stays a string
        ("description: '{{ v }}'", ("description",), "123"),
        ("tags: ['{{ v }}']", ("tags", 0), "123"),
        ("workload: {max_tokens: '{{ v }}'}", ("workload", "max_tokens"), 123),
        ("workload: {temperature: '{{ v / 100 }}'}", ("workload", "temperature"), 1.23),
        ("workload: {extra_body: {n: '{{ v }}'}}", ("workload", "extra_body", "n"), "123"),
        ("workload: {synthetic: {input_tokens: '{{ v }}'}}",
         ("workload", "synthetic", "input_tokens"), 123),
        ("load: {concurrency: '{{ v }}'}", ("load", "concurrency"), 123),
        ("load: {requests: '{{ v + 1 }}'}", ("load", "requests"), 124),
        ("matrix: {concurrency: ['{{ v }}']}", ("matrix", "concurrency", 0), 123),
        ("matrix: {include: [{seed: '{{ v }}'}]}", ("matrix", "include", 0, "seed"), 123),
        ("slo: {ttft_ms: {p95: '{{ v }}'}}", ("slo", "ttft_ms", "p95"), 123),
        ("retries: '{{ v // 100 }}'", ("retries",), 1),
    ],
)
def test_string_or_number_by_field(lines: str, path: tuple[Any, ...], expected: Any) -> None:
    doc = load_text(f"benchmarks:\n  - {lines}\n", "f.yaml")
    assert render_document(doc, {"v": 123}, "plan", lambda path: False) == []
    found = doc.data["benchmarks"][0]
    for part in path:
        found = found[part]
    assert found == expected
    assert type(found) is type(expected)


def test_a_plan_renders_with_typed_values(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, "    workload: {max_tokens: '{{ mt }}'}\n"
                     "    load: {concurrency: '{{ c }}'}\nvars: {mt: '64', c: 4}\n")
    assert plan.benchmarks[0].params == {"max_tokens": 64, "concurrency": 4}
    assert plan.variables == {"mt": "64", "c": 4}


def test_extra_vars_win_over_plan_vars(tmp_path: Path) -> None:
    lines = "    workload: {max_tokens: '{{ mt }}', seed: '{{ seed }}'}\nvars: {mt: 64, seed: 1}\n"
    plan = plan_with(tmp_path, lines, {"mt": "512"})
    assert plan.benchmarks[0].params == {"max_tokens": 512, "seed": 1}
    assert plan.variables == {"mt": "512", "seed": 1}


def test_extra_vars_alone_are_enough(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, "    workload: {max_tokens: '{{ mt }}'}\n", {"mt": "32"})
    assert plan.benchmarks[0].params == {"max_tokens": 32}


UNDEFINED = """\
version: 1
name: p
benchmarks:
  - name: a
    models: all
    workload:
      max_tokens: "{{ nope }}"
    description: "{{ also_missing }} and {{ mt }}"
vars: {mt: 1}
"""


def test_undefined_variables_are_located_and_not_also_type_errors(tmp_path: Path) -> None:
    path = str(tmp_path / "plan.yaml")
    assert plan_errors(tmp_path, UNDEFINED) == [
        f"{path}:7:19: template error: 'nope' is undefined; define it under vars: or pass "
        "-e NAME=VALUE (at $.benchmarks[0].workload.max_tokens)",
        f"{path}:8:18: template error: 'also_missing' is undefined; define it under vars: or "
        "pass -e NAME=VALUE (at $.benchmarks[0].description)",
    ]


def test_a_misspelt_variable_gets_a_did_you_mean(tmp_path: Path) -> None:
    text = ("version: 1\nname: p\nvars: {max_tokens: 8}\nbenchmarks:\n  - name: a\n"
            "    models: all\n    workload: {max_tokens: '{{ max_token }}'}\n")
    path = str(tmp_path / "plan.yaml")
    assert plan_errors(tmp_path, text) == [
        f"{path}:7:28: template error: 'max_token' is undefined (did you mean 'max_tokens'?); "
        "define it under vars: or pass -e NAME=VALUE (at $.benchmarks[0].workload.max_tokens)"]


def test_template_problems_and_schema_problems_come_together_in_order(tmp_path: Path) -> None:
    text = UNDEFINED.replace("    models: all\n", "    models: all\n    load: {rate: 0}\n")
    path = str(tmp_path / "plan.yaml")
    assert plan_errors(tmp_path, text) == [
        f"{path}:6:18: must be at least 0.001, got 0 (at $.benchmarks[0].load.rate)",
        f"{path}:8:19: template error: 'nope' is undefined; define it under vars: or pass "
        "-e NAME=VALUE (at $.benchmarks[0].workload.max_tokens)",
        f"{path}:9:18: template error: 'also_missing' is undefined; define it under vars: or "
        "pass -e NAME=VALUE (at $.benchmarks[0].description)",
    ]


def test_a_rendered_value_of_the_wrong_type_is_a_schema_problem(tmp_path: Path) -> None:
    text = UNDEFINED.replace("{{ nope }}", "{{ mt }}x").replace("{{ also_missing }}", "x")
    path = str(tmp_path / "plan.yaml")
    assert plan_errors(tmp_path, text) == [
        f'{path}:7:19: expected an integer, got "1x" (at $.benchmarks[0].workload.max_tokens)'
    ]


def test_template_syntax_error_is_located(tmp_path: Path) -> None:
    text = "version: 1\nname: p\nbenchmarks:\n  - name: a\n    models: all\n" \
           "    description: \"{{ x \"\n"
    [line] = plan_errors(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'plan.yaml'}:6:18: template syntax error: ")
    assert line.endswith("(template line 1) (at $.benchmarks[0].description)")


@pytest.mark.parametrize(
    ("template", "variables", "message"),
    [
        ("{{ ''.__class__ }}", {},
         "template not allowed by the sandbox: access to attribute '__class__' of 'str' object "
         "is unsafe."),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", {},
         "template not allowed by the sandbox: access to attribute '__class__' of 'str' object "
         "is unsafe."),
        ("{{ f.__globals__ }}", {"f": lambda: 1},
         "template not allowed by the sandbox: access to attribute '__globals__' of "
         "'function' object is unsafe."),
        ("{{ f.__code__ }}", {"f": lambda: 1},
         "template not allowed by the sandbox: access to attribute '__code__' of "
         "'function' object is unsafe."),
        ("{{ x|attr('__class__') }}", {"x": 1},
         "template not allowed by the sandbox: access to attribute '__class__' of 'int' object "
         "is unsafe."),
        ("{{ x._private }}", {"x": Holder()},
         "template not allowed by the sandbox: access to attribute '_private' of 'Holder' "
         "object is unsafe."),
        ("{{ x.missing }}", {"x": Holder()},
         f"template error: '{Holder.__module__}.Holder object' has no attribute 'missing'"),
        ("{{ d.missing }}", {"d": {}}, "template error: 'dict object' has no attribute 'missing'"),
        ("{{ 2 ** 65 }}", {}, "template not allowed by the sandbox: exponent 65 is too large"),
        ("{{ 10 ** 1000000 }}", {},
         "template not allowed by the sandbox: exponent 1000000 is too large"),
        ("{{ n ** n }}", {"n": 10**6},
         "template not allowed by the sandbox: exponent 1000000 is too large"),
        ("{{ ((2 ** 64) ** 64) ** 64 }}", {},
         "template not allowed by the sandbox: power produces a number that is too large"),
        ("{% set a = 10 ** 60 %}{% set a = a * a %}{% set a = a * a %}{% set a = a * a %}"
         "{% set a = a * a %}{% set a = a * a %}{{ a }}", {},
         "template not allowed by the sandbox: product produces a number that is too large"),
        ("{{ 'x' * 1000001 }}", {},
         "template not allowed by the sandbox: repetition produces a value that is too long"),
        ("{{ 1000001 * 'x' }}", {},
         "template not allowed by the sandbox: repetition produces a value that is too long"),
        ("{{ [0] * n }}", {"n": 10**9},
         "template not allowed by the sandbox: repetition produces a value that is too long"),
        ("{{ ('ab' * 500000) * 2 }}", {},
         "template not allowed by the sandbox: repetition produces a value that is too long"),
        ("{% include 'other.yaml' %}", {},
         "template error: templates cannot include or import files"),
        ("{% import 'macros' as m %}", {},
         "template error: templates cannot include or import files"),
        ("{% from 'macros' import m %}", {},
         "template error: templates cannot include or import files"),
        ("{% extends 'base' %}", {}, "template error: templates cannot include or import files"),
        ("{{ self }}", {},
         "template not allowed by the sandbox: 'self' is not available in templates"),
        ("{{ self._TemplateReference__context }}", {},
         "template not allowed by the sandbox: 'self' is not available in templates"),
        ("{{ x.append(1) }}", {"x": []},
         "template not allowed by the sandbox: access to attribute 'append' of 'list' object "
         "is unsafe."),
        ("{{ x.clear() }}", {"x": {"a": 1}},
         "template not allowed by the sandbox: access to attribute 'clear' of 'dict' object "
         "is unsafe."),
    ],
)
def test_sandbox_violations(template: str, variables: dict[str, Any], message: str) -> None:
    assert render_error(template, variables) == message


@pytest.mark.parametrize(
    "name",
    ["range", "lipsum", "cycler", "joiner", "namespace", "dict", "config", "request",
     "environment", "env", "os", "environ", "HOME", "PATH", "open", "__builtins__", "import"],
)
def test_only_variables_are_visible(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/secret")
    expected = (f"template error: '{name}' is undefined; define it under vars: or pass "
                "-e NAME=VALUE")
    assert render_error(f"{{{{ {name} }}}}", {"x": 1}) == expected
    assert render_error(f"{{{{ {name}() }}}}", {"x": 1}) == expected


def test_the_environment_has_no_globals_and_no_loader() -> None:
    env = environment()
    assert env.globals == {}
    assert env.loader is None
    assert env is environment()


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("{{ x }}", {"x": 1}, "1"),
        ("{{ x | upper }}-{{ x | length }}", {"x": "ab"}, "AB-2"),
        ("{{ 2 ** 64 }}", {}, str(2**64)),
        ("{{ 2 ** -1 }}", {}, "0.5"),
        ("{{ 1.5 ** 2 }}", {}, "2.25"),
        ("{{ 'ab' * 3 }}", {}, "ababab"),
        ("{{ [1] * 3 }}", {}, "[1, 1, 1]"),
        ("{{ 6 * 7 }}", {}, "42"),
        ("{{ n * 1024 }}", {"n": 4}, "4096"),
        ("{% for m in ms %}{{ m }};{% endfor %}", {"ms": ["a", "b"]}, "a;b;"),
        ("{{ d.a }}/{{ d['b'] }}", {"d": {"a": 1, "b": 2}}, "1/2"),
        ("{{ d.items() | list | length }}", {"d": {"a": 1}}, "1"),
        ("{% if x > 1 %}big{% else %}small{% endif %}", {"x": 2}, "big"),
        ("{{ x }}\n", {"x": 1}, "1\n"),
        ("{# comment #}ok", {}, "ok"),
    ],
)
def test_ordinary_templates_still_work(template: str, variables: dict[str, Any],
                                       expected: str) -> None:
    assert render_text(template, variables) == expected


def test_hostile_templates_fail_fast() -> None:
    # CPU time, not wall time: other processes on a busy machine do not count (~0.03 s here).
    start = time.process_time()
    for template in ("{{ 9 ** 64 ** 64 }}", "{{ (9 ** 64) ** 64 ** 64 }}", "{{ 'x' * 10**9 }}"):
        with pytest.raises(SecurityError):
            render_text(template, {})
    assert time.process_time() - start < 1


def test_variables_are_not_mutated() -> None:
    variables = {"xs": [1], "d": {"a": 1}}
    for template in ("{{ xs.append(2) }}", "{{ d.update(b=2) }}", "{{ d.pop('a') }}"):
        with pytest.raises(SecurityError):
            render_text(template, variables)
    assert variables == {"xs": [1], "d": {"a": 1}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{{ x }}", True), ("{% if x %}{% endif %}", True), ("{# c #}", True), ("plain", False),
     ("{ x }", False), ("a } b {", False), ("", False)],
)
def test_has_template(text: str, expected: bool) -> None:
    assert has_template(text) is expected


RUNTIME = """\
version: 1
name: p
vars: {who: world, raw: "{{ not_rendered }}"}
defaults:
  workload: {template: "Hello {{ i }} from {{ who }}"}
benchmarks:
  - name: a
    models: all
    description: "for {{ who }}"
  - name: b
    models: all
    workload:
      template: "Tell me about {{ topic }} #{{ i }}"
      extra_body: {template: "{{ who }}"}
    matrix:
      template: ["A {{ i }}", "B {{ i }}"]
      include:
        - {template: "C {{ i }}", max_tokens: 8}
      exclude:
        - {template: "B {{ i }}"}
"""


def test_prompt_templates_and_vars_are_not_rendered_at_load_time(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, RUNTIME))
    a, b = plan.benchmarks
    assert a.description == "for world"
    assert a.params["template"] == "Hello {{ i }} from {{ who }}"
    assert b.params["template"] == "Tell me about {{ topic }} #{{ i }}"
    assert b.params["extra_body"] == {"template": "world"}  # only prompt templates wait
    assert b.matrix == {"template": ["A {{ i }}", "B {{ i }}"],
                        "include": [{"template": "C {{ i }}", "max_tokens": 8}],
                        "exclude": [{"template": "B {{ i }}"}]}
    assert plan.variables == {"who": "world", "raw": "{{ not_rendered }}"}


def test_failed_render_keeps_the_original_value() -> None:
    doc = load_text("name: '{{ x }}'\ndescription: '{{ y }}'\n", "f.yaml")
    problems = render_document(doc, {"y": "ok"}, "plan", lambda path: False)
    assert [p.render() for p in problems] == [
        "f.yaml:1:7: template error: 'x' is undefined; define it under vars: or pass "
        "-e NAME=VALUE (at $.name)"
    ]
    assert doc.data == {"name": "{{ x }}", "description": "ok"}


def test_skip_sees_every_path() -> None:
    seen: list[tuple[Any, ...]] = []
    doc = load_text("a: {b: [1, '{{ x }}']}\n", "f.yaml")

    def skip(path: tuple[Any, ...]) -> bool:
        seen.append(path)
        return path == ("a", "b", 1)

    assert render_document(doc, {}, "plan", skip) == []
    assert seen == [(), ("a",), ("a", "b"), ("a", "b", 0), ("a", "b", 1)]
    assert doc.data == {"a": {"b": [1, "{{ x }}"]}}


def test_extra_vars_are_typed_scalars_so_arithmetic_works(tmp_path: Path) -> None:
    from runner.plan.planfile import load_plan, parse_extra_vars

    plan = tmp_path / "p.yaml"
    plan.write_text("version: 1\nname: p\nbenchmarks:\n  - name: a\n    models: all\n"
                    "    workload: {max_tokens: '{{ mt * 2 }}'}\n")
    loaded = load_plan(str(plan), parse_extra_vars(["mt=64"]))
    assert loaded.benchmarks[0].params["max_tokens"] == 128


def test_a_template_making_a_lone_surrogate_is_exit_2_at_its_place(tmp_path: Path) -> None:
    """A Jinja escape makes text no file can hold: it reached a manifest or a request (exit 70)."""
    text = ("version: 1\nname: p\ndescription: '{{ \"d\\ud800\" }}'\n"
            "benchmarks: [{name: a, models: all}]\n")
    [line] = plan_errors(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'plan.yaml'}:3:14: template error: it makes text with "
                           "\\ud800, half of a surrogate pair"), line
