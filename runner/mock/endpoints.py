"""The simulator's embeddings (POST /v1/embeddings) and Responses API (POST /v1/responses).

Embeddings: one deterministic vector of `MockConfig.embedding_dim` floats per input (from a
hash of its text, unit length), `usage.prompt_tokens` the words of every input
(requests.count_prompt_tokens), answered after ttft_ms; `encoding_format: base64` gives
OpenAI's little-endian float32 bytes in base64. Responses: the answer chat would give (its
length from max_output_tokens, min_tokens and ignore_eos, as chat's from max_tokens), as
OpenAI's Responses events when streamed (response.created, output_item.added and
content_part.added at arrival; one response.output_text.delta per token, every one the same
bytes, so the deltas carry no sequence_number; then output_text.done, content_part.done,
output_item.done and response.completed, or response.incomplete with reason
max_output_tokens when the limit cut it; no [DONE]) or as the response object; with
reasoning_tokens, the first ones as response.reasoning_text.delta events (a `reasoning` output
item when not streamed) and usage output_tokens_details.reasoning_tokens, as chat reasons.
Neither waits in the max_streams queue."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import math
import random
import struct
import time
from typing import Any

from aiohttp import web

from runner.mock.answers import TOKEN_TEXT
from runner.mock.clock import Stream
from runner.mock.reasoning import REASONING_TEXT, ReasoningStream, natural_length
from runner.mock.requests import ApiError, Job, count_prompt_tokens, json_body, parse_job

_ids = itertools.count(1)


def embedding(text: str, dim: int) -> list[float]:
    """A deterministic unit vector of `dim` floats for `text`: uniform draws of a generator
    seeded by the text's blake2b (one hash per vector, not per float: a hash per float made a
    batch of 16 vectors of 1024 floats cost ~10 ms per input, which the E2E latency showed)."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    draw = random.Random(seed).random
    raw = [draw() * 2.0 - 1.0 for _ in range(dim)]
    norm = math.sqrt(math.fsum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def _inputs(body: dict[str, Any]) -> list[Any]:
    value = body.get("input")
    items = value if isinstance(value, list) and value and not all(
        isinstance(x, int) for x in value) else [value]
    if not all(isinstance(x, str | list) and x for x in items):
        raise ApiError(400, "'input' must be a non-empty string, or a list of them", "input")
    return items


def embeddings_answer(body: dict[str, Any], model: str, dim: int) -> dict[str, Any]:
    """The embeddings answer to `body` (an ApiError for a bad `input` or encoding_format)."""
    items = _inputs(body)
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise ApiError(400, "'encoding_format' must be float or base64", "encoding_format")
    data = []
    for index, item in enumerate(items):
        vector: Any = embedding(json.dumps(item), dim)
        if encoding == "base64":
            vector = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = count_prompt_tokens(items)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


class ResponseEvents:
    """One Responses answer's events, as answers.Chunks is a chat answer's: `opening()` at
    arrival, `token` per output token, `trailer` at the end; `answer()` when not streamed."""

    def __init__(self, job: Job, reasoning: int = 0) -> None:
        self.job, self.reasoning = job, min(reasoning, job.tokens)
        number = next(_ids)
        self.id, self.item = f"resp_mock{number}", f"msg_mock{number}"
        self.seq = itertools.count()
        self.token = _event("response.output_text.delta", item_id=self.item, output_index=0,
                            content_index=0, delta=TOKEN_TEXT, logprobs=[])
        self.thought = _event("response.reasoning_text.delta", item_id=f"rs_mock{number}",
                              output_index=0, content_index=0, delta=REASONING_TEXT)
        self._opening = self._first_events()
        text = TOKEN_TEXT * (job.tokens - self.reasoning)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        final = self.response(self._status(), [self._message(text, "completed")])
        self.trailer = b"".join([
            self._numbered("response.output_text.done", item_id=self.item, output_index=0,
                           content_index=0, text=text, logprobs=[]),
            self._numbered("response.content_part.done", item_id=self.item, output_index=0,
                           content_index=0, part=part),
            self._numbered("response.output_item.done", output_index=0,
                           item=self._message(text, "completed")),
            self._numbered(f"response.{self._status()}", response=final)])

    def opening(self) -> bytes:
        """Sent at arrival: the response, its message item and its text part begin."""
        return self._opening

    def stream(self, request: web.Request, first: float, step: float) -> Stream:
        """The token schedule of this answer to `request`: token k due at first + k*step."""
        if self.reasoning:
            return ReasoningStream(request, self, first, step)
        return Stream(request, self.token, self.trailer, self.job.tokens, first, step)

    def _first_events(self) -> bytes:
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return b"".join([
            self._numbered("response.created", response=self.response("in_progress", [])),
            self._numbered("response.output_item.added", output_index=0,
                           item=self._message("", "in_progress")),
            self._numbered("response.content_part.added", item_id=self.item, output_index=0,
                           content_index=0, part=part)])

    def answer(self) -> dict[str, Any]:
        """The non-streamed answer: the response object."""
        text = TOKEN_TEXT * (self.job.tokens - self.reasoning)
        thought = [{"type": "reasoning", "id": self.item.replace("msg", "rs"), "summary": [],
                    "content": [{"type": "reasoning_text",
                                 "text": REASONING_TEXT * self.reasoning}]}]
        return self.response(self._status(), [*(thought if self.reasoning else []),
                                              self._message(text, "completed")])

    def response(self, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        done = status != "in_progress"
        prompt, tokens = self.job.prompt_tokens, self.job.tokens
        usage = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": tokens,
                 "output_tokens_details": {"reasoning_tokens": self.reasoning},
                 "total_tokens": prompt + tokens}
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {"id": self.id, "object": "response", "created_at": int(time.time()),
                "status": status, "model": self.job.model, "output": output, "error": None,
                "incomplete_details": incomplete, "usage": usage if done else None}

    def _status(self) -> str:
        return "incomplete" if self.job.finish_reason == "length" else "completed"

    def _message(self, text: str, status: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        return {"type": "message", "id": self.item, "status": status, "role": "assistant",
                "content": content if text else []}

    def _numbered(self, kind: str, **fields: Any) -> bytes:
        return _event(kind, sequence_number=next(self.seq), **fields)


def _event(kind: str, **fields: Any) -> bytes:
    data = json.dumps({"type": kind, **fields}, separators=(",", ":")).encode()
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def responses_job(body: dict[str, Any], model: str, natural: int) -> Job:
    """The answer a Responses request asks for: chat's, max_output_tokens as max_tokens."""
    value = body.get("input")
    if not (isinstance(value, str | list) and value):
        raise ApiError(400, "'input' must be a non-empty string or a list of input items",
                       "input")
    asked = {k: v for k, v in body.items() if k not in ("max_tokens", "stream_options")}
    asked["max_tokens"] = body.get("max_output_tokens")
    return parse_job(asked, True, model, value, natural)


class Endpoints:
    """The two handlers, on the simulator (server._Simulator) they share a config and stats
    with."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        start = asyncio.get_running_loop().time()
        try:
            body, model = await self._read(request)
            answer = embeddings_answer(body, model, self.sim.config.embedding_dim)
        except ApiError as err:
            self.sim.stats.answered(err.status)
            return err.response()
        self.sim.stats.answered(200)
        self.sim.stats.total += 1
        await _sleep_until(start + self.sim.first_s)
        return web.json_response(answer)

    async def responses(self, request: web.Request) -> web.StreamResponse:
        start = asyncio.get_running_loop().time()
        sim = self.sim
        try:
            body, model = await self._read(request)
            reasoning = sim.config.reasoning_tokens
            job = responses_job(body, model, natural_length(sim.config.output_tokens,
                                                            reasoning, True))
        except ApiError as err:
            sim.stats.answered(err.status)
            return err.response()
        sim.stats.answered(200)
        sim.stats.total += 1
        events = ResponseEvents(job, reasoning)
        if job.stream:
            sim.stats.streaming += 1
            response: web.StreamResponse = await sim._stream(request, events, start)
            return response
        await sim._sleep_until(start + sim.first_s + (job.tokens - 1) * sim.step_s, job)
        return web.json_response(events.answer())

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], str]:
        self.sim._check_key(request)
        body = await json_body(request)
        model = body.get("model")
        if not isinstance(model, str):
            raise ApiError(400, "'model' is required: a string", "model")
        if model not in self.sim.config.models:
            raise ApiError(404, f"The model `{model}` does not exist.", "model",
                           "model_not_found")
        return body, model


async def _sleep_until(target: float) -> None:
    delay = target - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


def add_endpoints(app: web.Application, sim: Any) -> None:
    """Route /v1/embeddings and /v1/responses of `app` to `sim`'s handlers."""
    handlers = Endpoints(sim)
    app.router.add_post("/v1/embeddings", handlers.embeddings)
    app.router.add_post("/v1/responses", handlers.responses)
