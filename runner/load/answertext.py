"""An answer's text kept while it is read, for a session's next turn (workload.session): the
load generator otherwise only counts and times an answer's chunks."""

from __future__ import annotations

import json
from typing import Any

from runner.load.sse import StreamState

ANSWER_KEPT_CHARS = 1 << 20  # an answer's text kept for the next turn, at most (memory bound)


class AnswerState(StreamState):
    """A stream read as the load generator reads it, keeping the answer's text: every
    choice's `content` (a string, or a list of parts with `text`), not its reasoning, which
    OpenAI-compatible servers neither expect back nor template into the next prompt.

    Each event is parsed in full (the plain-chunk fast path, load.plain, counts chunks without
    reading their text, so it is off): about 1 us more per chunk, paid by session jobs only.
    At most ANSWER_KEPT_CHARS are kept; `cut` says the text was longer."""

    __slots__ = ("cut_text", "parts", "size")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.parts: list[str] = []
        self.size = 0
        self.cut_text = False

    def text(self) -> str:
        """The answer's text so far (at most ANSWER_KEPT_CHARS characters)."""
        return "".join(self.parts)

    def _parse(self, data: bytes, event: bytes, now_ns: int) -> None:
        super()._parse(data, event, now_ns)
        self._template = None  # no fast path: each chunk's text is read below
        if not event:
            self._keep(_loads(data), "delta")

    def body(self, data: bytes, now_ns: int) -> None:
        super().body(data, now_ns)
        self._keep(_loads(data), "message")

    def _keep(self, answer: Any, part: str) -> None:
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return
        said = choices[0].get(part)
        content = said.get("content") if isinstance(said, dict) else None
        for text in _texts(content):
            room = ANSWER_KEPT_CHARS - self.size
            self.cut_text = self.cut_text or len(text) > room
            if room > 0:
                self.parts.append(text[:room])
                self.size += min(len(text), room)


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        return [part["text"] for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)]
    return []


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None  # the full parse has recorded what is wrong with it
