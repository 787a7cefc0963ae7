"""Table tests for the Responses API reader: streamed events (OpenAI's shapes) fed whole and in
pieces, the terminal events and how each ends, and the non-streamed response object."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runner.load.responses import ResponsesState, read_response, read_response_event


def event(kind: str, named: bool = True, **fields: Any) -> bytes:
    data = json.dumps({"type": kind, **fields}, separators=(",", ":")).encode()
    return (b"event: " + kind.encode() + b"\n" if named else b"") + b"data: " + data + b"\n\n"


def delta(text: str, kind: str = "response.output_text.delta") -> bytes:
    return event(kind, item_id="msg_1", output_index=0, content_index=0, delta=text)


def response(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": status, "output": [],
            "error": None, "incomplete_details": None, **fields}


USAGE = {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
OPENING = (event("response.created", response=response("in_progress"))
           + event("response.output_item.added", output_index=0,
                   item={"type": "message", "id": "msg_1", "content": []}))
TEXT = delta("Hel") + delta("lo") + delta("!")
COMPLETED = event("response.completed", response=response("completed", usage=USAGE))


def read(data: bytes, pieces: int = 1) -> ResponsesState:
    state = ResponsesState()
    size = max(1, len(data) // pieces)
    for n, start in enumerate(range(0, len(data), size)):
        if state.feed(data[start:start + size], n):
            break
    state.close(10**9)
    return state


@pytest.mark.parametrize("pieces", [1, 7, 400])
def test_a_completed_stream_is_ok_with_its_usage(pieces: int) -> None:
    state = read(OPENING + TEXT + event("response.output_text.done", text="Hello!")
                 + COMPLETED, pieces)
    assert state.outcome() == (None, None)
    assert len(state.chunk_ns) == 3  # the deltas: not created, added, done or completed
    assert (state.prompt_tokens, state.completion_tokens) == (12, 3)
    assert state.finish_reason == "stop" and state.done


def test_reasoning_deltas_are_chunks_before_the_answer() -> None:
    state = read(OPENING + delta("think", "response.reasoning_text.delta")
                 + delta("sum", "response.reasoning_summary_text.delta") + TEXT + COMPLETED)
    assert len(state.chunk_ns) == 5 and state.outcome() == (None, None)


def test_events_without_an_event_line_read_the_same() -> None:
    body = (event("response.output_text.delta", named=False, delta="x")
            + event("response.completed", named=False, response=response("completed")))
    state = read(body)
    assert len(state.chunk_ns) == 1 and state.outcome() == (None, None)


@pytest.mark.parametrize(("terminal", "expected"), [
    (event("response.incomplete", response=response(
        "incomplete", incomplete_details={"reason": "max_output_tokens"}, usage=USAGE)),
     (None, None)),
    (event("response.incomplete", response=response(
        "incomplete", incomplete_details={"reason": "content_filter"})),
     ("content_filter", "the server ended the answer early (finish_reason content_filter)")),
    (event("response.incomplete", response=response("incomplete")),
     ("aborted", "the server ended the answer early (finish_reason incomplete)")),
    (event("response.failed", response=response(
        "failed", error={"code": "server_error", "message": "the engine died"})),
     ("stream_error", "response.failed: the engine died")),
    (event("error", code="rate_limit_exceeded", message="slow down", param=None),
     ("stream_error", "slow down")),
    (b"event: error\ndata: not json\n\n", ("stream_error", "not json")),
    (b"", ("truncated", "the stream ended before a finish reason")),
    (b"data: [DONE]\n\n", ("truncated", "the stream ended ([DONE]) without a finish reason")),
    (event("response.in_progress", response=response("in_progress")),
     ("truncated", "the stream ended before a finish reason")),
])
def test_how_a_stream_ends(terminal: bytes, expected: tuple[str | None, str | None]) -> None:
    assert read(OPENING + TEXT + terminal).outcome() == expected


def test_a_length_cut_is_finish_reason_length() -> None:
    cut = event("response.incomplete", response=response(
        "incomplete", incomplete_details={"reason": "max_output_tokens"}))
    assert read(TEXT + cut).finish_reason == "length"


def test_the_terminal_event_ends_the_reading() -> None:
    state = ResponsesState()
    assert state.feed(TEXT + COMPLETED, 1) is True


@pytest.mark.parametrize(("body", "expected"), [
    (b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n',
     "an event has no type: not a Responses API stream"),
    (b"data: [1]\n\n", "an event is not a JSON object"),
    (event("response.completed", response="done"),
     "the answer is not a Responses API response object"),
])
def test_what_is_not_a_responses_stream_is_invalid(body: bytes, expected: str) -> None:
    assert read(body).outcome() == ("invalid_response", expected)


def test_a_usage_out_of_range_is_invalid() -> None:
    bad = event("response.completed", response=response(
        "completed", usage={"input_tokens": -1, "output_tokens": 2}))
    assert read(TEXT + bad).outcome()[0] == "invalid_response"


def whole(answer: Any) -> ResponsesState:
    state = ResponsesState()
    state.body(json.dumps(answer).encode(), 1)
    return state


def test_a_non_streamed_response_object() -> None:
    message = {"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}
    state = whole(response("completed", output=[message], usage=USAGE))
    assert state.outcome() == (None, None) and state.whole
    assert (state.prompt_tokens, state.completion_tokens, state.finish_reason) == (12, 3, "stop")
    assert len(state.chunk_ns) == 1  # one body with text: one content chunk, as chat's


@pytest.mark.parametrize(("answer", "kind"), [
    (response("failed", error={"message": "boom"}), "stream_error"),
    (response("incomplete", incomplete_details={"reason": "content_filter"}), "content_filter"),
    (response("queued"), "aborted"),
    ({"choices": []}, "truncated"),  # a chat answer from the wrong endpoint: no status
    ([], "invalid_response"),
])
def test_non_streamed_failures(answer: Any, kind: str) -> None:
    assert whole(answer).outcome()[0] == kind


def test_read_response_event_ignores_events_it_has_no_use_for() -> None:
    said = read_response_event({"type": "response.output_item.done", "item": {}})
    assert not said.text and said.finish is None and said.invalid is None
    assert read_response(response("completed"), whole=False).text is False


def test_the_usages_reasoning_tokens_are_kept_streamed_and_not() -> None:
    # The Responses usage says output_tokens_details.reasoning_tokens (OpenAI, vLLM): they were
    # dropped when the usage was read as chat's, so a reasoning model's split was unknown.
    usage = {**USAGE, "output_tokens_details": {"reasoning_tokens": 2}}
    streamed = read(OPENING + delta("think", "response.reasoning_text.delta") + TEXT
                    + event("response.completed", response=response("completed", usage=usage)))
    assert (streamed.completion_tokens, streamed.reasoning_tokens) == (3, 2)
    assert whole(response("completed", output=[], usage=usage)).reasoning_tokens == 2
    assert read(OPENING + TEXT + COMPLETED).reasoning_tokens is None  # none said: unknown
