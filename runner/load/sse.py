"""An incremental parser of OpenAI-style streamed answers (SSE) and of non-streamed bodies.

The framing is the OpenAI Python SDK's (`SSEDecoder` in openai-python's
src/openai/_streaming.py): CR, LF and CRLF end a line (a CRLF split across reads is one);
each line is strict UTF-8; `:` starts a comment; a line is `field:value` with one leading
space of the value dropped (`data:x` and `data: x` are the same, a bare `data` is an empty
data line); `data` lines join with LF; `event`, `id` (without NUL) and `retry` (an integer)
are kept, other fields ignored; a blank line dispatches the event when it has data, an event
name, a retry, or an id seen earlier (an id stays until an empty one); an event whose data starts
with `[DONE]` ends the stream; any other event's data must be JSON; an event that no blank
line closed when the body ends is dropped. One addition: an event named `error` is the
server's error (the SDK reads it as a chunk; runner does not count it as one)."""

from __future__ import annotations

import json
from typing import Any

from runner.defaults import LIMITS
from runner.load.chunks import PLAIN, PLAIN_REASONING, Event, error_message, read_event, short
from runner.load.plain import Template, fits, learn

__all__ = ["StreamState", "error_message", "short"]

NO_DATA = "an event has no data (the OpenAI SDK fails on it too)"


class StreamState:
    """What one answer's stream has shown so far; feed it bytes as they arrive.

    A content chunk is an event whose choices carry text (chunks.read_event; the README's TTFT
    definition), timed by the read that brought the blank line closing it; an answer chunk
    carries answer text (the first one's time is `answer_ns`, the README's TTFO definition), a
    reasoning chunk only reasoning text (counted in `reasoning_chunks`). The answer
    succeeded when a finish reason in chunks.FINISHED came and nothing went wrong.

    Bounded whatever the server sends: a line or an event longer than `max_line` bytes, or more
    than `max_chunks` content chunks, end the answer as `response_too_large`; nothing the
    server sends makes it raise (nesting too deep for the parser is an invalid answer).
    `fast_path`: content chunks shaped as the last plain one are counted unparsed (load.plain);
    a subclass whose `_read` reads another shape turns it off."""

    fast_path = True

    __slots__ = ("_buf", "_cr", "_data", "_data_len", "_event", "_held", "_id", "_junk",
                 "_max_chunks", "_max_line", "_retry", "_template", "_template_answer",
                 "answer_ns", "chunk_ns", "completion_tokens", "done", "error", "events",
                 "finish_reason", "invalid", "prompt_tokens", "reasoning_chunks",
                 "reasoning_tokens", "textless_ns", "too_large", "unfinished", "whole")

    def __init__(self, max_line: int = LIMITS["line_bytes"],
                 max_chunks: int = LIMITS["chunks"]) -> None:
        self.chunk_ns: list[int] = []  # arrival time of every content chunk
        self.textless_ns: list[int] = []  # of every other event with choices (role, finish...)
        self.answer_ns: int | None = None  # arrival time of the first answer chunk
        self.reasoning_chunks = 0  # content chunks with reasoning text and no answer text
        self.reasoning_tokens: int | None = None  # usage completion_tokens_details
        self.done = False  # an event whose data starts with [DONE]
        self.finish_reason: str | None = None  # the first outside FINISHED, else the last
        self.unfinished = False  # finish_reason is outside FINISHED
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.error: str | None = None  # an error inside the stream
        self.invalid: str | None = None  # something that is not an OpenAI answer
        self.too_large: str | None = None  # the limit the answer passed
        self.events = 0
        self.whole = False  # a non-streamed answer
        self._max_line, self._max_chunks = max_line, max_chunks
        self._buf: list[bytes] = []  # the pieces of a line that spans reads
        self._held = 0  # their length
        self._cr = False  # the last read ended with CR: a LF starting the next ends no line
        self._data: list[bytes] = []  # the data lines of the event being read, as they came
        self._data_len = 0
        self._event = b""  # its event name
        self._retry = False  # it had a retry field
        self._id = b""  # the last event id (kept across events, as the SDK keeps it)
        self._template: Template | None = None  # the last plain chunk's (see plain.learn)
        self._template_answer = True  # that chunk carried answer text, not only reasoning
        self._junk = 0

    def feed(self, data: bytes, now_ns: int) -> bool:
        """Parse the complete lines of `data` (plus what was left over); keep the rest.
        True when reading should stop: [DONE] came, or the answer passed a limit.

        Linear in the bytes fed however long a line is: the pieces of a line are kept apart
        and joined once, when its end arrives (re-joining the buffer on every read made a
        100 MB line cost 18 s, each doubling 4x)."""
        if self.done or self.too_large is not None:
            return True
        if self._cr or b"\r" in data:
            data = self._lf(data)
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
        pending = self._data
        for line in lines:
            if line[:5] == b"data:":
                pending.append(line)
                if len(pending) > 1 and self._grow():
                    return True
            elif line:
                self._field(line)
            elif (pending or self._event or self._id or self._retry) and self._dispatch(now_ns):
                break
        else:
            if tail and self._hold(tail):
                return True
        if len(self.chunk_ns) > self._max_chunks:
            return self.cut(f"more than {self._max_chunks} content chunks", "limits.chunks")
        if len(self.textless_ns) > self._max_chunks:
            return self.cut(f"more than {self._max_chunks} chunks without text", "limits.chunks")
        return self.done or self.too_large is not None

    def close(self, now_ns: int) -> None:
        """The body ended. A last line without a line end is read, but an event that no blank
        line closed is dropped (as the SDK drops it): a stream cut there has no finish."""
        if self._buf and self.too_large is None:
            line, self._buf = b"".join(self._buf), []
            if line[:5] == b"data:":
                self._data.append(line)
            else:
                self._field(line)
        for line in self._data:  # never dispatched, but the SDK decodes every line
            self._utf8(line)
        self._data = []

    def body(self, data: bytes, now_ns: int) -> None:
        """Parse a whole non-streamed answer (`stream: false`)."""
        self.whole = True
        try:
            answer = json.loads(data)
        except RecursionError:
            self.invalid = "the answer is nested too deeply to parse"
            return
        except ValueError:
            self.invalid = f"the answer is not JSON: {short(data[:80].decode(errors='replace'))}"
            return
        self.events += 1
        self._apply(self._read(answer), now_ns)

    def outcome(self) -> tuple[str | None, str | None]:
        """(error kind, message) of the finished answer; (None, None) when it succeeded."""
        if self.too_large is not None:
            return "response_too_large", self.too_large
        if self.error is not None:
            return "stream_error", self.error
        if self._junk and not self.events:
            return "invalid_response", "the answer is not an event stream"
        if self.invalid is not None:
            return "invalid_response", self.invalid
        if self.unfinished:
            kind = "content_filter" if self.finish_reason == "content_filter" else "aborted"
            return kind, f"the server ended the answer early (finish_reason {self.finish_reason})"
        if self.finish_reason is not None:
            return None, None
        if self.whole:
            return "truncated", "the answer has no finish reason"
        if self.done:
            return "truncated", "the stream ended ([DONE]) without a finish reason"
        return "truncated", "the stream ended before a finish reason"

    def cut(self, what: str, limit: str = "limits.line_bytes") -> bool:
        """The answer passed a limit: it ends as response_too_large (True: stop reading)."""
        self.too_large = self.too_large or f"the answer has {what} ({limit} in servers.yaml)"
        self._buf, self._data = [], []
        return True

    def _lf(self, data: bytes) -> bytes:
        """CR and CRLF line ends made LF; a CRLF split across two reads is one line end."""
        if self._cr and data[:1] == b"\n":
            data = data[1:]
        self._cr = data[-1:] == b"\r"
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def _hold(self, piece: bytes) -> bool:
        self._buf.append(piece)
        self._held += len(piece)
        if self._held > self._max_line:
            return self.cut(f"a line longer than {self._max_line} bytes")
        return False

    def _grow(self) -> bool:
        """One more data line of an event: its data lines together are bounded as a line is."""
        lines = self._data
        self._data_len = self._data_len + len(lines[-1]) if self._data_len else sum(map(len, lines))
        if self._data_len > self._max_line:
            return self.cut(f"an event longer than {self._max_line} bytes")
        return False

    def _field(self, line: bytes) -> None:
        """A line that is neither data nor blank: a comment, or an event, id, retry or other
        field (a bare `data`, without a colon, is an empty data line)."""
        if not self._utf8(line):
            self._junk += 1
            return
        if line[:1] == b":":
            return
        name, _, value = line.partition(b":")
        value = value[1:] if value[:1] == b" " else value
        if name == b"data":
            self._data.append(b"data:")
            if len(self._data) > 1:
                self._grow()
        elif name == b"event":
            self._event = value
        elif name == b"id":
            self._id = self._id if b"\0" in value else value
        elif name == b"retry":
            self._retry = self._retry or _is_int(value)
        else:
            self._junk += 1

    def _utf8(self, line: bytes) -> bool:
        try:
            line.decode()
        except UnicodeDecodeError:
            self.invalid = self.invalid or "a line of the stream is not UTF-8"
            return False
        return True

    def _dispatch(self, now_ns: int) -> bool:
        """A blank line ended an event: take it; True when reading should stop ([DONE])."""
        lines = self._data
        if len(lines) == 1:
            line = lines[0]
            data = line[6:] if line[5:6] == b" " else line[5:]
        else:
            data = b"\n".join(line[6:] if line[5:6] == b" " else line[5:] for line in lines)
            self._data_len = 0
        lines.clear()
        event, self._event, self._retry = self._event, b"", False
        self.events += 1
        if data[:6] == b"[DONE]":
            self._utf8(data)  # the SDK decodes every line before it looks at it
            self.done = True
            return True
        template = self._template
        if template is not None and not event and fits(data, template):
            self.chunk_ns.append(now_ns)
            if not self._template_answer:  # (an answer template's chunk set answer_ns)
                self.reasoning_chunks += 1
        else:
            self._parse(data, event, now_ns)
        return False

    def _parse(self, data: bytes, event: bytes, now_ns: int) -> None:
        """Parse one event's data as the SDK does: strict UTF-8, then JSON."""
        try:
            answer = json.loads(data.decode())
        except RecursionError:
            self.invalid = self.invalid or "an event is nested too deeply to parse"
            return
        except UnicodeDecodeError:
            self.invalid = self.invalid or "a line of the stream is not UTF-8"
            return
        except ValueError:
            text = short(data[:80].decode(errors="replace"))
            if event == b"error":
                self.error = self.error or text or "an error event"
            elif not self.invalid:
                self.invalid = f"an event is not JSON: {text}" if text else NO_DATA
            return
        if event == b"error":
            self.error = self.error or error_message(answer)
            return
        said = self._read(answer)
        if (not event and self.fast_path and said in (PLAIN, PLAIN_REASONING)
                and (template := learn(data))):
            self._template, self._template_answer = template, said.answer
        self._apply(said, now_ns)

    def _read(self, answer: Any) -> Event:
        """What one parsed event (or whole answer) says: an OpenAI chat or completions shape
        here; a subclass reads another API's (runner.load.responses, runner.load.embeddings)."""
        return read_event(answer)

    def _apply(self, said: Event, now_ns: int) -> None:
        if said.error is not None:
            self.error = self.error or said.error
        if said.invalid is not None:
            self.invalid = self.invalid or said.invalid
        if said.prompt_tokens is not None:
            self.prompt_tokens = said.prompt_tokens
        if said.completion_tokens is not None:
            self.completion_tokens = said.completion_tokens
        if said.reasoning_tokens is not None:
            self.reasoning_tokens = said.reasoning_tokens
        if said.finish is not None and not self.unfinished:
            self.finish_reason, self.unfinished = said.finish, said.unfinished
        if said.text:
            self.chunk_ns.append(now_ns)
            if not said.answer:
                self.reasoning_chunks += 1
            elif self.answer_ns is None:
                self.answer_ns = now_ns
        elif said.choices:
            self.textless_ns.append(now_ns)


def _is_int(value: bytes) -> bool:
    """Whether the SDK takes `value` as a retry (Python's int() of the text)."""
    try:
        int(value.decode())
    except ValueError:
        return False
    return True
