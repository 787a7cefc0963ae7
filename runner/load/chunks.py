"""What one event of an OpenAI-style answer says: text or not, finish reason, usage, error."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MESSAGE_LIMIT = 200
REASON_LIMIT = 40  # a finish reason is a word: "stop", "length", "tool_calls"...
_ERROR_DEPTH = 8  # {"error": {"error": ...}} levels followed to find a message
_MAX_TOKENS = 1 << 40  # a token count above this is a broken server, not a long answer
# The finish reasons of an answer that ended as the model meant it to (OpenAI's set, less
# content_filter: the provider withheld or cut the output, see README "Metrics").
FINISHED = frozenset({"stop", "length", "tool_calls", "function_call"})
# Keys of a delta (or a message) whose non-empty string is reasoning text: vLLM's reasoning
# parsers' and DeepSeek's `reasoning_content`, OpenRouter's and newer vLLM's `reasoning` (which
# LiteLLM 1.106 renames `reasoning_content`: llms/openai/chat/gpt_transformation.py).
REASONING_KEYS = ("reasoning_content", "reasoning")
_DETAIL_KEYS = ("text", "summary")  # reasoning_details entries: reasoning.text, reasoning.summary


def short(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line of at most `limit` characters (work bounded by `limit`, however long `text`)."""
    line = " ".join(text[: limit * 4].split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def error_message(error: Any) -> str:
    """The message of an OpenAI error object (`{"message": ...}`), or of any other value; at
    most MESSAGE_LIMIT characters, whatever the nesting (it never raises)."""
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


@dataclass(frozen=True, slots=True)
class Event:
    """What one parsed event (or a whole non-streamed answer) says.

    `text`: a choice carries generated text (the README's TTFT definition); `answer`: answer
    text, not only reasoning (content, refusal, tool-call arguments, completions text: the
    README's TTFO definition); `choices`: the event has a non-empty choices list, text or not
    (what vLLM's client counts as a chunk); `finish`: a finish reason, cut to REASON_LIMIT
    (with several choices, the first outside FINISHED wins); `unfinished`: that reason is
    outside FINISHED; token counts from `usage` (None: absent), reasoning tokens from its
    `completion_tokens_details.reasoning_tokens`; `error`: the message of a truthy `error`;
    `invalid`: what is not the OpenAI shape."""

    text: bool = False
    choices: bool = False
    finish: str | None = None
    unfinished: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    invalid: str | None = None
    answer: bool = False
    reasoning_tokens: int | None = None


PLAIN = Event(text=True, choices=True, answer=True)  # an answer chunk and nothing else
PLAIN_REASONING = Event(text=True, choices=True)  # a reasoning chunk and nothing else


def read_event(answer: Any) -> Event:
    """What the parsed JSON `answer` says. It never raises, and it looks at a string value only
    to ask whether it is empty, except for a finish reason and an error message, whose words
    are kept: the fast path (load.plain) rests on this."""
    if not isinstance(answer, dict):
        return Event(invalid="an event is not a JSON object")
    error = answer.get("error")
    usage = answer.get("usage")
    prompt, completion, reasoning, invalid = (_usage(usage) if usage
                                              else (None, None, None, None))
    choices = answer.get("choices")
    text, said, finish, unfinished, wrong = _choices(choices)
    return Event(text, text or (wrong is None and bool(choices)), finish, unfinished, prompt,
                 completion, error_message(error) if error else None, invalid or wrong, said,
                 reasoning)


def _usage(usage: Any) -> tuple[int | None, int | None, int | None, str | None]:
    """(prompt, completion, reasoning tokens, what is invalid) of a usage object; reasoning
    tokens are OpenAI's `completion_tokens_details.reasoning_tokens` (part of completion)."""
    if not isinstance(usage, dict):
        return None, None, None, "usage is not an object"
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    counts = (prompt, completion, reasoning)
    wrong = next((v for v in counts if type(v) is int and _count(v) is None), None)
    said = _count(prompt), _count(completion), _count(reasoning)
    if wrong is None:
        return *said, None
    return *said, f"a usage token count is out of range: {short(str(wrong), 24)}"


def _count(value: Any) -> int | None:
    """A token count: an int (not a bool) in range; other types are ignored, as if absent."""
    return value if type(value) is int and 0 <= value <= _MAX_TOKENS else None


def _choices(choices: Any) -> tuple[bool, bool, str | None, bool, str | None]:
    """(text, answer text, finish reason, whether it is outside FINISHED, what is invalid)."""
    if choices is None:
        return False, False, None, False, None
    if not isinstance(choices, list):
        return False, False, None, False, "choices is not a list"
    text = said = unfinished = False
    finish: str | None = None
    wrong: str | None = None
    for choice in choices:
        if not isinstance(choice, dict):
            return False, False, None, False, "a choice is not an object"
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            if not unfinished:
                finish, unfinished = short(reason, REASON_LIMIT), reason not in FINISHED
        elif reason:
            wrong = wrong or "a finish_reason is not a string"
        if not said:
            said = _has_answer(choice)
            text = text or said or _has_reasoning(choice)
    return text, said, finish, unfinished, wrong


def _delta(choice: dict[str, Any]) -> Any:
    delta = choice.get("delta")
    return choice.get("message") if delta is None else delta  # message: a non-streamed answer


def _has_answer(choice: dict[str, Any]) -> bool:
    """Whether a choice carries answer text (the README's TTFO definition): content (a string
    or text parts), a refusal, tool-call or function-call arguments, or a completion's text."""
    delta = _delta(choice)
    if not isinstance(delta, dict):
        text = choice.get("text")  # completions
        return isinstance(text, str) and text != ""
    content = delta.get("content")
    if (isinstance(content, str) and content) or _any_text(content, ("text",)):
        return True
    refusal, calls = delta.get("refusal"), delta.get("tool_calls")
    return ((isinstance(refusal, str) and refusal != "")
            or (isinstance(calls, list) and any(map(_has_arguments, calls)))
            or _has_arguments({"function": delta.get("function_call")}))


def _has_reasoning(choice: dict[str, Any]) -> bool:
    """Whether a chat choice carries reasoning text: `reasoning_content`, `reasoning` or
    `reasoning_details` entries' text or summary (together with answer text, the README's TTFT)."""
    delta = _delta(choice)
    if not isinstance(delta, dict):
        return False
    return (any(isinstance(v := delta.get(k), str) and v != "" for k in REASONING_KEYS)
            or _any_text(delta.get("reasoning_details"), _DETAIL_KEYS))


def _any_text(entries: Any, keys: tuple[str, ...]) -> bool:
    """Whether `entries` is a list holding an object with a non-empty string under `keys`."""
    if not isinstance(entries, list):
        return False
    for entry in entries:
        if isinstance(entry, dict):
            for key in keys:
                value = entry.get(key)
                if isinstance(value, str) and value:
                    return True
    return False


def _has_arguments(call: Any) -> bool:
    function = call.get("function") if isinstance(call, dict) else None
    return isinstance(function, dict) and bool(function.get("arguments"))
