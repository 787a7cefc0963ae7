"""The simulator's reading of a request: its body, the answer it asks for, and OpenAI's error
shape for what it refuses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

_T = TypeVar("_T")


def count_prompt_tokens(prompt: object) -> int:
    """The prompt-length estimate: whitespace-separated words of every text; a token id is 1."""
    if isinstance(prompt, str):
        return len(prompt.split())
    if isinstance(prompt, int):
        return 1
    if isinstance(prompt, list):
        return sum(count_prompt_tokens(item) for item in prompt)
    if isinstance(prompt, dict):  # a chat message, or a content part such as {"type": "text"}
        return count_prompt_tokens(prompt.get("content", prompt.get("text")))
    return 0


class ApiError(Exception):
    """A request the simulator refuses, answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code

    def response(self) -> web.Response:
        error = {"message": str(self), "type": "invalid_request_error", "param": self.param,
                 "code": self.code}
        return web.json_response({"error": error}, status=self.status)


@dataclass(frozen=True)
class Job:
    """One parsed generation request."""

    chat: bool
    model: str
    stream: bool
    include_usage: bool
    tokens: int
    finish_reason: str
    prompt_tokens: int


def _field(body: dict[str, Any], name: str, kind: type[_T], default: _T) -> _T:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, f"'{name}' must be of type {kind.__name__}", name)
    return value


def _positive(body: dict[str, Any], name: str, default: int, least: int) -> int:
    value = _field(body, name, int, default)
    if value < least:
        raise ApiError(400, f"'{name}' must be >= {least}", name)
    return value


def _answer_length(body: dict[str, Any], natural: int) -> tuple[int, str]:
    """(output tokens, finish_reason) as a server with EOS after `natural` tokens answers."""
    newer = body.get("max_completion_tokens") is not None  # wins over max_tokens, as in vLLM
    name = "max_completion_tokens" if newer else "max_tokens"
    wanted = max(natural, _positive(body, "min_tokens", 0, 0))
    ignore_eos = _field(body, "ignore_eos", bool, False)
    if body.get(name) is None:  # no limit: as long as the answer wants ("length" if it never ends)
        return wanted, "length" if ignore_eos else "stop"
    limit = _positive(body, name, natural, 1)
    length = limit if ignore_eos else min(limit, wanted)
    return length, "length" if length == limit else "stop"


def prompt_of(body: dict[str, Any], chat: bool) -> object:
    name = "messages" if chat else "prompt"
    value = body.get(name)
    if chat and not (isinstance(value, list) and value
                     and all(isinstance(m, dict) and isinstance(m.get("role"), str)
                             for m in value)):
        raise ApiError(400, "'messages' must be a non-empty list of messages with a role", name)
    if not chat and not isinstance(value, str | list):
        raise ApiError(400, "'prompt' is required: a string or a list", name)
    return value


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise ApiError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def parse_job(body: dict[str, Any], chat: bool, model: str, prompt: object, natural: int) -> Job:
    if _field(body, "n", int, 1) != 1:
        raise ApiError(400, "the simulator answers with n=1 only", "n")
    tokens, finish = _answer_length(body, natural)
    options = _field(body, "stream_options", dict, {})
    return Job(chat, model, _field(body, "stream", bool, False),
                bool(options.get("include_usage")), tokens, finish, count_prompt_tokens(prompt))
