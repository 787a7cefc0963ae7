"""The SSE framing runner accepts is the OpenAI Python SDK's: a table of streams, each with the
events the SDK's decoder (openai._streaming.SSEDecoder) dispatches from it. runner must see
the same events, fed whole, split at every byte, or one byte at a time; and the real SDK,
from the LiteLLM venv, must dispatch exactly the events the table says."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from conftest import require_litellm

from runner.load.chunks import FINISHED, read_event
from runner.load.sse import StreamState

C = '{"choices":[{"index":0,"delta":{"content":"a"}}]}'
F = '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
E = '{"message":"overloaded"}'
DONE = "[DONE]"
UTF8 = "the SDK fails: a line is not UTF-8"


def events(*data: str, end: str = "\n") -> str:
    """Each data as one `data: ` line and a blank line, lines ended by `end`."""
    return "".join(f"data: {d}{end}{end}" for d in data)


Sdk = list[Any]  # each dispatched event: its data, or (event name, data); or UTF8
FRAMING: list[tuple[str, str, Sdk]] = [
    ("lf", events(C, F, DONE), [C, F, DONE]),
    ("crlf", events(C, F, DONE, end="\r\n"), [C, F, DONE]),
    ("cr", events(C, F, DONE, end="\r"), [C, F, DONE]),
    ("mixed line ends", f"data: {C}\r\n\ndata: {F}\r\rdata: [DONE]\n\r\n", [C, F, DONE]),
    ("data: without a space", events(C, F, DONE).replace("data: ", "data:"), [C, F, DONE]),
    ("two spaces: the value keeps one", events(C, F, DONE).replace("data: ", "data:  "),
     [f" {C}", f" {F}", " [DONE]"]),
    ("[DONE] with more after it", events(C, F, "[DONE] bye", C), [C, F, "[DONE] bye"]),
    ("[DONE] opening a multi-line event", events(C, F) + f"data: [DONE]\ndata: {C}\n\n",
     [C, F, f"[DONE]\n{C}"]),
    ("[DONE] as a second data line", events(C) + f"data: {F}\ndata: [DONE]\n\n",
     [C, f"{F}\n[DONE]"]),
    ("event names are kept and do not matter",
     f"event: message\ndata: {C}\n\nevent: delta\ndata: {F}\n\n" + events(DONE),
     [("message", C), ("delta", F), DONE]),
    ("an error event: runner's addition, the SDK reads a chunk",
     events(C) + f"event: error\ndata: {E}\n\n", [C, ("error", E)]),
    ("an error in the payload", events(C, '{"error":{"message":"boom"}}', F, DONE),
     [C, '{"error":{"message":"boom"}}', F, DONE]),
    ("comments anywhere", f": hi\ndata: {C}\n: inside\n\n:\n\n" + events(F, DONE), [C, F, DONE]),
    ("extra blank lines", "\n\n" + events(C) + "\n\n\n" + events(F, DONE), [C, F, DONE]),
    ("a last event no blank line closed is dropped", events(C) + f"data: {F}\n", [C]),
    ("a last line without a line end is dropped", events(C) + f"data: {F}", [C]),
    ("[DONE] without a line end", events(C, F) + "data: [DONE]", [C, F]),
    ("a json value over two data lines",
     'data: {"choices":[{"index":0,\ndata: "delta":{"content":"a"}}]}\n\n' + events(F, DONE),
     ['{"choices":[{"index":0,\n"delta":{"content":"a"}}]}', F, DONE]),
    ("a bare data line is an empty one", 'data: {"choices":\ndata\ndata: []}\n\n' + events(F),
     ['{"choices":\n\n[]}', F]),
    ("an event name alone is an event without data", "event: ping\n\n" + events(C, F, DONE),
     [("ping", ""), C, F, DONE]),
    ("a retry alone is an event without data", "retry: 100\n\n" + events(C, F, DONE),
     ["", C, F, DONE]),
    ("a retry that is no number is ignored", "retry: soon\n\n" + events(C, F, DONE), [C, F, DONE]),
    ("after an id, every blank line is an event", "id: 1\n" + events(C) + "\n" + events(F),
     [C, "", F]),
    ("an id holding NUL is ignored", "id: a\0b\n\n" + events(C) + "\n" + events(F, DONE),
     [C, F, DONE]),
    ("an empty id forgets the last", "id: 1\nid\n" + events(C) + "\n" + events(F, DONE),
     [C, F, DONE]),
    ("unknown fields and other cases are ignored",
     f"Data: {C}\nfoo: bar\ndata : x\nDATA\n" + events(C, F, DONE), [C, F, DONE]),
    ("a line of spaces is not a blank line", f"data: {C}\n \n\n" + events(F), [C, F]),
    ("a byte order mark hides the first field", "\ufeff" + events(C, F, DONE), [F, DONE]),
    ("a comment that is not UTF-8", events(C, F) + ": \udcff\n", [C, F, UTF8]),
    ("data that is not UTF-8", events(C, F) + "data: \udcff\n\n", [C, F, UTF8]),
    ("multi-byte characters", events('{"choices":[{"delta":{"content":"é✓😀"}}]}', F),
     ['{"choices":[{"delta":{"content":"é✓😀"}}]}', F]),
    ("empty body", "", []),
    ("only comments and blank lines", ": a\n\n: b\r\n\r\n\n", []),
]


def raw(text: str) -> bytes:
    """UTF-8, with lone surrogates (\\udcXX) standing for invalid bytes 0xXX."""
    return text.encode("utf-8", "surrogateescape")


def expected(sdk: Sdk) -> tuple[Any, ...]:
    """What runner makes of the events the SDK dispatched: (content chunks, finish reason,
    [DONE] seen, error kind) under runner's rules (chunks.read_event; an `error` event is an
    error; a finish reason outside FINISHED is aborted; none is truncated)."""
    chunks, finish, done, kinds = 0, None, False, set()
    for item in sdk:
        if item == UTF8:
            kinds.add("invalid_response")
            break
        name, data = item if isinstance(item, tuple) else (None, item)
        if data.startswith(DONE):
            done = True
            break
        try:
            said = read_event(json.loads(data))
        except ValueError:
            kinds.add("stream_error" if name == "error" else "invalid_response")
            continue
        if name == "error" or said.error:
            kinds.add("stream_error")
            continue
        chunks += said.text
        finish = said.finish or finish
    kind = next((k for k in ("stream_error", "invalid_response") if k in kinds), None)
    if kind is None and finish not in FINISHED:
        kind = "truncated" if finish is None else "aborted"
    return chunks, finish, done, kind


def runner_sees(stream: bytes, cuts: list[int]) -> tuple[Any, ...]:
    state = StreamState()
    start = 0
    for n, cut in enumerate([*cuts, len(stream)]):
        if state.feed(stream[start:cut], n):
            break
        start = cut
    state.close(len(cuts) + 1)
    return len(state.chunk_ns), state.finish_reason, state.done, state.outcome()[0]


@pytest.mark.parametrize(("stream", "sdk"), [c[1:] for c in FRAMING], ids=[c[0] for c in FRAMING])
def test_runner_sees_the_events_the_sdk_sees(stream: str, sdk: Sdk) -> None:
    data, truth = raw(stream), expected(sdk)
    assert runner_sees(data, []) == truth
    assert runner_sees(data, list(range(1, len(data)))) == truth  # one byte at a time
    for cut in range(1, len(data)):
        assert runner_sees(data, [cut]) == truth, cut


ORACLE = r"""
import json, sys
from openai._streaming import SSEDecoder
out = []
for text in json.load(sys.stdin):
    seen = []
    try:
        for sse in SSEDecoder().iter_bytes(iter([text.encode("latin-1")])):
            seen.append(sse.data if sse.event is None else [sse.event, sse.data])
            if sse.data.startswith("[DONE]"):
                break
    except UnicodeDecodeError:
        seen.append(None)
    out.append(seen)
json.dump(out, sys.stdout)
"""


def test_the_table_is_what_the_openai_sdk_dispatches() -> None:
    python = require_litellm().parent / "python"  # the LiteLLM venv holds the openai SDK
    streams = [raw(stream).decode("latin-1") for _, stream, _ in FRAMING]
    done = subprocess.run([str(python), "-c", ORACLE], input=json.dumps(streams),
                          capture_output=True, text=True, timeout=60, check=True)
    dispatched = json.loads(done.stdout)
    for (name, _, sdk), seen in zip(FRAMING, dispatched, strict=True):
        table = [UTF8 if item is None else tuple(item) if isinstance(item, list) else item
                 for item in seen]
        assert table == sdk, name
