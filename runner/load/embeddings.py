"""The embeddings API's answers (POST /v1/embeddings), checked before they count as ok.

OpenAI's shape (API reference, "Create embeddings"): `{"object": "list", "data": [{"object":
"embedding", "index": i, "embedding": [floats]}, ...], "model", "usage": {"prompt_tokens",
"total_tokens"}}`, one embedding per input. runner asks for `encoding_format: float`; an
answer whose `data` is not `inputs` lists of numbers (a base64 string, a missing or extra
vector, an empty one) is an invalid_response. An embedding has no output tokens, no first token
and no finish reason: only the E2E latency and the prompt tokens of `usage` are measured."""

from __future__ import annotations

from typing import Any

from runner.defaults import LIMITS
from runner.load.chunks import Event, error_message, read_event
from runner.load.sse import StreamState


def read_embeddings(answer: Any, inputs: int) -> Event:
    """What an embeddings answer for `inputs` inputs says: its error, what is wrong with its
    `data`, its usage's prompt_tokens (as Event.prompt_tokens); it never raises."""
    if not isinstance(answer, dict):
        return Event(invalid="the answer is not a JSON object")
    if answer.get("error"):
        return Event(error=error_message(answer["error"]))
    usage = answer.get("usage")
    said = read_event({"usage": {"prompt_tokens": usage.get("prompt_tokens")}}
                      if isinstance(usage, dict) else {"usage": usage} if usage else {})
    wrong = _data_problem(answer.get("data"), inputs)
    return Event(prompt_tokens=said.prompt_tokens, invalid=said.invalid or wrong)


def _data_problem(data: Any, inputs: int) -> str | None:
    if not isinstance(data, list):
        return "the answer has no `data` list of embeddings"
    if len(data) != inputs:
        return f"the answer has {len(data)} embeddings for {inputs} inputs"
    for item in data:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not vector:
            return "an embedding is not a list of numbers (base64, or empty)"
        if not all(type(x) in (float, int) for x in vector):
            return "an embedding holds something other than numbers"
    return None


class EmbeddingsState(StreamState):
    """One embeddings answer: a whole JSON body, checked for `inputs` embeddings."""

    fast_path = False

    def __init__(self, max_line: int = LIMITS["line_bytes"],
                 max_chunks: int = LIMITS["chunks"], inputs: int = 1) -> None:
        super().__init__(max_line, max_chunks)
        self.inputs = inputs

    def _read(self, answer: Any) -> Event:
        if not self.whole:
            return Event(invalid="an embeddings answer came as an event stream")
        return read_embeddings(answer, self.inputs)

    def outcome(self) -> tuple[str | None, str | None]:
        """As StreamState's, but an embeddings answer has no finish reason to wait for."""
        if self.too_large is not None:
            return "response_too_large", self.too_large
        if self.error is not None:
            return "stream_error", self.error
        if self.invalid is not None or not self.whole:
            return "invalid_response", self.invalid or "the answer is not one JSON body"
        return None, None
