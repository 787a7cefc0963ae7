"""Reading traces to replay (issue 14 §5): runner's JSONL and the Mooncake format, and every bad
line refused with its file:line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import InputError
from runner.load.trace import load_trace

RUNNER = """\
{"timestamp_ms": 1700000000000, "input_tokens": 20, "output_tokens": 5}

{"timestamp_ms": 1700000000100, "prompt": "hello there", "extra": "kept out"}
{"timestamp_ms": 1700000000100, "messages": [{"role": "user", "content": "hi"}]}
"""
MOONCAKE = """\
{"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47, 48, 49, 50, \
51, 52, 53, 54, 55, 56, 57, 2353, 2354]}
{"timestamp": 30535, "input_length": 6472, "output_length": 26, "hash_ids": [46, 47, 48, 49, 50, \
51, 52, 53, 54, 55, 56, 57, 2366]}
"""


def _trace(tmp_path: Path, text: str, fmt: str | None = None, endpoint: str = "chat") -> object:
    (tmp_path / "t.jsonl").write_text(text)
    params = {"trace": "t.jsonl", "endpoint": endpoint} | ({"trace_format": fmt} if fmt else {})
    return load_trace(params, str(tmp_path))


def test_runner_format_offsets_count_from_the_first_line(tmp_path: Path) -> None:
    trace = _trace(tmp_path, RUNNER)
    assert [r.offset_ms for r in trace.requests] == [0.0, 100.0, 100.0]
    assert [r.line for r in trace.requests] == [1, 3, 4]
    first, text, chat = trace.requests
    assert (first.prompt, first.input_tokens, first.output_tokens) == (None, 20, 5)
    assert text.prompt == {"messages": [{"role": "user", "content": "hello there"}]}
    assert chat.prompt == {"messages": [{"role": "user", "content": "hi"}]}
    assert trace.duration_s == 0.1 and trace.format == "runner"
    assert trace.token_totals() == {"input_tokens": None, "output_tokens": None}


def test_mooncake_format(tmp_path: Path) -> None:
    trace = _trace(tmp_path, MOONCAKE, "mooncake")
    assert [r.offset_ms for r in trace.requests] == [0.0, 3053.0]
    assert trace.requests[1].hash_ids[:12] == trace.requests[0].hash_ids[:12]
    assert trace.token_totals() == {"input_tokens": 6955 + 6472, "output_tokens": 78}


def _line(text: str) -> str:
    return '{"timestamp_ms": 0, "input_tokens": 4}\n' + text + "\n"


@pytest.mark.parametrize(("fmt", "text", "where", "says"), [
    ("runner", "", "t.jsonl", "the trace has no requests"),
    ("runner", "\n  \n", "t.jsonl", "the trace has no requests"),
    ("runner", _line("{nope"), "t.jsonl:2", "not JSON"),
    ("runner", _line("[1, 2]"), "t.jsonl:2", "expected an object, got [1, 2]"),
    ("runner", _line('{"input_tokens": 4}'), "t.jsonl:2", "timestamp_ms: expected"),
    ("runner", _line('{"timestamp_ms": "5", "input_tokens": 4}'), "t.jsonl:2", 'got "5"'),
    ("runner", _line('{"timestamp_ms": NaN, "input_tokens": 4}'), "t.jsonl:2", "got NaN"),
    ("runner", _line('{"timestamp_ms": true, "input_tokens": 4}'), "t.jsonl:2", "got true"),
    ("runner", '{"timestamp_ms": 500, "input_tokens": 4}\n{"timestamp_ms": 400, "input_tokens": 4}',
     "t.jsonl:2", "timestamp_ms 400 is before line 1's 500"),
    ("runner", _line('{"timestamp_ms": 1, "input_tokens": -3}'), "t.jsonl:2",
     "input_tokens: expected a whole number of tokens from 1"),
    ("runner", _line('{"timestamp_ms": 1, "input_tokens": 2.5}'), "t.jsonl:2", "got 2.5"),
    ("runner", _line('{"timestamp_ms": 1, "input_tokens": 4, "output_tokens": 0}'), "t.jsonl:2",
     "output_tokens: expected a whole number"),
    ("runner", _line('{"timestamp_ms": 1, "input_tokens": 99999999999}'), "t.jsonl:2",
     "to 10,000,000"),
    ("runner", _line('{"timestamp_ms": 1}'), "t.jsonl:2", "got none"),
    ("runner", _line('{"timestamp_ms": 1, "prompt": "a", "input_tokens": 3}'), "t.jsonl:2",
     "got prompt and input_tokens"),
    ("runner", _line('{"timestamp_ms": 1, "prompt": ""}'), "t.jsonl:2", '"prompt"'),
    ("runner", _line('{"timestamp_ms": 1, "messages": "hi"}'), "t.jsonl:2",
     '"messages" must be a non-empty list'),
    ("runner", _line('{"timestamp_ms": 1, "prompt": "\\ud800"}'), "t.jsonl:2", "surrogate"),
    ("mooncake", '{"timestamp": 0, "output_length": 3, "hash_ids": []}', "t.jsonl:1",
     "input_length: missing"),
    ("mooncake", '{"timestamp": 0, "input_length": 3, "hash_ids": []}', "t.jsonl:1",
     "output_length: missing"),
    ("mooncake", '{"timestamp": 0, "input_length": -1, "output_length": 3}', "t.jsonl:1",
     "input_length: expected a whole number"),
    ("mooncake", '{"timestamp": 0, "input_length": 3, "output_length": 3, "hash_ids": [-1]}',
     "t.jsonl:1", "hash_ids: expected a list of whole numbers"),
    ("mooncake", '{"timestamp": 0, "input_length": 3, "output_length": 3, "hash_ids": 7}',
     "t.jsonl:1", "hash_ids: expected a list"),
    ("mooncake", '{"timestamp": 0, "input_length": 600, "output_length": 3, "hash_ids": [1,2,3]}',
     "t.jsonl:1", "hash_ids: 3 blocks of 512 tokens, more than input_length 600 fills (2)"),
    ("mooncake", '{"timestamp_ms": 0, "input_length": 3, "output_length": 3}', "t.jsonl:1",
     "timestamp: expected"),
])
def test_a_bad_trace_is_refused_at_its_line_and_field(
        tmp_path: Path, fmt: str, text: str, where: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        _trace(tmp_path, text, fmt)
    [line] = caught.value.lines()
    assert line.startswith(str(tmp_path / where) + ":") or line.startswith(
        str(tmp_path / where) + " "), line
    assert says in line and "\n" not in line


def test_messages_need_the_chat_endpoint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match='"messages" needs endpoint chat'):
        _trace(tmp_path, RUNNER, endpoint="completions")


def test_a_missing_trace_says_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_trace({"trace": "nope.jsonl"}, str(tmp_path))
    assert caught.value.lines() == [f"{tmp_path / 'nope.jsonl'}: cannot read the trace: No such "
                                    "file or directory; workload.trace is a JSONL file, relative "
                                    "to the plan's folder"]


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    assert len(_trace(tmp_path, RUNNER).requests) == 3
    assert len(_trace(tmp_path, RUNNER + '{"timestamp_ms": 1700000000200, "input_tokens": 1}\n'
                      ).requests) == 4


def test_bytes_that_are_not_utf8_are_refused_at_their_line(tmp_path: Path) -> None:
    # Seen: "cannot read the trace: 'utf-8' codec can't decode byte 0xff in position 70",
    # which leaves the user to count bytes in a file of a million lines.
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"timestamp_ms": 1, "input_tokens": 3}\n{"timestamp_ms": 2, '
                     b'"prompt": "caf\xe9"}\n')
    with pytest.raises(InputError) as caught:
        load_trace({"trace": "t.jsonl"}, str(tmp_path))
    assert caught.value.lines() == [f"{path}:2: not UTF-8 text (byte 0xe9 at column 35); "
                                    "save the trace as UTF-8"]
    assert caught.value.exit_code == 2
