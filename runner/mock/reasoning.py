"""The simulator as a reasoning model (issue 14 §3): a chat answer streams its reasoning as
`delta.reasoning_content` chunks, one token each, before the answer, and its usage reports
`completion_tokens_details.reasoning_tokens`, as vLLM with a reasoning parser answers.

The reasoning tokens are generated tokens like the answer's: each takes one inter-token
latency, they count in completion_tokens, and max_tokens bounds reasoning and answer together
(a limit below the reasoning leaves no answer, finish_reason "length")."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from runner.mock.answers import TOKEN_TEXT, Chunks
from runner.mock.clock import Stream
from runner.mock.requests import Job

REASONING_TEXT = "think "  # every reasoning token is this word, one reasoning chunk each


def answer_chunks(job: Job, reasoning: int) -> Chunks:
    """`job`'s events: its first `reasoning` tokens (at most all of them) reasoning when it is
    a chat request; completions, which have no reasoning field, answer as before."""
    if reasoning <= 0 or not job.chat:
        return Chunks(job)
    return ReasoningChunks(job, min(reasoning, job.tokens))


def natural_length(output_tokens: int, reasoning: int, chat: bool) -> int:
    """A chat answer's natural length (tokens, as if EOS came there): reasoning, then answer."""
    return output_tokens + (reasoning if chat else 0)


class ReasoningChunks(Chunks):
    """A chat answer whose first `reasoning` tokens are reasoning."""

    def __init__(self, job: Job, reasoning: int) -> None:
        self.reasoning = reasoning
        super().__init__(job)
        self.thought = self._event({"index": 0, "delta": {"reasoning_content": REASONING_TEXT},
                                    "logprobs": None, "finish_reason": None})

    def usage(self) -> dict[str, Any]:
        return {**super().usage(),
                "completion_tokens_details": {"reasoning_tokens": self.reasoning}}

    def answer(self) -> dict[str, Any]:
        body = super().answer()
        message = body["choices"][0]["message"]
        answered = self.job.tokens - self.reasoning
        message["reasoning_content"] = REASONING_TEXT * self.reasoning
        message["content"] = TOKEN_TEXT * answered if answered else None
        return body

    def stream(self, request: web.Request, first: float, step: float) -> Stream:
        return ReasoningStream(request, self, first, step)


class Reasoned(Protocol):
    """An answer that reasons first: its token and reasoning events, its trailer, its job and
    how many of its tokens reason (ReasoningChunks; endpoints.ResponseEvents)."""

    token: bytes
    thought: bytes
    trailer: bytes
    job: Job
    reasoning: int


class ReasoningStream(Stream):
    """A stream whose first `reasoning` tokens are reasoning chunks."""

    def __init__(self, request: web.Request, chunks: Reasoned, first: float,
                 step: float) -> None:
        super().__init__(request, chunks.token, chunks.trailer, chunks.job.tokens, first, step)
        self.thought, self.reasoning = chunks.thought, chunks.reasoning

    def tokens(self, due: int) -> bytes:
        thinking = max(0, min(due, self.reasoning) - self.sent)
        return self.thought * thinking + self.token * (due - self.sent - thinking)
