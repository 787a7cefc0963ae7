"""The pure parts of `runner new`: selections, pattern proposals, answers, presets, plan YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.inventory.listing import Model
from runner.plan import newplan
from runner.plan.newplan import AnswerError, Choice, parse_selection, propose_pattern
from runner.plan.patterns import resolve
from runner.plan.planfile import load_plan
from runner.yamlfile import load_text

Q8, FP8, META = "Qwen/Qwen3-8B", "Qwen/Qwen3-8B-FP8", "meta-llama/Llama-3.1-8B-Instruct"
MOCK = [Q8, FP8, META]
Q4, Q4FP8, CODER = "Qwen/Qwen3-4B", "Qwen/Qwen3-4B-FP8", "Qwen/Qwen3-Coder-30B"
BIG = sorted([Q8, FP8, Q4, Q4FP8, CODER, META, "meta-llama/Llama-3.1-70B", "gpt-4o"])
NOT_GPT = tuple(i for i in BIG if i != "gpt-4o")
GROUPS = {"quantized": ["*-FP8"]}


@pytest.mark.parametrize(
    ("text", "models", "typed"),
    [
        ("2", (FP8,), None),
        ("1-3", (Q8, FP8, META), None),
        (" 3 , 1 ", (Q8, META), None),
        ("1 - 2", (Q8, FP8), None),
        ("all,!2", (Q8, META), None),
        ("1-3,!@quantized", (Q8, META), None),
        ("Qwen/*", (Q8, FP8), ("Qwen/*",)),
        ("Qwen/*, !*-FP8", (Q8,), ("Qwen/*", "!*-FP8")),
        ("~meta.*", (META,), ("~meta.*",)),
        ("@quantized", (FP8,), ("@quantized",)),
        (META, (META,), (META,)),
        ("all,!*-AWQ", (Q8, FP8, META), ("all", "!*-AWQ")),  # an exclusion for later models
        ("2,Qwen/*", (Q8, FP8), None),
    ],
)
def test_parse_selection(text: str, models: tuple[str, ...], typed: tuple[str, ...] | None
                         ) -> None:
    assert parse_selection(text, MOCK, GROUPS) == Choice(models, typed)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "choose at least one model"),
        (" , ", "choose at least one model"),
        ("7", "7 is not in 1-3"),
        ("0", "0 is not in 1-3"),
        ("2-9", "9 is not in 1-3"),
        ("3-1", "3-1 runs backwards; write 1-3"),
        ("foo*", "no model matches 'foo*'"),
        ("qwen/*", "no model matches 'qwen/*' (did you mean 'Qwen/Qwen3-8B' or"),
        ("Qwen/*,foo", "no model matches 'foo'"),
        ("&Qwen/*,!Qwen/*", "selects no model"),
        ("~(", "invalid regex"),
        ("@nope", "unknown model group '@nope'"),
    ],
)
def test_parse_selection_rejects_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(AnswerError) as info:
        parse_selection(text, MOCK, GROUPS)
    assert reason in str(info.value)


def test_parse_selection_without_numbers_reads_digits_as_ids() -> None:
    with pytest.raises(AnswerError, match="no model matches '2'"):
        parse_selection("2", MOCK, numbers=False)
    assert parse_selection("Qwen/*", MOCK, numbers=False).typed == ("Qwen/*",)


@pytest.mark.parametrize(
    ("ids", "models", "proposal"),
    [
        (MOCK, (Q8,), (Q8,)),  # one model: its id
        (MOCK, (Q8, FP8, META), ("all",)),
        (MOCK, (Q8, FP8), ("Qwen/*",)),
        (MOCK, (Q8, META), (Q8, META)),  # no pattern is shorter than the list
        (BIG, (Q4, Q4FP8), ("Qwen/Qwen3-4B*",)),  # the common prefix
        (BIG, (Q8, FP8, Q4, Q4FP8, CODER), ("Qwen/*",)),
        (BIG, (Q8, Q4, CODER), ("Qwen/*", "!*-FP8")),  # the excluded share an ending
        (BIG, (Q8, FP8, Q4, CODER), ("Qwen/*", f"!{Q4FP8}")),
        (BIG, NOT_GPT, ("Qwen/*", "meta-llama/*")),
        ([*BIG, "mistral/m"], (*NOT_GPT, "mistral/m"), ("all", "!gpt-4o")),
        (["a", "b", "c"], ("a", "b"), ("a", "b")),
    ],
)
def test_propose_pattern(ids: list[str], models: tuple[str, ...], proposal: tuple[str, ...]
                         ) -> None:
    assert propose_pattern(Choice(tuple(sorted(models)), None), ids) == proposal


def test_propose_pattern_keeps_what_was_typed() -> None:
    assert propose_pattern(Choice((Q8, FP8), ("Qwen/Qwen3*",)), MOCK) == ("Qwen/Qwen3*",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", "a"), ("3", "c"), ("b", "b"), ("7", "7 is not in 1-3"), ("x", "'x' is not one of")],
)
def test_parse_choice(text: str, expected: str) -> None:
    if expected in "abc":
        assert newplan.parse_choice(text, ["a", "b", "c"]) == expected
    else:
        with pytest.raises(AnswerError, match=expected):
            newplan.parse_choice(text, ["a", "b", "c"])


@pytest.mark.parametrize(("text", "yes"), [("y", True), ("YES", True), ("n", False), ("No", False)])
def test_parse_yes_no(text: str, yes: bool) -> None:
    assert newplan.parse_yes_no(text) is yes


def test_parse_yes_no_rejects_other_words() -> None:
    with pytest.raises(AnswerError, match="answer y or n"):
        newplan.parse_yes_no("maybe")


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("nightly", "nightly"),
        (" qwen-latency.v2 ", "qwen-latency.v2"),
        ("mine.yaml", "mine"),
        ("mine.yml", "mine"),
        ("", "give the plan a name"),
        ("-x", "not a valid plan name"),
        ("a/b", "not a valid plan name"),
        ("..", "not a valid plan name"),
        ("has space", "not a valid plan name"),
        ("x" * 65, "longer than 64 characters"),
    ],
)
def test_check_name(text: str, result: str) -> None:
    if " " not in result:
        assert newplan.check_name(text) == result
    else:
        with pytest.raises(AnswerError, match=result):
            newplan.check_name(text)


LATENCY = newplan.PRESETS["latency"]
CONCURRENCY, MAX_TOKENS, INPUT, REQUESTS = LATENCY.fields
RATE, DURATION, _ = newplan.PRESETS["throughput"].fields


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        (CONCURRENCY, "1, 4, 16", [1, 4, 16]),
        (CONCURRENCY, "[2 8]", [2, 8]),
        (CONCURRENCY, "32", [32]),
        (RATE, "0.5,2,8", [0.5, 2, 8]),
        (DURATION, "90", 90),
        (DURATION, "1.5", 1.5),
        (REQUESTS, " 20 ", 20),
    ],
)
def test_parse_value(field: newplan.Field, text: str, value: Any) -> None:
    assert newplan.parse_value(field, text) == value
    assert type(newplan.parse_value(field, text)) is type(value)


@pytest.mark.parametrize(
    ("field", "text", "reason"),
    [
        (CONCURRENCY, "", "give one or more numbers"),
        (REQUESTS, "", "give a number"),
        (REQUESTS, "10 20", "give one number, not 2"),
        (CONCURRENCY, "1,4,1", "1 is given twice"),
        (CONCURRENCY, "0", "'0' is not a whole number of at least 1"),
        (CONCURRENCY, "2.5", "'2.5' is not a whole number"),
        (CONCURRENCY, "many", "'many' is not a whole number"),
        (CONCURRENCY, "200000", "200000 is more than 100000"),
        (RATE, "0", "'0' is not a number above 0"),
        (RATE, "-1", "'-1' is not a number above 0"),
        (RATE, "inf", "'inf' is not a number above 0"),
        (RATE, "fast", "'fast' is not a number above 0"),
    ],
)
def test_parse_value_rejects_with_a_reason(field: newplan.Field, text: str, reason: str) -> None:
    with pytest.raises(AnswerError) as info:
        newplan.parse_value(field, text)
    assert reason in str(info.value)


def test_caps_come_from_the_smallest_known_model_limits() -> None:
    models = [Model("a", max_input_tokens=8192), Model("b", max_input_tokens=4096),
              Model("c", max_output_tokens=1024), Model("d")]
    caps = newplan.caps_for(models)
    assert caps == {"max_input_tokens": (4096, "b"), "max_output_tokens": (1024, "c")}
    long_input = newplan.PRESETS["long-context"].fields[0]
    assert newplan.default_for(long_input, caps) == 4096
    assert newplan.default_for(INPUT, caps) == 512  # below the cap already
    assert newplan.default_for(CONCURRENCY, caps) == [1, 4, 16]  # not capped
    with pytest.raises(AnswerError, match="5000 is more than 4096, the max_input_tokens of b"):
        newplan.parse_value(long_input, "5000", caps)
    assert newplan.default_for(long_input, {}) == 32768


def test_preset_defaults_are_the_documented_ones() -> None:
    defaults = {name: {f.key: f.default for f in p.fields} for name, p in newplan.PRESETS.items()}
    assert defaults == {
        "latency": {"concurrency": [1, 4, 16], "max_tokens": 256, "input_tokens": 512,
                    "requests": 100},
        "throughput": {"rate": [1, 4, 16], "duration_s": 60, "max_concurrency": 256},
        "long-context": {"input_tokens": 32768, "concurrency": 1, "requests": 20},
    }


@pytest.mark.parametrize("preset", list(newplan.PRESETS))
@pytest.mark.parametrize("models", [("Qwen/*",), (Q8, META), ("all", "!*-FP8", "@quantized")])
def test_every_preset_renders_a_valid_plan(preset: str, models: tuple[str, ...],
                                           tmp_path: Path) -> None:
    spec = newplan.PRESETS[preset]
    values = {f.key: f.default for f in spec.fields}
    data = newplan.build_plan("p1", "sim", models, spec, values)
    path = tmp_path / "plans" / "p1.yaml"
    path.parent.mkdir()
    path.write_text(newplan.render_plan(data, "../schemas/plan.schema.json", ["hello"]))
    plan = load_plan(str(path))
    assert plan.name == "p1" and plan.server == "sim" and plan.fallback is True
    (bench,) = plan.benchmarks
    assert bench.name == preset and bench.tags == (preset,)
    assert bench.models == (models[0] if len(models) == 1 else models)
    assert load_text(path.read_text(), str(path)).data == data


def test_rendered_latency_plan_reads_like_a_hand_written_one() -> None:
    data = newplan.build_plan("qwen", "local", ("Qwen/*", "!*-FP8"), LATENCY,
                              {"concurrency": [1, 4], "max_tokens": 64, "input_tokens": 128,
                               "requests": 10})
    text = newplan.render_plan(data, "../schemas/plan.schema.json", ["Written by a test."],
                               {("benchmarks", "models"): "a pattern"})
    assert text == """\
# yaml-language-server: $schema=../schemas/plan.schema.json
# Written by a test.
version: 1
name: qwen  # results go to results/<name>/
description: "Closed-loop latency at concurrency 1, 4."
inventory:
  server: local  # --server and RUNNER_SERVER win
  fallback: true  # use models.yaml, with a WARNING, when the server is down
benchmarks:
  - name: latency
    models: [Qwen/*, "!*-FP8"]  # a pattern
    tags: [latency]
    workload:
      endpoint: chat
      synthetic: {input_tokens: 128}
      max_tokens: 64
      temperature: 0
    load: {requests: 10}
    matrix:
      concurrency: [1, 4]
"""


@pytest.mark.parametrize(
    "value",
    ["Qwen/*", "llama3.1:8b", "!*-FP8", "&@coder", "~.*Coder.*", "@group", "*", "odd[1]",
     "true", "null", "Null", "~", "123", "1.5", "1e3", "0x1F", "0o17", ".inf", "yes", "a #b",
     "a: b", "- x", "'q'", '"dq"', "tab\there", "new\nline", "émoji 🙂", "", " lead", "{x}",
     "[1]", "%x", "`x`", "a,b", 7, 2.5, 1e-05, True, None, [1, "a,b"], {"k": "v: w"}],
)
def test_flow_values_read_back_the_same(value: Any) -> None:
    text = newplan.render_plan({"v": value, "l": [value, value]}, "x.json")
    assert load_text(text, "t.yaml").data == {"v": value, "l": [value, value]}


def test_long_lists_go_one_item_a_line() -> None:
    ids = [f"org/model-number-{i}" for i in range(8)]
    text = newplan.render_plan({"models": ids}, "x.json")
    assert text.splitlines()[1:3] == ["models:", "  - org/model-number-0"]
    assert max(len(line) for line in text.splitlines()) < 100
    assert load_text(text, "t.yaml").data == {"models": ids}


@pytest.mark.parametrize(
    ("plans_dir", "schema", "ref"),
    [
        ("plans", "schemas/plan.schema.json", "../schemas/plan.schema.json"),
        ("plans/team", "schemas/plan.schema.json", "../../schemas/plan.schema.json"),
        (".", "schemas/plan.schema.json", "schemas/plan.schema.json"),
    ],
)
def test_schema_ref_is_relative_to_the_plans_folder(plans_dir: str, schema: str, ref: str) -> None:
    assert newplan.schema_ref(plans_dir, schema) == ref


@pytest.mark.parametrize(
    ("taken", "expected"),
    [(set(), "latency"), ({"latency"}, "latency-2"), ({"latency", "latency-2"}, "latency-3"),
     ({"latency-2"}, "latency")],
)
def test_free_name_is_the_first_name_not_taken(taken: set[str], expected: str) -> None:
    assert newplan.free_name("latency", taken.__contains__) == expected


ODD_IDS = sorted(["a=b", "mode=chat", "~x", "!y", "@z", "x,y", "all", "&q", "[ab]", "r(1",
                  "a", "sp ace", "!y/1"])


@pytest.mark.parametrize("model", ODD_IDS)
def test_an_odd_id_chosen_by_number_is_written_as_a_term_selecting_exactly_it(
        model: str, tmp_path: Path) -> None:
    # Before: `a=b` by number was refused as an unknown metadata key, `mode=chat` selected by
    # mode, `!y` excluded, `all` took every model, and the plan written read them so too.
    number = str(ODD_IDS.index(model) + 1)
    choice = parse_selection(f"{number}, {number}", ODD_IDS)
    assert choice.models == (model,)
    terms = propose_pattern(choice, ODD_IDS)
    assert resolve(list(terms), ODD_IDS).models == (model,)
    assert resolve(", ".join(["a", *terms, "a"]), ODD_IDS).models == tuple(sorted({"a", model}))
    path = tmp_path / "p.yaml"
    spec = newplan.PRESETS["latency"]
    values = {f.key: f.default for f in spec.fields}
    path.write_text(newplan.render_plan(newplan.build_plan("p", "s", terms, spec, values), "x"))
    models = load_plan(str(path)).benchmarks[0].models
    assert (models if isinstance(models, tuple) else (models,)) == terms
