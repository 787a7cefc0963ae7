"""An incremental parser of OpenAI-style streamed answers (SSE) and of non-streamed bodies."""

from __future__ import annotations

import json
import re
from typing import Any

_MESSAGE_LIMIT = 200
# The fast path's tests: a non-empty text value, and anything that needs a real parse.
_TEXT = re.compile(rb'"(?:content|reasoning_content|reasoning|text)":"[^"]')
_NOT_PLAIN = re.compile(rb'"(?:usage|error|finish_reason)":(?!null[,}])|"tool_calls"')


def short(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """One line of at most `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def error_message(error: Any) -> str:
    """The message of an OpenAI error object (`{"message": ...}`), or of any other value."""
    if isinstance(error, dict):
        for key in ("message", "detail", "error"):
            if isinstance(error.get(key), str | dict):
                return error_message(error[key])
        return short(json.dumps(error))
    return short(str(error))


class StreamState:
    """What one answer's stream has shown so far; feed it bytes as they arrive.

    Lines may be split anywhere across reads; LF and CRLF line ends are accepted (a lone CR is
    not: no OpenAI-compatible server sends one). A content chunk is an event with non-empty
    text: chat `delta.content`, `delta.reasoning_content`, `delta.reasoning` or a tool call's
    `arguments`, or completions `text`. Role-only and usage-only chunks are not content."""

    __slots__ = ("_buf", "_event", "_junk", "_pending", "chunk_ns", "completion_tokens", "done",
                 "error", "events", "finish_reason", "invalid", "prompt_tokens")

    def __init__(self) -> None:
        self.chunk_ns: list[int] = []  # arrival time of every content chunk
        self.done = False  # `data: [DONE]` seen
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.error: str | None = None  # an error event inside the stream
        self.invalid: str | None = None  # something that is not an OpenAI answer
        self.events = 0
        self._buf = b""
        self._pending: bytes | None = None  # data of an event that spans several data lines
        self._event = b""
        self._junk = 0

    def feed(self, data: bytes, now_ns: int) -> None:
        """Parse the complete lines of `data` (plus what was left over); keep the rest."""
        if self._buf:
            data = self._buf + data
        lines = data.split(b"\n")
        self._buf = lines.pop()
        for line in lines:
            if line[:5] == b"data:":
                self._data(line, now_ns)
            elif line == b"" or line == b"\r":
                self._end_event()
            else:
                self._field(line)

    def close(self, now_ns: int) -> None:
        """The body ended: parse a last line that had no line end."""
        if self._buf:
            self.feed(b"\n", now_ns)
        self._pending = None  # an event cut off by the end of the body: truncated, not invalid
        self._end_event()

    def body(self, data: bytes, now_ns: int) -> None:
        """Parse a whole non-streamed answer (`stream: false`)."""
        try:
            answer = json.loads(data)
        except ValueError:
            self.invalid = f"the answer is not JSON: {short(data[:80].decode(errors='replace'))}"
            return
        self._answer(answer, now_ns)
        self.done = self.invalid is None and self.error is None

    def outcome(self) -> tuple[str | None, str | None]:
        """(error kind, message) of the finished stream; (None, None) when it succeeded."""
        if self.error is not None:
            return "stream_error", self.error
        if self.invalid is not None:
            return "invalid_response", self.invalid
        if self.done or self.finish_reason is not None:
            return None, None
        if self._junk and not self.events:
            return "invalid_response", "the answer is not an event stream"
        return "truncated", "the stream ended before [DONE] or a finish reason"

    def _data(self, line: bytes, now_ns: int) -> None:
        if self.done:
            return
        payload = line[6:] if line[5:6] == b" " else line[5:]
        if payload[-1:] == b"\r":
            payload = payload[:-1]
        if self._pending is None:
            if payload == b"[DONE]":
                self.done = True
                return
            if not self._event and _plain_text(payload):
                self.events += 1
                self.chunk_ns.append(now_ns)
                return
        else:
            payload = self._pending + b"\n" + payload
        try:
            answer = json.loads(payload)
        except ValueError:  # maybe the first line of a multi-line event: wait for its end
            self._pending = payload
            return
        self._pending = None
        self.events += 1
        if self._event == b"error":
            self.error = error_message(answer)
        else:
            self._answer(answer, now_ns)

    def _end_event(self) -> None:
        if self._pending is not None:
            text = short(self._pending[:80].decode(errors="replace"))
            self.invalid = self.invalid or f"an event is not JSON: {text}"
            self._pending = None
        self._event = b""

    def _field(self, line: bytes) -> None:
        if line[:6] == b"event:":
            self._event = line[6:].strip()
        elif line[:1] != b":" and line[:3] != b"id:" and line[:6] != b"retry:":
            self._junk += 1

    def _answer(self, answer: Any, now_ns: int) -> None:
        if not isinstance(answer, dict):
            self.invalid = self.invalid or "an event is not a JSON object"
            return
        error = answer.get("error")
        if error:
            self.error = error_message(error)
        usage = answer.get("usage")
        if usage:
            self._usage(usage)
        choices = answer.get("choices")
        if choices is not None and self._choices(choices):
            self.chunk_ns.append(now_ns)

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            self.invalid = self.invalid or "usage is not an object"
            return
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int):
            self.prompt_tokens = prompt
        if isinstance(completion, int):
            self.completion_tokens = completion

    def _choices(self, choices: Any) -> bool:
        """Record finish reasons; whether any choice carries text."""
        if not isinstance(choices, list):
            self.invalid = self.invalid or "choices is not a list"
            return False
        text = False
        for choice in choices:
            if not isinstance(choice, dict):
                self.invalid = self.invalid or "a choice is not an object"
                return False
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
            text = _has_text(choice) or text
        return text


def _plain_text(payload: bytes) -> bool:
    """Whether `payload` is certainly a compact chunk with text and nothing else of note (no
    usage, error, finish reason or tool call), decided without parsing it: measured to halve
    the parser's time per content chunk. Sound because every quote inside a JSON string is
    escaped: `"usage":` can only be a key, never part of a model's text; and OpenAI's chunk has
    text keys only inside its choices. Anything else is parsed (spaced JSON too)."""
    return (payload[:1] == b"{" and payload[-1:] == b"}" and b'"choices":[' in payload
            and _NOT_PLAIN.search(payload) is None and _TEXT.search(payload) is not None)


def _has_text(choice: dict[str, Any]) -> bool:
    delta = choice.get("delta")
    if delta is None:
        delta = choice.get("message")  # a non-streamed chat answer
    if not isinstance(delta, dict):
        return isinstance(choice.get("text"), str) and choice["text"] != ""
    for key in ("content", "reasoning_content", "reasoning"):
        value = delta.get(key)
        if isinstance(value, str) and value:
            return True
    calls = delta.get("tool_calls")
    return isinstance(calls, list) and any(_has_arguments(call) for call in calls)


def _has_arguments(call: Any) -> bool:
    function = call.get("function") if isinstance(call, dict) else None
    return isinstance(function, dict) and bool(function.get("arguments"))
