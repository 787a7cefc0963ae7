"""An incremental parser of OpenAI-style streamed answers (SSE) and of non-streamed bodies."""

from __future__ import annotations

import json
import re
from typing import Any

from runner.defaults import LIMITS

_MESSAGE_LIMIT = 200
_REASON_LIMIT = 40  # a finish reason is a word: "stop", "length", "tool_calls"...
_ERROR_DEPTH = 8  # {"error": {"error": ...}} levels followed to find a message
_MAX_TOKENS = 1 << 40  # a token count above this is a broken server, not a long answer
# The fast path's tests: a non-empty text value, and anything that needs a real parse.
_TEXT = re.compile(rb'"(?:content|reasoning_content|reasoning|text)":"[^"]')
_NOT_PLAIN = re.compile(rb'"(?:usage|error|finish_reason)":(?!null[,}])|"tool_calls"')


def short(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """One line of at most `limit` characters (work bounded by `limit`, however long `text`)."""
    line = " ".join(text[: limit * 4].split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def error_message(error: Any) -> str:
    """The message of an OpenAI error object (`{"message": ...}`), or of any other value; at
    most _MESSAGE_LIMIT characters, whatever the nesting (it never raises)."""
    for _ in range(_ERROR_DEPTH):
        if not isinstance(error, dict):
            break
        key = next((k for k in ("message", "detail", "error")
                    if isinstance(error.get(k), str | dict)), None)
        if key is None:
            break
        error = error[key]
    return short(error if isinstance(error, str) else _as_json(error))


def _as_json(value: Any) -> str:
    try:
        return json.dumps(value)
    except (RecursionError, ValueError, TypeError):
        return f"a {type(value).__name__} nested too deeply to show"


class StreamState:
    """What one answer's stream has shown so far; feed it bytes as they arrive.

    Lines may be split anywhere across reads; LF and CRLF line ends are accepted (a lone CR is
    not: no OpenAI-compatible server sends one). A content chunk is an event with non-empty
    text: chat `delta.content`, `delta.reasoning_content`, `delta.reasoning` or a tool call's
    `arguments`, or completions `text`. Role-only and usage-only chunks are not content.

    Bounded whatever the server sends: a line or an event longer than `max_line` bytes, or more
    than `max_chunks` content chunks, end the answer as `response_too_large`; nothing the
    server sends makes it raise (nesting too deep for the parser is an invalid answer)."""

    __slots__ = ("_buf", "_event", "_held", "_junk", "_max_chunks", "_max_line", "_pending",
                 "_pending_len", "chunk_ns", "completion_tokens", "done", "error", "events",
                 "finish_reason", "invalid", "prompt_tokens", "too_large")

    def __init__(self, max_line: int = LIMITS["line_bytes"],
                 max_chunks: int = LIMITS["chunks"]) -> None:
        self.chunk_ns: list[int] = []  # arrival time of every content chunk
        self.done = False  # `data: [DONE]` seen
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.error: str | None = None  # an error event inside the stream
        self.invalid: str | None = None  # something that is not an OpenAI answer
        self.too_large: str | None = None  # the limit the answer passed
        self.events = 0
        self._max_line, self._max_chunks = max_line, max_chunks
        self._buf: list[bytes] = []  # the pieces of a line that spans reads
        self._held = 0  # their length
        self._pending: list[bytes] | None = None  # data lines of an event that spans several
        self._pending_len = 0
        self._event = b""
        self._junk = 0

    def feed(self, data: bytes, now_ns: int) -> bool:
        """Parse the complete lines of `data` (plus what was left over); keep the rest.
        True when reading should stop: [DONE] came, or the answer passed a limit.

        Linear in the bytes fed however long a line is: the pieces of a line are kept apart
        and joined once, when its end arrives (re-joining the buffer on every read made a
        100 MB line cost 18 s, each doubling 4x)."""
        if self._buf:
            cut = data.find(b"\n")
            if cut < 0:
                return self._hold(data)
            if self._held + cut > self._max_line:
                return self.cut(f"a line longer than {self._max_line} bytes")
            self._buf.append(data)
            data = b"".join(self._buf)
            self._buf, self._held = [], 0
        lines = data.split(b"\n")
        tail = lines.pop()
        if len(data) > self._max_line and max(map(len, lines), default=0) > self._max_line:
            return self.cut(f"a line longer than {self._max_line} bytes")
        for line in lines:
            if line[:5] == b"data:":
                self._data(line, now_ns)
            elif line == b"" or line == b"\r":
                self._end_event(now_ns)
            else:
                self._field(line)
        if tail and self._hold(tail):
            return True
        if len(self.chunk_ns) > self._max_chunks:
            return self.cut(f"more than {self._max_chunks} content chunks",
                                   "limits.chunks")
        return self.done or self.too_large is not None

    def close(self, now_ns: int) -> None:
        """The body ended: parse a last line that had no line end."""
        if self._buf and self.too_large is None:
            self.feed(b"\n", now_ns)
        if self._pending is not None:  # an event cut off by the end: truncated, not invalid
            self._parse(b"\n".join(self._pending), now_ns, strict=False)
            self._pending = None
        self._event = b""

    def body(self, data: bytes, now_ns: int) -> None:
        """Parse a whole non-streamed answer (`stream: false`)."""
        try:
            answer = json.loads(data)
        except RecursionError:
            self.invalid = "the answer is nested too deeply to parse"
            return
        except ValueError:
            self.invalid = f"the answer is not JSON: {short(data[:80].decode(errors='replace'))}"
            return
        self._answer(answer, now_ns)
        self.done = self.invalid is None and self.error is None

    def outcome(self) -> tuple[str | None, str | None]:
        """(error kind, message) of the finished stream; (None, None) when it succeeded."""
        if self.too_large is not None:
            return "response_too_large", self.too_large
        if self.error is not None:
            return "stream_error", self.error
        if self.invalid is not None:
            return "invalid_response", self.invalid
        if self.done or self.finish_reason is not None:
            return None, None
        if self._junk and not self.events:
            return "invalid_response", "the answer is not an event stream"
        return "truncated", "the stream ended before [DONE] or a finish reason"

    def _hold(self, piece: bytes) -> bool:
        self._buf.append(piece)
        self._held += len(piece)
        if self._held > self._max_line:
            return self.cut(f"a line longer than {self._max_line} bytes")
        return False

    def cut(self, what: str, limit: str = "limits.line_bytes") -> bool:
        """The answer passed a limit: it ends as response_too_large (True: stop reading)."""
        self.too_large = self.too_large or f"the answer has {what} ({limit} in servers.yaml)"
        self._buf, self._pending = [], None
        return True

    def _data(self, line: bytes, now_ns: int) -> None:
        if self.done:
            return
        payload = line[6:] if line[5:6] == b" " else line[5:]
        if payload[-1:] == b"\r":
            payload = payload[:-1]
        if self._pending is not None:
            if payload != b"[DONE]":
                self._extend(payload)
                return
            self._end_event(now_ns)
        if payload == b"[DONE]":
            self.done = True
            return
        if not self._event and _plain_text(payload):
            self.events += 1
            self.chunk_ns.append(now_ns)
            return
        self._parse(payload, now_ns, strict=None)

    def _extend(self, payload: bytes) -> None:
        """One more data line of a multi-line event: kept, parsed once at the event's end."""
        assert self._pending is not None
        self._pending.append(payload)
        self._pending_len += len(payload) + 1
        if self._pending_len > self._max_line:
            self.cut(f"an event longer than {self._max_line} bytes")

    def _parse(self, payload: bytes, now_ns: int, strict: bool | None) -> None:
        """Parse one event's data. Not JSON: invalid when `strict`, ignored when False (cut
        off by the end of the body), maybe the first line of a multi-line event when None."""
        try:
            answer = json.loads(payload)
        except RecursionError:
            self.invalid = self.invalid or "an event is nested too deeply to parse"
            return
        except ValueError:
            if strict:
                text = short(payload[:80].decode(errors="replace"))
                self.invalid = self.invalid or f"an event is not JSON: {text}"
            elif strict is None:
                self._pending, self._pending_len = [payload], len(payload)
            return
        self.events += 1
        if self._event == b"error":
            self.error = error_message(answer)
        else:
            self._answer(answer, now_ns)

    def _end_event(self, now_ns: int) -> None:
        if self._pending is not None:
            payload, self._pending = b"\n".join(self._pending), None
            self._parse(payload, now_ns, strict=True)
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
        if type(prompt) is int:  # not a bool; other types are ignored, as if absent
            self.prompt_tokens = _count(prompt, self)
        if type(completion) is int:
            self.completion_tokens = _count(completion, self)

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
            if isinstance(reason, str) and reason:
                self.finish_reason = short(reason, _REASON_LIMIT)
            elif reason:
                self.invalid = self.invalid or "a finish_reason is not a string"
            text = _has_text(choice) or text
        return text


def _count(value: int, state: StreamState) -> int | None:
    """`value` when it can be a token count, else None and the answer is invalid."""
    if 0 <= value <= _MAX_TOKENS:
        return value
    shown = short(str(value), 24)
    state.invalid = state.invalid or f"a usage token count is out of range: {shown}"
    return None


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
