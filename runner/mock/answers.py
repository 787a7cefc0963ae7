"""The simulator's answers: one request's SSE events, encoded once, and its non-streamed body."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from aiohttp import web

from runner.mock.clock import Stream
from runner.mock.requests import Job

TOKEN_TEXT = "tok "  # every output token is this word, one content chunk each
DONE = b"data: [DONE]\n\n"


class Chunks:
    """One request's SSE events, encoded once; every token event is the same bytes."""

    _ids = itertools.count(1)

    def __init__(self, job: Job) -> None:
        self.job = job
        kind = "chat.completion" if job.chat else "text_completion"
        self.head = {"id": f"{'chatcmpl' if job.chat else 'cmpl'}-mock-{next(self._ids)}",
                     "object": f"{kind}.chunk" if job.chat else kind,
                     "created": int(time.time()), "model": job.model}
        if job.include_usage:
            self.head["usage"] = None  # OpenAI marks every chunk so when usage is asked for
        self.token = self._event(self._choice(TOKEN_TEXT, None))
        end = [self._event(self._choice(None, job.finish_reason))]
        if job.include_usage:
            end.append(self._event(None, usage=self.usage()))
        self.trailer = b"".join([*end, DONE])

    def opening(self) -> bytes:
        """Sent at arrival: chat's role-only chunk (as vLLM does); for completions no event."""
        if not self.job.chat:
            return b""  # still flushes the headers, as real servers do at once
        choice = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                  "finish_reason": None}
        return self._event(choice)

    def stream(self, request: web.Request, first: float, step: float) -> Stream:
        """The token schedule of this answer to `request`: token k due at first + k*step."""
        return Stream(request, self.token, self.trailer, self.job.tokens, first, step)

    def usage(self) -> dict[str, Any]:
        prompt, completion = self.job.prompt_tokens, self.job.tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def answer(self) -> dict[str, Any]:
        """The non-streaming body."""
        text = TOKEN_TEXT * self.job.tokens
        choice: dict[str, Any] = {"index": 0, "logprobs": None,
                                  "finish_reason": self.job.finish_reason}
        if self.job.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        head = {**self.head, "object": "chat.completion" if self.job.chat else "text_completion"}
        return {**head, "choices": [choice], "usage": self.usage()}

    def _choice(self, text: str | None, finish: str | None) -> dict[str, Any]:
        if self.job.chat:
            delta = {} if text is None else {"content": text}
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}

    def _event(self, choice: dict[str, Any] | None, **extra: Any) -> bytes:
        data = {**self.head, "choices": [choice] if choice else [], **extra}
        return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
