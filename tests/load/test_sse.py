"""Table tests for the SSE parser: recorded streams of real servers, fed whole and in pieces;
how each answer ends (finish reasons, [DONE], errors, limits). The OpenAI SDK's framing rules
are in test_sse_framing.py, the fast path's proof in test_sse_fastpath.py."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from runner.load import sse
from runner.load.sse import StreamState


def event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def chat(content: str | None = None, *, finish: str | None = None, **delta: Any) -> bytes:
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return event({"id": "c1", "object": "chat.completion.chunk", "model": "m",
                  "choices": [choice]})


DONE = b"data: [DONE]\n\n"


def nested(inner: Any, key: str, depth: int) -> Any:
    """`inner` inside `depth` levels of {key: ...}."""
    for _ in range(depth):
        inner = {key: inner}
    return inner

USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}

# vLLM 0.x with stream_options.include_usage: role-only first chunk, usage-only last chunk.
VLLM = (
    chat("", role="assistant")
    + chat("Hello") + chat(" there") + chat("!")
    + chat(finish="stop")
    + event({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [],
             "usage": USAGE})
    + DONE
)

# Recorded from LiteLLM 1.x (mock_response): the first chunk carries the role AND text, the last
# carries usage beside an empty choice.
LITELLM = (
    b'data: {"id":"chatcmpl-247b","object":"chat.completion.chunk","created":1795566568,'
    b'"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}\n\n'
    + b"".join(
        b'data: {"id":"chatcmpl-247b","object":"chat.completion.chunk","created":1795566568,'
        b'"model":"m","choices":[{"index":0,"delta":{"content":"' + text + b'"}}]}\n\n'
        for text in (b"lo ", b"the", b"re,", b" fr", b"ien", b"d")
    )
    + b'data: {"id":"chatcmpl-247b","object":"chat.completion.chunk","created":1795566568,'
    b'"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"chatcmpl-247b","created":1795566568,"model":"m","object":'
    b'"chat.completion.chunk","choices":[{"index":0,"delta":{}}],"usage":{"completion_tokens":4,'
    b'"prompt_tokens":8,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":0,'
    b'"text_tokens":4}}}\n\n'
    + DONE
)

# Recorded from LiteLLM 1.x, /v1/completions.
LITELLM_COMPLETIONS = (
    b"".join(
        b'data: {"id":"cmpl-bf1b","object":"text_completion","created":1795566568,"model":"m",'
        b'"choices":[{"index":0,"text":"' + text + b'"}]}\n\n'
        for text in (b"Hel", b"lo ", b"the", b"re,", b" fr", b"ien", b"d")
    )
    + b'data: {"id":"cmpl-bf1b","object":"text_completion","created":1795566568,"model":"m",'
    b'"choices":[{"finish_reason":"stop","index":0}]}\n\n'
    b'data: {"id":"cmpl-bf1b","object":"text_completion","created":1795566568,"model":"m",'
    b'"choices":[{"index":0}],"usage":{"completion_tokens":4,"prompt_tokens":8,'
    b'"total_tokens":12}}\n\n'
    + DONE
)

# OpenAI style with include_usage: `"usage":null` on every chunk, spaces after separators.
SPACED = b"".join(
    b"data: " + json.dumps(obj).encode() + b"\n\n"
    for obj in (
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}], "usage": None},
        {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}],
         "usage": None},
        {"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "length"}],
         "usage": None},
        {"choices": [], "usage": USAGE},
    )
) + DONE


def summary(state: StreamState) -> tuple[Any, ...]:
    return (len(state.chunk_ns), state.finish_reason, state.prompt_tokens,
            state.completion_tokens, state.outcome())


OK = (None, None)
TRUNCATED = ("truncated", "the stream ended before a finish reason")
NO_FINISH = ("truncated", "the stream ended ([DONE]) without a finish reason")
ABORTED = ("aborted", "the server ended the answer early (finish_reason abort)")

CASES = [
    ("vllm role-only first chunk and usage-only chunk", VLLM, (3, "stop", 12, 3, OK)),
    ("litellm role with text, usage beside choices", LITELLM, (7, "stop", 8, 4, OK)),
    ("litellm completions text", LITELLM_COMPLETIONS, (7, "stop", 8, 4, OK)),
    ("openai spaced json, usage null on every chunk", SPACED, (2, "length", 12, 3, OK)),
    ("usage chunk that also carries text",
     chat("a") + event({"choices": [{"index": 0, "delta": {"content": "b"},
                                     "finish_reason": "stop"}], "usage": USAGE}) + DONE,
     (2, "stop", 12, 3, OK)),
    ("vllm aborts the request itself: finish reason abort, usage, [DONE]",
     chat("", role="assistant") + chat("tok ") * 5 + chat(finish="abort")
     + event({"choices": [], "usage": USAGE}) + DONE, (5, "abort", 12, 3, ABORTED)),
    ("an engine error as a finish reason", chat("a") + chat(finish="error") + DONE,
     (1, "error", None, None, ("aborted", "the server ended the answer early "
                                          "(finish_reason error)"))),
    ("a content filter", chat("a") + chat(finish="content_filter") + DONE,
     (1, "content_filter", None, None, ("content_filter", "the server ended the answer early "
                                                          "(finish_reason content_filter)"))),
    ("every finish reason of a finished answer",
     chat("a", finish="length") + chat(finish="tool_calls") + chat(finish="function_call")
     + chat(finish="stop") + DONE, (1, "stop", None, None, OK)),
    ("the first unfinished reason is kept", chat("a", finish="abort") + chat(finish="stop")
     + chat(finish="cancelled") + DONE, (1, "abort", None, None, ABORTED)),
    ("reasoning_content counts as content",
     chat(None, reasoning_content="think") + chat(None, reasoning_content="ing")
     + chat("answer", finish="stop") + DONE, (3, "stop", None, None, OK)),
    ("reasoning counts as content", chat(None, reasoning="hm") + chat("x", finish="stop") + DONE,
     (2, "stop", None, None, OK)),
    ("reasoning_details text and summary count, encrypted does not",
     chat(None, reasoning_details=[{"type": "reasoning.text", "text": "a"}])
     + chat(None, reasoning_details=[{"type": "reasoning.summary", "summary": "b"}])
     + chat(None, reasoning_details=[{"type": "reasoning.encrypted", "data": "c"}])
     + chat("x", finish="stop") + DONE, (3, "stop", None, None, OK)),
    ("tool call arguments count as content",
     chat(None, tool_calls=[{"index": 0, "function": {"name": "f", "arguments": ""}}])
     + chat(None, tool_calls=[{"index": 0, "function": {"arguments": "{\"a\""}}])
     + chat(finish="tool_calls") + DONE, (1, "tool_calls", None, None, OK)),
    ("empty and null content is not content",
     chat("", role="assistant") + event({"choices": [{"delta": {"content": None}}]})
     + chat("x", finish="stop") + DONE, (1, "stop", None, None, OK)),
    ("a role-only chunk with an unrelated nested text is not content",
     event({"choices": [{"index": 0, "delta": {"role": "assistant"}}],
            "meta": {"text": "x", "content": "y"}}) + chat("x", finish="stop") + DONE,
     (1, "stop", None, None, OK)),
    ("comments, keep-alives, event/retry fields",
     b": ping\n\n\n" + b"event: message\nretry: 1000\n" + chat("a") + b": ping\n\n"
     + chat("b", finish="stop") + DONE, (2, "stop", None, None, OK)),
    ("after an id, a keep-alive's blank line is an event without data (as in the SDK)",
     b"id: 7\n" + chat("a") + b": ping\n\n" + chat("b", finish="stop") + DONE,
     (2, "stop", None, None, ("invalid_response", sse.NO_DATA))),
    ("crlf line ends", (chat("a") + chat("b", finish="stop") + DONE).replace(b"\n", b"\r\n"),
     (2, "stop", None, None, OK)),
    ("cr line ends", (chat("a") + chat("b", finish="stop") + DONE).replace(b"\n", b"\r"),
     (2, "stop", None, None, OK)),
    ("no space after data:, [DONE] without a line end",
     chat("a", finish="stop").replace(b"data: ", b"data:") + b"data:[DONE]",
     (1, "stop", None, None, OK)),
    ("a json object over two data lines",
     b'data: {"choices":[{"index":0,\ndata: "delta":{"content":"x"}}]}\n\n' + DONE,
     (1, None, None, None, NO_FINISH)),
    ("text that looks like keys stays content",
     chat("usage") + chat('"error": 1, "finish_reason": "stop"') + chat("\\\"usage\\\"") + DONE,
     (3, None, None, None, NO_FINISH)),
    ("anything after [DONE] is ignored",
     chat("a", finish="stop") + DONE + chat("b") + b"data: nonsense\n\n",
     (1, "stop", None, None, OK)),
    ("error object inside a 200 stream",
     chat("a") + event({"error": {"message": "CUDA out of memory", "code": 500}}) + DONE,
     (1, None, None, None, ("stream_error", "CUDA out of memory"))),
    ("named error event", chat("a") + b"event: error\ndata: {\"message\": \"overloaded\"}\n\n",
     (1, None, None, None, ("stream_error", "overloaded"))),
    ("cut before [DONE]", chat("a") + chat("b"), (2, None, None, None, TRUNCATED)),
    ("cut inside an event", chat("a") + chat("b")[:30], (1, None, None, None, TRUNCATED)),
    ("a finish event that no blank line closed is dropped", chat("a") + chat(finish="stop")[:-1],
     (1, None, None, None, TRUNCATED)),
    ("finish reason without [DONE] is complete", chat("a") + chat(finish="stop"),
     (1, "stop", None, None, OK)),
    ("[DONE] without a finish reason is not", chat("a") + DONE, (1, None, None, None, NO_FINISH)),
    ("empty body", b"", (0, None, None, None, TRUNCATED)),
    ("data that is not json", chat("a") + b"data: {oops\n\n" + DONE,
     (1, None, None, None, ("invalid_response", "an event is not JSON: {oops"))),
    ("a json value that is not an object", b"data: [1, 2]\n\n" + DONE,
     (0, None, None, None, ("invalid_response", "an event is not a JSON object"))),
    ("choices that are not a list", event({"choices": {"delta": {}}}) + DONE,
     (0, None, None, None, ("invalid_response", "choices is not a list"))),
    ("an html page", b"<html>\n<body>Bad gateway</body>\n</html>\n",
     (0, None, None, None, ("invalid_response", "the answer is not an event stream"))),
    ("json nested deeper than the parser goes",
     chat("a") + b"data: " + b"[" * 100_000 + b"\n\n",
     (1, None, None, None, ("invalid_response", "an event is nested too deeply to parse"))),
    ("an error nested deeply", chat("a") + event(nested({"message": "deep"}, "error", 500)),
     (1, None, None, None, ("stream_error", '{"error": ' * 19 + '{"error":…'))),
    ("a finish reason that is not a string", chat("a", finish={"why": "stop"}) + DONE,
     (1, None, None, None, ("invalid_response", "a finish_reason is not a string"))),
    ("a finish reason of 1000 characters is cut", chat("a", finish="r" * 1000) + DONE,
     (1, "r" * 39 + "…", None, None,
      ("aborted", f"the server ended the answer early (finish_reason {'r' * 39}…)"))),
    ("a token count past any answer", chat("a", finish="stop") + event({"choices": [], "usage": {
        "prompt_tokens": 3, "completion_tokens": 10**30}}) + DONE,
     (1, "stop", 3, None, ("invalid_response", "a usage token count is out of range: "
                                                "1" + "0" * 22 + "…"))),
    ("a negative token count", chat("a", finish="stop") + event({"choices": [], "usage": {
        "prompt_tokens": -1, "completion_tokens": 1}}) + DONE,
     (1, "stop", None, 1, ("invalid_response", "a usage token count is out of range: -1"))),
    ("a boolean token count is no count", chat("a", finish="stop")
     + event({"choices": [], "usage": {"completion_tokens": True}}) + DONE,
     (1, "stop", None, None, OK)),
]


def feed_in_pieces(stream: bytes, cuts: list[int]) -> StreamState:
    state = StreamState()
    start = 0
    for n, cut in enumerate([*sorted(cuts), len(stream)]):
        state.feed(stream[start:cut], n)
        start = cut
    state.close(len(cuts) + 1)
    return state


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_stream(stream: bytes, expected: tuple[Any, ...]) -> None:
    assert summary(feed_in_pieces(stream, [])) == expected


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_stream_split_anywhere(stream: bytes, expected: tuple[Any, ...]) -> None:
    """The same result whatever the TCP reads: one byte at a time, and random cuts."""
    assert summary(feed_in_pieces(stream, list(range(1, len(stream))))) == expected
    rng = random.Random(len(stream))
    for _ in range(20):
        cuts = rng.sample(range(1, len(stream)), min(5, max(len(stream) - 1, 0)))
        assert summary(feed_in_pieces(stream, cuts)) == expected


def test_chunk_times_are_those_of_the_read_that_closed_the_event() -> None:
    """An event is taken when its blank line arrives, as the OpenAI SDK takes it."""
    state = StreamState()
    state.feed(chat("a") + chat("b")[:20], 100)
    state.feed(chat("b")[20:-1], 200)  # b's data line, not yet its blank line
    state.feed(b"\n" + chat("c") + DONE, 300)
    state.close(400)
    assert state.chunk_ns == [100, 300, 300]


NON_STREAMED = [
    ("chat", {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                           "finish_reason": "stop"}], "usage": USAGE},
     (1, "stop", 12, 3, OK)),
    ("completions", {"choices": [{"index": 0, "text": "hi", "finish_reason": "length"}]},
     (1, "length", None, None, OK)),
    ("reasoning only", {"choices": [{"message": {"content": None, "reasoning_content": "x"},
                                     "finish_reason": "stop"}]}, (1, "stop", None, None, OK)),
    ("content as parts", {"choices": [{"message": {"content": [{"type": "text", "text": "x"}]},
                                       "finish_reason": "stop"}]}, (1, "stop", None, None, OK)),
    ("aborted", {"choices": [{"message": {"content": "x"}, "finish_reason": "abort"}],
                 "usage": USAGE}, (1, "abort", 12, 3, ABORTED)),
    ("no finish reason", {"choices": [{"message": {"content": "x"}}]},
     (1, None, None, None, ("truncated", "the answer has no finish reason"))),
    ("error in a 200 body", {"error": {"message": "bad things"}},
     (0, None, None, None, ("stream_error", "bad things"))),
]


@pytest.mark.parametrize(("answer", "expected"), [c[1:] for c in NON_STREAMED],
                         ids=[c[0] for c in NON_STREAMED])
def test_body(answer: Any, expected: tuple[Any, ...]) -> None:
    state = StreamState()
    state.body(json.dumps(answer).encode(), 5)
    assert summary(state) == expected


def test_body_not_json() -> None:
    state = StreamState()
    state.body(b"<html>oops</html>", 5)
    assert state.outcome() == ("invalid_response", "the answer is not JSON: <html>oops</html>")


def test_body_nested_deeper_than_the_parser_goes() -> None:
    state = StreamState()
    state.body(b"[" * 100_000, 5)
    assert state.outcome() == ("invalid_response", "the answer is nested too deeply to parse")


LINE = "the answer has a line longer than 1024 bytes (limits.line_bytes in servers.yaml)"
EVENT = "the answer has an event longer than 1024 bytes (limits.line_bytes in servers.yaml)"
CHUNKS = "the answer has more than 10 content chunks (limits.chunks in servers.yaml)"


def line_of(size: int) -> bytes:
    """A content event whose data line is `size` bytes long (its line end not counted)."""
    line = chat("a")
    return b"data: " + b" " * (size - len(line) + 2) + line[6:]


STOPPED = chat(finish="stop") + DONE
LIMITED = [
    ("a line of 1024 bytes", line_of(1024) + STOPPED, OK),
    ("a line of 1025 bytes", line_of(1025) + DONE, ("response_too_large", LINE)),
    ("an event over 1024 bytes in many data lines",
     b"data: {\n" + b"data: 1\n" * 600 + b"\n" + DONE, ("response_too_large", EVENT)),
    ("a junk line over 1024 bytes", b"x" * 1100 + b"\n" + DONE, ("response_too_large", LINE)),
    ("10 content chunks", chat("a") * 10 + STOPPED, OK),
    ("11 content chunks", chat("a") * 11 + DONE, ("response_too_large", CHUNKS)),
    ("11 chunks without text", chat(role="assistant") * 11 + DONE, ("response_too_large",
     "the answer has more than 10 chunks without text (limits.chunks in servers.yaml)")),
]


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in LIMITED],
                         ids=[c[0] for c in LIMITED])
def test_limits_end_the_answer_as_too_large(stream: bytes, expected: tuple[Any, ...]) -> None:
    """Whole or in pieces, the same verdict; a limit passed stops the reading at once."""
    for cuts in ([], list(range(1, len(stream), 7))):
        state, stopped = StreamState(max_line=1024, max_chunks=10), False
        start = 0
        for cut in [*cuts, len(stream)]:
            stopped = state.feed(stream[start:cut], 0)
            start = cut
            if stopped:
                break
        state.close(0)
        assert state.outcome() == expected
        assert stopped == (expected != OK or (start == len(stream) and state.done))


def test_a_long_line_costs_about_what_short_lines_of_its_bytes_cost() -> None:
    """8 MiB fed in 4 KiB reads, as one line or as 4 KB events: linear both ways. When every
    read re-joined the line so far, the one line cost 300x (3.6 s; a 100 MB line took 18 s)."""

    def cost(stream: bytes) -> float:
        pieces = [stream[i:i + 4096] for i in range(0, len(stream), 4096)]
        best = float("inf")
        for _ in range(3):
            state = StreamState(max_line=16 << 20, max_chunks=1 << 20)
            started = time.perf_counter()
            for piece in pieces:
                state.feed(piece, 0)
            best = min(best, time.perf_counter() - started)
            assert state.done
        return best

    size = 8 << 20
    one_line = cost(chat("a" * size) + DONE)
    short_lines = cost(chat("a" * 4000) * (size // 4000) + DONE)
    assert one_line < 4 * short_lines
