"""What one event says (text, finish reason, usage, error), and error messages of any shape."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

import pytest
from sse_streams import RECORDED, chunk

from runner.load.chunks import FINISHED, PLAIN, PLAIN_REASONING, Event, error_message, read_event


def nested(inner: Any, key: str, depth: int) -> Any:
    for _ in range(depth):
        inner = {key: inner}
    return inner


def delta(**fields: Any) -> dict[str, Any]:
    return chunk(fields)


TEXT = [
    ("content", delta(content="a")),
    ("reasoning_content", delta(reasoning_content="a")),
    ("reasoning", delta(reasoning="a")),
    ("refusal", delta(refusal="a")),
    ("content parts", delta(content=[{"type": "image_url"}, {"type": "text", "text": "a"}])),
    ("output_text part", delta(content=[{"type": "output_text", "text": "a"}])),
    ("reasoning_details text", delta(reasoning_details=[{"type": "reasoning.text", "text": "a"}])),
    ("reasoning_details summary",
     delta(reasoning_details=[{"type": "reasoning.summary", "summary": "a"}])),
    ("summary entry", delta(reasoning_details=[{"type": "summary", "summary": "a"}])),
    ("tool call arguments",
     delta(tool_calls=[{"index": 0, "function": {"name": "f", "arguments": "{"}}])),
    ("legacy function_call arguments", delta(function_call={"arguments": "{"})),
    ("completions text", {"choices": [{"index": 0, "text": "a"}]}),
    ("non-streamed message", {"choices": [{"message": {"content": "a"}}]}),
    ("second choice", {"choices": [{"delta": {}}, {"delta": {"content": "a"}}]}),
]
NO_TEXT = [
    ("role only", delta(role="assistant", content="")),
    ("null content", delta(content=None, reasoning_content=None, tool_calls=None)),
    ("empty parts", delta(content=[{"type": "text", "text": ""}, {"type": "image_url"}])),
    ("encrypted reasoning", delta(reasoning_details=[{"type": "reasoning.encrypted",
                                                      "data": "x"}])),
    ("a tool call's name", delta(tool_calls=[{"function": {"name": "f", "arguments": ""}}])),
    ("text nested elsewhere", {**delta(role="assistant"), "meta": {"text": "x", "content": "y"}}),
    ("logprobs", {"choices": [{"delta": {}, "logprobs": {"content": [{"token": "x"}]}}]}),
    ("parts that are strings", delta(content=["x"])),
    ("a delta that is not an object", {"choices": [{"delta": "x", "message": {"content": "y"}}]}),
    ("usage only", {"choices": [], "usage": {"completion_tokens": 2}}),
]


@pytest.mark.parametrize("answer", [c[1] for c in TEXT], ids=[c[0] for c in TEXT])
def test_text_that_counts(answer: Any) -> None:
    assert read_event(answer).text


@pytest.mark.parametrize("answer", [c[1] for c in NO_TEXT], ids=[c[0] for c in NO_TEXT])
def test_what_is_not_text(answer: Any) -> None:
    assert not read_event(answer).text


@pytest.mark.parametrize("answer", [c[1] for c in TEXT + NO_TEXT],
                         ids=[c[0] for c in TEXT + NO_TEXT])
def test_a_chunk_in_vllms_sense_is_any_event_with_choices(answer: Any) -> None:
    """vLLM's client times every event whose choices list is not empty, text or not."""
    assert read_event(answer).choices == bool(answer["choices"])


@pytest.mark.parametrize(
    ("reasons", "finish", "unfinished"),
    [
        (["stop"], "stop", False),
        (["length"], "length", False),
        (["tool_calls"], "tool_calls", False),
        (["function_call"], "function_call", False),
        (["content_filter"], "content_filter", True),
        (["abort"], "abort", True),
        (["error"], "error", True),
        (["cancelled"], "cancelled", True),
        (["repetition"], "repetition", True),
        (["STOP"], "STOP", True),
        ([" stop"], "stop", True),  # shown on one line, still not "stop"
        (["stop", "abort"], "abort", True),
        (["abort", "stop"], "abort", True),
        (["stop", "length"], "length", False),
        ([None, ""], None, False),
    ],
)
def test_finish_reasons(reasons: list[Any], finish: str | None, unfinished: bool) -> None:
    answer = {"choices": [{"index": i, "delta": {}, "finish_reason": r}
                          for i, r in enumerate(reasons)]}
    assert (read_event(answer).finish, read_event(answer).unfinished) == (finish, unfinished)
    assert {"stop", "length", "tool_calls", "function_call"} == FINISHED


@pytest.mark.parametrize(
    ("answer", "event"),
    [
        ({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}},
         Event(prompt_tokens=5, completion_tokens=7)),
        ({"usage": None, "error": None, "choices": None}, Event()),
        ({"usage": {"completion_tokens": "7", "prompt_tokens": 1.0}}, Event()),
        ({"usage": [1]}, Event(invalid="usage is not an object")),
        ({"usage": {"completion_tokens": -1}},
         Event(invalid="a usage token count is out of range: -1")),
        ({"error": {"message": "boom"}, "choices": []}, Event(error="boom")),
        ({"error": "plain"}, Event(error="plain")),
        ([1], Event(invalid="an event is not a JSON object")),
        ({"choices": "x"}, Event(invalid="choices is not a list")),
        ({"choices": [1]}, Event(invalid="a choice is not an object")),
        ({"choices": [{"delta": {"content": "a"}, "finish_reason": 1}]},
         Event(text=True, choices=True, invalid="a finish_reason is not a string",
               answer=True)),
        (chunk({"content": "x"}), PLAIN),
    ],
)
def test_read_event(answer: Any, event: Event) -> None:
    assert read_event(answer) == event


REASONING = {"reasoning_content", "reasoning", "reasoning_details text",
             "reasoning_details summary", "summary entry"}


@pytest.mark.parametrize("answer", [c[1] for c in TEXT], ids=[c[0] for c in TEXT])
def test_answer_text_is_told_from_reasoning(answer: Any) -> None:
    """TTFO counts answer text only (AIPerf's time to first output token): every reasoning
    shape is text for TTFT but no answer; everything else is an answer."""
    name = next(n for n, a in TEXT if a is answer)
    said = read_event(answer)
    assert (said.text, said.answer) == (True, name not in REASONING)


@pytest.mark.parametrize(
    ("fields", "answer"),
    [
        ({"reasoning_content": "a", "content": "b"}, True),  # the chunk where the answer starts
        ({"reasoning_content": "a", "content": ""}, False),
        ({"reasoning": "a", "tool_calls": [{"function": {"arguments": "{"}}]}, True),
        ({"reasoning_details": [{"type": "reasoning.text", "text": "a"}], "refusal": ""}, False),
    ],
)
def test_reasoning_beside_answer_text_is_an_answer(fields: dict[str, Any], answer: bool) -> None:
    said = read_event(delta(**fields))
    assert (said.text, said.answer) == (True, answer)


def test_a_plain_reasoning_chunk_is_plain_reasoning() -> None:
    assert read_event(delta(reasoning_content="x")) == PLAIN_REASONING
    assert read_event({"choices": [{"message": {"reasoning_content": "a", "content": "b"}}]}
                      ).answer  # a non-streamed answer that reasoned first


@pytest.mark.parametrize(
    ("usage", "event"),
    [
        ({"completion_tokens": 7, "completion_tokens_details": {"reasoning_tokens": 5}},
         Event(completion_tokens=7, reasoning_tokens=5)),
        ({"completion_tokens": 7, "completion_tokens_details": {"reasoning_tokens": 0}},
         Event(completion_tokens=7, reasoning_tokens=0)),
        ({"completion_tokens": 7, "completion_tokens_details": None}, Event(completion_tokens=7)),
        ({"completion_tokens_details": {"reasoning_tokens": "5"}}, Event()),
        ({"completion_tokens_details": [5]}, Event()),
        ({"completion_tokens_details": {"reasoning_tokens": -2}},
         Event(invalid="a usage token count is out of range: -2")),
    ],
    ids=["counted", "zero", "no details", "a string", "not an object", "negative"],
)
def test_reasoning_tokens_come_from_usage_only(usage: dict[str, Any], event: Event) -> None:
    assert read_event({"choices": [], "usage": usage}) == event


def string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every non-empty string that is a value (not a key) inside `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from string_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_paths(item, (*path, index))
    elif isinstance(value, str) and value:
        yield path


def replaced(value: Any, path: tuple[Any, ...], new: str) -> Any:
    value = copy.deepcopy(value)
    holder = value
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = new
    return value


OTHER_STRINGS = ["x", '"', "\\", "stop", "abort", "content", "[DONE]", "é", "\u2028", " "]


def test_a_plain_chunk_stays_plain_whatever_its_non_empty_strings_say() -> None:
    """The lemma the fast path rests on (runner.load.plain): in a plain chunk, any
    non-empty string value replaced by any other non-empty string leaves the event plain."""
    rng = random.Random(7)
    plain = [e for events in RECORDED.values() for e in events
             if e != "[DONE]" and read_event(e) in (PLAIN, PLAIN_REASONING)]
    assert len(plain) > 30
    assert any(read_event(e) == PLAIN_REASONING for e in plain)
    tried = 0
    for answer in plain:
        said = read_event(answer)
        for path in string_paths(answer):
            for new in rng.sample(OTHER_STRINGS, 4):
                assert read_event(replaced(answer, path, new)) == said, (answer, path, new)
                tried += 1
    assert tried > 500


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"error": {"message": "No connected db.", "type": "x"}}, "No connected db."),
        ({"detail": "Not Found"}, "Not Found"),
        ("plain", "plain"),
        ({"code": 1}, '{"code": 1}'),
        ({"message": "x " * 200}, "x " * 99 + "x…"),
        ({"message": "x" * 10_000_000}, "x" * 199 + "…"),
        (nested([], "detail", 7), '{"detail": []}'),
        (nested("found", "error", 8), "found"),
        (nested("too deep", "error", 9), '{"error": "too deep"}'),
        (nested([1], "x", 100_000), "a dict nested too deeply to show"),
    ],
    ids=["litellm", "fastapi", "str", "other", "long", "huge", "detail", "8 deep", "9 deep",
         "too deep to show"],
)
def test_error_message(error: Any, message: str) -> None:
    assert error_message(error) == message
