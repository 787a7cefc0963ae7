"""Safe YAML loading with positions: scalars, tags, duplicates, anchors, merges, limits."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

import pytest

from runner.defaults import MAX_DOCUMENT_BYTES
from runner.errors import EXIT_INVALID, InputError, Location
from runner.yamlfile import Document, format_path, load_file, load_text

PLAN = """\
version: 1
name: demo
benchmarks:
  - name: a
    load:
      concurrency: 4
  - {name: b, models: [x, "y"]}
"""


def load(text: str) -> Any:
    return load_text(text, "f.yaml").data


def error(text: str) -> str:
    with pytest.raises(InputError) as info:
        load_text(text, "f.yaml")
    assert info.value.exit_code == EXIT_INVALID
    [line] = info.value.lines()
    return line


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("version",), False, (1, 10)),
        (("version",), True, (1, 1)),
        (("benchmarks",), True, (3, 1)),
        (("benchmarks",), False, (4, 3)),
        (("benchmarks", 0), False, (4, 5)),
        (("benchmarks", 0, "name"), False, (4, 11)),
        (("benchmarks", 0, "name"), True, (4, 5)),
        (("benchmarks", 0, "load"), False, (6, 7)),
        (("benchmarks", 0, "load", "concurrency"), True, (6, 7)),
        (("benchmarks", 0, "load", "concurrency"), False, (6, 20)),
        (("benchmarks", 1), False, (7, 5)),
        (("benchmarks", 1, "name"), False, (7, 12)),
        (("benchmarks", 1, "models", 0), False, (7, 24)),
        (("benchmarks", 1, "models", 1), False, (7, 27)),
        # a path that does not exist falls back to its nearest ancestor
        (("benchmarks", 0, "load", "rate"), False, (6, 7)),
        (("benchmarks", 0, "load", "rate"), True, (6, 7)),
        (("nothing", "here"), False, (1, 1)),
        ((), False, (1, 1)),
    ],
)
def test_where_gives_one_based_line_and_col(
    path: tuple[Any, ...], key: bool, expected: tuple[int, int]
) -> None:
    where = load_text(PLAN, "plan.yaml").where(path, key=key)
    assert (where.line, where.col) == expected
    assert where.file == "plan.yaml"
    assert where.path == format_path(path)


def test_where_renders_file_line_col_and_data_path() -> None:
    doc = load_text(PLAN, "plans/x.yaml")
    assert doc.where(("benchmarks", 0, "load", "concurrency")) == Location(
        "plans/x.yaml", 6, 20, "$.benchmarks[0].load.concurrency"
    )


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "$"),
        (("benchmarks",), "$.benchmarks"),
        (("benchmarks", 1, "load", "concurrency"), "$.benchmarks[1].load.concurrency"),
        (("matrix", "include", 0), "$.matrix.include[0]"),
        ((0, 1), "$[0][1]"),
    ],
)
def test_format_path(path: tuple[Any, ...], text: str) -> None:
    assert format_path(path) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # YAML 1.2 core schema: no Norway problem, no sexagesimals, no dates
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("NO", "NO"),
        ("2024-01-02", "2024-01-02"),
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"),
        ("1:30", "1:30"),
        ("1_000", "1_000"),
        ("llama3.1:8b", "llama3.1:8b"),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("tRue", "tRue"),
        ("null", None),
        ("~", None),
        ("NULL", None),
        ("", None),
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("012", 12),
        ("0o17", 15),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("-2.5E-1", -0.25),
        ("'42'", "42"),
        ('"true"', "true"),
        ("'null'", "null"),
        ("'yes'", "yes"),
        ("|\n  42\n", "42\n"),
        (">-\n  a\n  b\n", "a b"),
    ],
)
def test_plain_scalars_follow_yaml_1_2_core(text: str, expected: Any) -> None:
    value = load(f"v: {text}\n")["v"]
    assert value == expected
    assert type(value) is type(expected)




@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!!str 12", "12"),
        ("!!str yes", "yes"),
        ("!!str true", "true"),
        ("!!int '12'", 12),
        ("!!int 0x10", 16),
        ("!!float 1", 1.0),
        ("!!float '2.5'", 2.5),
        ("!!bool 'false'", False),
        ("!!null ''", None),
        ("!<tag:yaml.org,2002:str> 5", "5"),
        ("!!map {a: 1}", {"a": 1}),
        ("!!seq [1]", [1]),
    ],
)
def test_explicit_standard_tags(text: str, expected: Any) -> None:
    value = load(f"v: {text}\n")["v"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v: !!python/object:os.system x\n",
         "f.yaml:1:4: unsupported YAML tag tag:yaml.org,2002:python/object:os.system (at $.v)"),
        ("v: !!python/name:os.system\n",
         "f.yaml:1:4: unsupported YAML tag tag:yaml.org,2002:python/name:os.system (at $.v)"),
        ("v: !!python/object/apply:os.system [ls]\n",
         "f.yaml:1:4: unsupported YAML tag tag:yaml.org,2002:python/object/apply:os.system "
         "(at $.v)"),
        ("v: !env HOME\n", "f.yaml:1:4: unsupported YAML tag !env: YAML reads a value that "
         'starts with ! as a tag; quote it: v: "!env HOME" (at $.v)'),
        ("a:\n  b: !include other.yaml\n",
         "f.yaml:2:6: unsupported YAML tag !include: YAML reads a value that starts with ! as a "
         'tag; quote it: b: "!include other.yaml" (at $.a.b)'),
        ("v: !!binary aGk=\n",
         "f.yaml:1:4: unsupported YAML tag tag:yaml.org,2002:binary (at $.v)"),
        ("v: !!timestamp 2024-01-02\n",
         "f.yaml:1:4: unsupported YAML tag tag:yaml.org,2002:timestamp (at $.v)"),
        ("v: !!set {a, b}\n", "f.yaml:1:4: unsupported YAML tag tag:yaml.org,2002:set (at $.v)"),
        ("v: !!omap [a: 1]\n", "f.yaml:1:4: unsupported YAML tag tag:yaml.org,2002:omap (at $.v)"),
        ("v: !!str [1]\n", "f.yaml:1:4: unsupported YAML tag tag:yaml.org,2002:str (at $.v)"),
        ("v: !custom [1]\n", "f.yaml:1:4: unsupported YAML tag !custom: YAML reads a value that "
         'starts with ! as a tag; quote it: v: "!custom [1]" (at $.v)'),
        ("v: !!int abc\n", "f.yaml:1:4: 'abc' is not a valid tag:yaml.org,2002:int (at $.v)"),
        ("v: !!int 1.5\n", "f.yaml:1:4: '1.5' is not a valid tag:yaml.org,2002:int (at $.v)"),
        ("v: !!bool yes\n", "f.yaml:1:4: 'yes' is not a valid tag:yaml.org,2002:bool (at $.v)"),
        ("v: !!float x\n", "f.yaml:1:4: 'x' is not a valid tag:yaml.org,2002:float (at $.v)"),
        ("v: !!null x\n", "f.yaml:1:4: 'x' is not a valid tag:yaml.org,2002:null (at $.v)"),
    ],
)
def test_unsupported_tags_are_rejected_with_location(text: str, message: str) -> None:
    assert error(text) == message


_ALIAS = "YAML reads a value that starts with * as an alias; quote it: "
_TAG = "YAML reads a value that starts with ! as a tag; quote it: "
_ANCHOR = "YAML reads a value that starts with & as an anchor; quote it: "
_TEMPLATE = "YAML reads an unquoted template as a mapping; quote it: "
_RESERVED = "YAML does not allow a plain value to start with @; quote it: "


@pytest.mark.parametrize(
    ("text", "where", "fix"),
    [
        # the README's own pattern syntax, written unquoted
        ("models: *Coder*\n", "f.yaml:1:15: invalid YAML: while scanning an alias",
         _ALIAS + 'models: "*Coder*"'),
        ("models: [Qwen/*, !*Coder*]\n", "f.yaml:1:26: invalid YAML: while scanning a tag",
         _TAG + 'models: [Qwen/*, "!*Coder*"]'),
        ("b:\n  - workload:\n      max_tokens: {{ mt }}\n",
         "f.yaml:3:20: mapping keys must be plain strings",
         _TEMPLATE + 'max_tokens: "{{ mt }}" (at $.b[0].workload.max_tokens)'),
        # their siblings: a tag in block style, a bare anchor, @group, an undefined alias
        ("models: !*Coder*\n", "f.yaml:1:9: unsupported YAML tag !*Coder*",
         _TAG + 'models: "!*Coder*" (at $.models)'),
        ("models:\n  - all\n  - !*-FP8\n", "f.yaml:3:5: unsupported YAML tag !*-FP8",
         _TAG + '- "!*-FP8" (at $.models[1])'),
        ("models: &Coder\n", "f.yaml:1:9: YAML anchor with no value",
         _ANCHOR + 'models: "&Coder" (at $.models)'),
        ("models: [all, &Coder]\n", "f.yaml:1:15: YAML anchor with no value",
         _ANCHOR + 'models: [all, "&Coder"] (at $.models[1])'),
        ("models: &Qwen/*\n", "f.yaml:1:14: invalid YAML: while scanning an anchor",
         _ANCHOR + 'models: "&Qwen/*"'),
        ("models: @coder\n", "f.yaml:1:9: invalid YAML: while scanning for the next token",
         _RESERVED + 'models: "@coder"'),
        ("models: *Coder\n", "f.yaml:1:9: invalid YAML: found undefined alias",
         _ALIAS + 'models: "*Coder"'),
        ("models:\n  - *Coder*  # the coders\n", "f.yaml:2:11: invalid YAML",
         _ALIAS + '- "*Coder*"  # the coders'),
        # templates: in a flow mapping, in a list, with statements, mixed with text
        ("w: {max_tokens: {{ mt }}}\n", "f.yaml:1:18: mapping keys must be plain strings",
         _TEMPLATE + 'w: {max_tokens: "{{ mt }}"} (at $.w.max_tokens)'),
        ("m: [1, {{ a }}, 2]\n", "f.yaml:1:9: mapping keys must be plain strings",
         _TEMPLATE + 'm: [1, "{{ a }}", 2] (at $.m[1])'),
        ("t: {% if a %}x{% endif %}\n", "f.yaml:1:5: invalid YAML",
         _TEMPLATE + 't: "{% if a %}x{% endif %}"'),
        ("p: {{ a }} and {{ b }}\n", "f.yaml:1:12: invalid YAML",
         _TEMPLATE + 'p: "{{ a }} and {{ b }}"'),
        # a value holding a double quote is single-quoted
        ('models: !*"x\n', "f.yaml:1:11: invalid YAML", _TAG + "models: '!*\"x'"),
    ],
)
def test_pattern_or_template_slips_keep_their_location_and_say_quote_it(
    text: str, where: str, fix: str
) -> None:
    line = error(text)
    assert line.startswith(where) and line.endswith(fix), line


SLIPS = [
    "models: *Coder*\n", "models: [Qwen/*, !*Coder*]\n", "models: !*Coder*\n",
    "b:\n  - workload:\n      max_tokens: {{ mt }}\n", "models:\n  - all\n  - !*-FP8\n",
    "models: &Coder\n", "models: [all, &Coder]\n", "models: &Qwen/*\n", "models: @coder\n",
    "models: *Coder\n", "models:\n  - *Coder*  # the coders\n", "w: {max_tokens: {{ mt }}}\n",
    "m: [1, {{ a }}, 2]\n", "t: {% if a %}x{% endif %}\n", "p: {{ a }} and {{ b }}\n",
    'models: !*"x\n', "v: !custom [1]\n", "models: !*Coder*, all\n", "x: `cmd`\n",
]


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for child in value.values() for s in _strings(child)]
    if isinstance(value, list):
        return [s for child in value for s in _strings(child)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("text", SLIPS)
def test_the_suggested_fix_loads_as_the_text_that_was_meant(text: str) -> None:
    """The advice, put in place of the line at the error's position, is valid YAML that holds
    the value as it was written."""
    line = error(text)
    fixed = line.split("quote it: ", 1)[1].split(" (at $", 1)[0]
    rows = text.splitlines()
    number = int(line.split(":")[1]) - 1
    original = rows[number]
    rows[number] = original[: len(original) - len(original.lstrip())] + fixed
    quote = min((q for q in "\"'" if q in fixed), key=fixed.index)
    meant = fixed[fixed.index(quote) + 1: fixed.rindex(quote)]
    assert meant in original and meant in _strings(load("\n".join(rows) + "\n"))


@pytest.mark.parametrize(
    "text",
    ["models: all, !*-FP8\n", "models: ~.*Coder.*\n", 'models: "*Coder*"\n',
     "models: ['!*Coder*', '&x']\n", "a: &x 1\nb: *x\n", "t: '{{ a }}'\n"],
)
def test_quoted_or_mid_value_pattern_characters_are_plain_text(text: str) -> None:
    load(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", "f.yaml:3:1: duplicate key 'a' (first defined on line 1) (at $.a)"),
        ("x:\n  a: 1\n  b: 2\n\n  a: 1\n",
         "f.yaml:5:3: duplicate key 'a' (first defined on line 2) (at $.x.a)"),
        ("x: {a: 1, a: 2}\n",
         "f.yaml:1:11: duplicate key 'a' (first defined on line 1) (at $.x.a)"),
        ("l:\n  - name: a\n    models: x\n    name: b\n",
         "f.yaml:4:5: duplicate key 'name' (first defined on line 2) (at $.l[0].name)"),
        # the same key however it is quoted
        ("a: 1\n'a': 2\n", "f.yaml:2:1: duplicate key 'a' (first defined on line 1) (at $.a)"),
        ("1: x\n\"1\": y\n", "f.yaml:2:1: duplicate key '1' (first defined on line 1) (at $.1)"),
        # a duplicate inside a merge source is an error too
        ("b: &b {x: 1, x: 2}\nc:\n  <<: *b\n",
         "f.yaml:1:14: duplicate key 'x' (first defined on line 1) (at $.b.x)"),
    ],
)
def test_duplicate_keys_name_both_lines(text: str, message: str) -> None:
    assert error(text) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("? [a, b]\n: 1\n", "f.yaml:1:3: mapping keys must be plain strings (at $)"),
        ("x: {[a]: 1}\n", "f.yaml:1:5: mapping keys must be plain strings (at $.x)"),
        ("x:\n  ? {a: 1}\n  : 2\n", "f.yaml:2:5: mapping keys must be plain strings (at $.x)"),
    ],
)
def test_non_scalar_keys_are_rejected(text: str, message: str) -> None:
    assert error(text) == message


def test_keys_are_strings() -> None:
    assert load("1: a\ntrue: b\nnull: c\n1.5: d\n") == {"1": "a", "true": "b", "null": "c",
                                                        "1.5": "d"}


def test_anchors_and_aliases_copy_values() -> None:
    data = load("base: &b [1, 2]\ncopy: *b\nm: &m {a: 1}\nn: *m\n")
    assert data == {"base": [1, 2], "copy": [1, 2], "m": {"a": 1}, "n": {"a": 1}}
    data["copy"].append(3)
    assert data["base"] == [1, 2]  # separate objects


MERGE = """\
base: &base
  workload:
    max_tokens: 64
  load: {concurrency: 1}
  retries: 1
extra: &extra
  retries: 2
  tags: [x]
bench:
  <<: [*base, *extra]
  name: a
  load: {rate: 2}
"""


def test_merge_keys_merge_sources_and_own_keys_win() -> None:
    data = load(MERGE)
    assert data["bench"] == {
        "workload": {"max_tokens": 64},
        "load": {"rate": 2},  # own key replaces the merged one (no deep merge)
        "retries": 1,  # earlier merge sources win over later ones
        "tags": ["x"],
        "name": "a",
    }
    assert "<<" not in data["bench"]


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("bench", "load"), True, (12, 3)),  # the own key, not the merged one
        (("bench", "load"), False, (12, 9)),
        (("bench", "load", "rate"), False, (12, 16)),
        (("bench", "name"), True, (11, 3)),
        (("bench", "retries"), False, (5, 12)),  # merged values point into the anchor
        (("bench", "workload", "max_tokens"), False, (3, 17)),
        (("bench", "tags", 0), False, (8, 10)),
    ],
)
def test_merged_and_own_values_have_positions(
    path: tuple[Any, ...], key: bool, expected: tuple[int, int]
) -> None:
    where = load_text(MERGE, "f.yaml").where(path, key=key)
    assert (where.line, where.col) == expected


def test_single_merge_source_and_nested_merges() -> None:
    text = "a: &a {x: 1}\nb: &b\n  <<: *a\n  y: 2\nc:\n  <<: *b\n  z: 3\n"
    assert load(text)["c"] == {"x": 1, "y": 2, "z": 3}


def test_quoted_merge_key_is_a_plain_key() -> None:
    assert load("a:\n  '<<': 1\n") == {"a": {"<<": 1}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a 1\nb:\n  <<: *a\n",
         "f.yaml:1:4: a merge key (<<) needs a mapping or a list of mappings (at $.b)"),
        ("a: &a [1]\nb:\n  <<: [*a]\n",
         "f.yaml:1:4: a merge key (<<) needs a mapping or a list of mappings (at $.b)"),
        ("a: &a\n  x: 1\n  <<: *a\n",
         "f.yaml:1:4: recursive YAML alias in a merge key (<<) (at $.a)"),
    ],
)
def test_bad_merges(text: str, message: str) -> None:
    assert error(text) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x [1, *x]\n", "f.yaml:1:4: recursive YAML alias (at $.a[1])"),
        ("a: &x {b: *x}\n", "f.yaml:1:4: recursive YAML alias (at $.a.b)"),
        ("a: &x {b: {<<: *x}}\n", "f.yaml:1:11: recursive YAML alias (at $.a.b.b)"),
    ],
)
def test_recursive_aliases_are_rejected(text: str, message: str) -> None:
    assert error(text) == message


def test_alias_bombs_are_rejected_quickly() -> None:
    names = "abcdefghij"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{n}: &{n} [{', '.join(['*' + p] * 10)}]" for p, n in itertools.pairwise(names)]
    start = time.process_time()  # CPU time: other processes on a busy machine do not count
    message = error("\n".join(lines) + "\n")
    assert "YAML aliases expand to more than 100000 values" in message
    assert time.process_time() - start < 2


def test_many_small_aliases_are_fine() -> None:
    text = "a: &a {x: 1}\nl:\n" + "".join("  - *a\n" for _ in range(1000))
    assert len(load(text)["l"]) == 1000


def test_deep_nesting_is_rejected() -> None:
    assert "YAML nested more than 64 levels deep" in error("a: " + "[" * 80 + "]" * 80 + "\n")
    assert load("a: " + "[" * 60 + "]" * 60 + "\n")["a"] is not None


@pytest.mark.parametrize(
    ("text", "prefix", "words"),
    [
        ("a: [1, 2\n", "f.yaml:2:1: invalid YAML", "expected ',' or ']'"),
        ("a: 1\n b: 2\n", "f.yaml:2:3: invalid YAML", "mapping values are not allowed"),
        ("a:\n\t- 1\n", "f.yaml:2:1: invalid YAML", "found character that cannot start any token"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2:1: invalid YAML", "expected a single document"),
        ("a: *nope\n", "f.yaml:1:4: invalid YAML", "found undefined alias"),
        ("a: 'open\n", "f.yaml:2:1: invalid YAML", "found unexpected end of stream"),
    ],
)
def test_syntax_errors_are_located(text: str, prefix: str, words: str) -> None:
    line = error(text)
    assert line.startswith(prefix + ": ")
    assert words in line


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "~\n"])
def test_empty_document_is_none(text: str) -> None:
    assert load_text(text, "f.yaml").data is None


def test_load_file_reads_utf8_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes("\ufeffa: 1\r\nb:\r\n  c: ünï\r\n".encode())
    doc = load_file(str(path))
    assert doc.data == {"a": 1, "b": {"c": "ünï"}}
    assert doc.file == str(path)
    assert (doc.where(("b", "c")).line, doc.where(("b", "c")).col) == (3, 6)


def test_load_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(InputError) as info:
        load_file(str(path))
    assert info.value.lines() == [f"{path}: file not found"]


def test_load_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError) as info:
        load_file(str(path))
    assert info.value.lines()[0].startswith(f"{path}: cannot read: ")


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.mkdir(), "a YAML file must be a file, not a folder; give a file in it"),
    (os.mkfifo, "a YAML file must be a regular file, not a FIFO (named pipe); save what it "
                "holds to a file and give that file"),
    (lambda p: p.symlink_to("/dev/zero"), "a YAML file must be a regular file, not a "
                                          "character device; save what"),
    (lambda p: p.symlink_to("/dev/urandom"), "a YAML file must be a regular file, not a "
                                             "character device; save what"),
    (lambda p: os.truncate(p.write_bytes(b"") or p, MAX_DOCUMENT_BYTES + 1),  # sparse
     "a YAML file is larger than the 64 MiB runner reads; give a smaller file"),
], ids=["folder", "fifo", "dev-zero", "dev-urandom", "too-large"])
def test_load_file_refuses_what_is_no_regular_file_of_a_bounded_size(
    tmp_path: Path, make: Any, message: str
) -> None:
    """A FIFO or /dev/urandom hung here, /dev/zero exhausted memory (exit 70)."""
    path = tmp_path / "x.yaml"
    make(path)
    with pytest.raises(InputError) as info:
        load_file(str(path))
    assert info.value.lines()[0].startswith(f"{path}: {message}")


def test_document_where_without_positions_defaults_to_first_line() -> None:
    assert Document("x.yaml", {"a": 1}).where(("a",)) == Location("x.yaml", 1, 1, "$.a")


@pytest.mark.parametrize("value", [".inf", "-.Inf", "+.INF", ".nan", ".NaN", "1e999",
                                   "!!float .nan"])
def test_non_finite_numbers_are_refused_where_they_stand(value: str) -> None:
    with pytest.raises(InputError) as caught:
        load_text(f"load:\n  rate: {value}\n", "p.yaml")
    [line] = caught.value.lines()
    assert line.startswith("p.yaml:2:9: ") and "is not a finite number" in line


def test_finite_numbers_and_text_that_looks_special_still_load() -> None:
    doc = load_text("a: 1.5\nb: 1e300\nc: 'inf'\nd: .info\n", "p.yaml")
    assert doc.data == {"a": 1.5, "b": 1e300, "c": "inf", "d": ".info"}
