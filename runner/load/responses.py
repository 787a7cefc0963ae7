"""The Responses API's answers (POST /v1/responses), read as runner reads chat answers.

OpenAI's streaming events (API reference, "Responses streaming events"): every event's JSON
has a `type`; `response.output_text.delta`, `response.refusal.delta` and
`response.function_call_arguments.delta` carry answer text in `delta`,
`response.reasoning_text.delta` and `response.reasoning_summary_text.delta` reasoning text; the
stream ends with one terminal event holding the whole `response` (no `data: [DONE]`):
`response.completed` (with `usage.input_tokens`, `usage.output_tokens`), `response.incomplete`
(`incomplete_details.reason`: max_output_tokens, content_filter) or `response.failed`
(`response.error`); an `error` event is the server's error. A non-streamed answer is the
response object itself (`output` items: `message` with `output_text` parts, `reasoning`).

Each event is translated into the chat shape that chunks.read_event reads, so TTFT, ITL, token
counts and the error kinds mean what they mean for chat: a text delta is a content chunk (a
reasoning delta too, as reasoning_content), `completed` is finish_reason `stop`, `incomplete`
for max_output_tokens is `length` (an answer cut where the plan asked), `incomplete` for any
other reason is that reason (content_filter, else the kind `aborted`), `failed` and `error` are
`stream_error`; an event without a `type` is not a Responses answer (invalid_response)."""

from __future__ import annotations

from typing import Any

from runner.load.chunks import Event, error_message, read_event, short
from runner.load.sse import StreamState

ANSWER_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta",
                           "response.function_call_arguments.delta"})
REASONING_DELTAS = frozenset({"response.reasoning_text.delta",
                              "response.reasoning_summary_text.delta"})
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
# incomplete_details.reason -> the chat finish reason it is (others are kept as they are).
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def read_response_event(event: Any) -> Event:
    """What one streamed Responses event says, as chunks.Event; it never raises."""
    if not isinstance(event, dict):
        return Event(invalid="an event is not a JSON object")
    kind = event.get("type")
    if not isinstance(kind, str):
        return Event(invalid="an event has no type: not a Responses API stream")
    if kind in ANSWER_DELTAS or kind in REASONING_DELTAS:
        key = "content" if kind in ANSWER_DELTAS else "reasoning_content"
        delta = event.get("delta")
        return read_event({"choices": [{"delta": {key: delta if isinstance(delta, str) else ""}}]})
    if kind == "error":
        return Event(error=error_message(event.get("error") or event) or "an error event")
    if kind in TERMINAL:
        return read_response(event.get("response"), whole=False)
    return Event()


def read_response(response: Any, whole: bool = True) -> Event:
    """What a whole response object (a non-streamed answer, or with `whole` False a terminal
    event's `response`, whose text the deltas already brought) says: its status as a finish
    reason, its usage, its text, its error; it never raises."""
    if not isinstance(response, dict):
        return Event(invalid="the answer is not a Responses API response object")
    status = response.get("status")
    if status == "failed" or response.get("error"):
        message = error_message(response.get("error") or "the response failed")
        return Event(error=f"response.failed: {message}")
    usage = response.get("usage")
    text = _text(response.get("output")) if whole else ""
    chat: dict[str, Any] = {"choices": [{"message": {"content": text},
                                         "finish_reason": _finish(status, response)}]}
    if isinstance(usage, dict):
        chat["usage"] = {"prompt_tokens": usage.get("input_tokens"),
                         "completion_tokens": usage.get("output_tokens")}
        details = usage.get("output_tokens_details")
        if isinstance(details, dict) and "reasoning_tokens" in details:
            # Chat's completion_tokens_details, as read_event reads it (part of the output).
            chat["usage"]["completion_tokens_details"] = {
                "reasoning_tokens": details["reasoning_tokens"]}
    elif usage is not None:
        chat["usage"] = usage  # read_event says what is wrong with it
    return read_event(chat)


def _finish(status: Any, response: dict[str, Any]) -> str | None:
    if status == "completed":
        return "stop"
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        reason = reason if isinstance(reason, str) and reason else "incomplete"
        return INCOMPLETE_REASONS.get(reason, reason)
    return None if status is None else short(str(status), 40)  # in_progress, queued, ...


def _text(output: Any) -> str:
    """Whether the output items hold any text: the first piece of it ("" when none)."""
    for item in output if isinstance(output, list) else ():
        parts = item.get("content") if isinstance(item, dict) else None
        for part in parts if isinstance(parts, list) else ():
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str) and text:
                return text
    return ""


class ResponsesState(StreamState):
    """One Responses API answer, streamed or whole (see the module's docstring). A terminal
    event ends the reading, as [DONE] ends a chat stream."""

    fast_path = False

    def _read(self, answer: Any) -> Event:
        if self.whole:
            return read_response(answer)
        said = read_response_event(answer)
        if isinstance(answer, dict) and answer.get("type") in TERMINAL:
            self.done = True
        return said
