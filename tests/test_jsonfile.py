"""JSON with positions: every value and key located, as yamlfile does for YAML, whatever the
JSON writer did (surrogate escapes, long keys, any spacing)."""

from __future__ import annotations

import json

import pytest

from runner.errors import InputError
from runner.jsonfile import load_json_text


def test_values_and_keys_are_located() -> None:
    doc = load_json_text('{\n "a": [1, {"b": null}],\n\t"c" :  -1.5e3 }', "f.json")
    assert doc.data == {"a": [1, {"b": None}], "c": -1500.0}
    assert doc.values[("a",)] == (2, 7) and doc.values[("a", 1, "b")] == (2, 17)
    assert doc.keys[("c",)] == (3, 2) and doc.values[("c",)] == (3, 9)
    assert doc.where(("a", 1, "b")).prefix() == "f.json:2:17"


@pytest.mark.parametrize("data", [
    {"emoji": "💥", "nul": "\x00", "line": "a\u2028b"},
    {"k" * 3000: 1},  # PyYAML refuses keys longer than 1024 characters
    [[], {}, "", 0, -0.0, 1e300, True, False, None, 10**40],
])
@pytest.mark.parametrize("indent", [None, 1, "\t"])
def test_whatever_json_dumps_writes_reads_back_equal(data: object, indent: int | None) -> None:
    text = json.dumps(data, indent=indent)
    assert load_json_text(text, "f.json").data == data


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": 1,}', "f.json:1:9: invalid JSON: Expecting property name enclosed in double quotes"),
    ('{"a": 1,\n "a": 2}', "f.json:2:2: duplicate key 'a' (first defined on line 1) (at $.a)"),
    ('{"a": [NaN]}', "f.json:1:8: NaN is not a finite number"),
    ('{"a": -Infinity}', "f.json:1:7: -Infinity is not a finite number"),
    ('{"a": 1e999}', "f.json:1:7: 1e999 is not a finite number"),
    ("[" * 66 + "]" * 66, "f.json:1:66: JSON nested more than 64 levels deep"),
    ("[" * 100_000, "f.json: JSON nested more than 64 levels deep"),
    ("1" * 5000, "f.json: invalid JSON: Exceeds the limit"),
    ('{"model": "z\\ud800"}', "f.json:1:11: the string holds \\ud800, half of a surrogate pair"),
    ('{"a": ["\\udfffx"]}', "f.json:1:8: the string holds \\udfff, half of a surrogate pair"),
    ('{"k\\ud800": 1}', "f.json:1:2: the string holds \\ud800, half of a surrogate pair"),
])
def test_bad_json_is_one_located_error(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_json_text(text, "f.json")
    assert caught.value.lines()[0].startswith(message)


def test_a_surrogate_pair_is_one_character() -> None:
    """What json.dumps writes for a character outside the BMP reads back as that character."""
    assert load_json_text('{"m": "a\\ud83d\\ude00"}', "f.json").data == {"m": "a\U0001f600"}
