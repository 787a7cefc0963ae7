"""The template budget: hostile templates end fast and small with a message, ordinary ones work."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from runner.errors import EXIT_INVALID
from runner.plan.sandbox import MAX_SIZE, BudgetError, budget, size_of
from runner.plan.templating import explain, render_text

S = "x" * 100_000  # a long variable, as a plan could hold

ATTACKS = {
    "nested loops": "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "literal loops": "".join("{% for v in [0,1,2,3,4,5,6,7,8,9] %}" for _ in range(8)) + "x"
                     + "{% endfor %}" * 8,
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
                         "{% endmacro %}{{ f(40) }}",
    "wide recursive loop": "{% for a in s recursive %}{% if loop.depth < 3 %}{{ loop(s) }}"
                           "{% endif %}{% endfor %}",
    "center filter": "{{ 'a'|center(1000000000) }}",
    "center method": "{{ 'a'.center(1000000000) }}",
    "zfill": "{{ '1'.zfill(1000000000) }}",
    "expandtabs": "{{ '\t'.expandtabs(1000000000) }}",
    "to_bytes": "{{ (1).to_bytes(1000000000, 'big') }}",
    "repetition": "{{ 'x' * 10**9 }}",
    "shared repetition": "{{ [s] * 100000 }}",
    "join quadratic": "{{ s|join(s) }}",
    "join method": "{{ s.join(s|list) }}",
    "join of a generator": "{{ s|map('upper')|join(s) }}",
    "replace quadratic": "{{ s|replace('', s) }}",
    "replace method": "{{ s.replace('', s) }}",
    "percent width": "{{ '%1000000000d' % 1 }}",
    "percent star": "{{ '%*d' % (1000000000, 1) }}",
    "format filter": "{{ '%1000000000s'|format(1) }}",
    "format method": "{{ '{:>1000000000}'.format(1) }}",
    "nested format width": "{{ '{:{}}'.format(1, 1000000000) }}",
    "indent": "{{ (s ~ '\n' ~ s)|indent(1000000) }}",
    "wordwrap": "{{ s|wordwrap(1, true, s) }}",
    "batch fill": "{{ [1]|batch(1000000000, 'x')|list }}",
    "slice count": "{{ [1]|slice(1000000000)|list }}",
    "tojson indent": "{{ [1, 2]|tojson(indent=1000000000) }}",
    "sum of lists": "{{ ([[1]] * 100000)|sum(start=[]) }}",
    "concat doubling": "{% macro g(x, n) %}{% if n %}{{ g(x ~ x, n - 1) }}{% endif %}"
                       "{% endmacro %}{{ g('a', 40) }}",
    "output in a loop": "{% for a in s %}{{ s }}{% endfor %}",
    "block in a loop": "{% set x %}{% for a in s %}{{ s }}{% endfor %}{% endset %}{{ x }}",
    "pprint": "{{ ([[[[1]]]] * 200000)|pprint }}",
    "endless macro": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "deep brackets": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
}


@pytest.mark.parametrize("template", ATTACKS.values(), ids=ATTACKS.keys())
def test_attacks_fail_fast_with_a_message(template: str) -> None:
    start = time.monotonic()
    with pytest.raises(Exception) as info:  # any error: explain says which
        render_text(template, {"s": S})
    message = explain(info.value)
    assert time.monotonic() - start < 5  # the budget is 1 s; most end in milliseconds
    assert message.startswith(("template over its budget: ", "template not allowed by the sandbox",
                               "template error: it nests or recurses too deeply"))
    assert len(message) > 40


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ s|length }}", "100000"),
        ("{{ ('ab' * 500000)|length }}", "1000000"),
        ("{{ ('x' * 1000)|center(2000)|length }}", "2000"),
        ("{{ '%05d' % 42 }}", "00042"),
        ("{{ '{:>6}|{:.2f}'.format('a', 1.5) }}", "     a|1.50"),
        ("{{ ['a', 'b']|join(', ') }}", "a, b"),
        ("{{ 'a-b'.replace('-', '+') }}", "a+b"),
        ("{{ [1, 2]|sum }}", "3"),
        ("{{ {'a': [1]}|tojson(indent=2)|length }}", "22"),
        ("{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{% endfor %}{% endfor %}",
         "1x1y2x2y"),
        ("{% for n in [[1, [2]]] recursive %}{% for m in n %}{{ m }}{% endfor %}{% endfor %}",
         "1[2]"),
        ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}.{% endif %}{% endmacro %}{{ f(10) }}",
         ".........."),
        ("{{ 'a' ~ 1 ~ none }}", "a1None"),
        ("{% set x %}{{ s[:3] }}{% endset %}{{ x }}", "xxx"),
    ],
)
def test_ordinary_templates_are_within_budget(template: str, expected: str) -> None:
    assert render_text(template, {"s": S}) == expected


def test_a_budget_is_shared_by_the_renders_inside_it() -> None:
    # already spent: the next loop iteration is refused
    with budget(0.0), pytest.raises(BudgetError, match="rendering took over 0 s"):
        render_text("{% for a in 'ab' %}{{ a }}{% endfor %}", {})
    assert render_text("{% for a in 'ab' %}{{ a }}{% endfor %}", {}) == "ab"


def test_size_of_counts_nested_and_shared_items_and_stops_past_the_limit() -> None:
    assert size_of(["ab", ("c", {"d": "ef"})]) == 2 + 2 + 2 + 1 + 1 + 1 + 2
    shared = [S] * 1000
    assert MAX_SIZE < size_of(shared) < MAX_SIZE + len(S) + 1001


def test_budget_errors_are_sandbox_errors() -> None:
    assert issubclass(BudgetError, SecurityError)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB: no GB allocations


@pytest.mark.parametrize("name", ["nested loops", "exponential macro", "center filter",
                                  "join quadratic", "percent width"])
def test_validate_stops_a_hostile_plan_with_its_location(tmp_path: Path, name: str) -> None:
    template = ATTACKS[name].replace("'", "''")
    (tmp_path / "plan.yaml").write_text(
        "version: 1\nname: p\nvars: {s: " + "x" * 100_000 + "}\nbenchmarks:\n"
        f"  - name: a\n    models: all\n    description: '{template}'\n")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "runner", "validate", "plan.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_memory)
    assert done.returncode == EXIT_INVALID, done.stderr
    assert done.stdout.startswith("plan.yaml:7:18: template ")
    assert "(at $.benchmarks[0].description)" in done.stdout
    assert "memory" not in done.stdout and "Traceback" not in done.stderr
    assert time.monotonic() - start < 30  # before: 30 s and more, or gigabytes
