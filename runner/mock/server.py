"""A simulated OpenAI-compatible endpoint with deterministic timing, for testing clients."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from runner.mock.clock import Clock, Stats, Stream

TOKEN_TEXT = "tok "  # every output token is this word, one content chunk each
READY_PREFIX = "mock-server listening on "  # what `runner mock-server` prints when serving
SHUTDOWN_GRACE_S = 1.0
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_DONE = b"data: [DONE]\n\n"
_T = TypeVar("_T")


@dataclass(frozen=True)
class MockConfig:
    """How the simulator answers: served models, timing (ms), natural answer length, key."""

    models: tuple[str, ...] = ("mock-model",)
    ttft_ms: float = 50.0
    itl_ms: float = 10.0
    output_tokens: int = 128
    api_key: str | None = None
    # at most this many answers at once; more wait in FIFO order before their TTFT starts, so a
    # closed loop's capacity is known (None: no limit)
    max_streams: int | None = None

    def __post_init__(self) -> None:
        if not self.models or not all(self.models):
            raise ValueError("models must be non-empty ids")
        if not (0 <= self.ttft_ms < math.inf and 0 <= self.itl_ms < math.inf):  # NaN fails too
            raise ValueError("ttft_ms and itl_ms must be finite and >= 0")
        if self.output_tokens < 1:
            raise ValueError("output_tokens must be >= 1")
        if self.max_streams is not None and self.max_streams < 1:
            raise ValueError("max_streams must be >= 1")


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
class _Job:
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


def _prompt(body: dict[str, Any], chat: bool) -> object:
    name = "messages" if chat else "prompt"
    value = body.get(name)
    if chat and not (isinstance(value, list) and value
                     and all(isinstance(m, dict) and isinstance(m.get("role"), str)
                             for m in value)):
        raise ApiError(400, "'messages' must be a non-empty list of messages with a role", name)
    if not chat and not isinstance(value, str | list):
        raise ApiError(400, "'prompt' is required: a string or a list", name)
    return value


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise ApiError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _job(body: dict[str, Any], chat: bool, model: str, prompt: object, natural: int) -> _Job:
    if _field(body, "n", int, 1) != 1:
        raise ApiError(400, "the simulator answers with n=1 only", "n")
    tokens, finish = _answer_length(body, natural)
    options = _field(body, "stream_options", dict, {})
    return _Job(chat, model, _field(body, "stream", bool, False),
                bool(options.get("include_usage")), tokens, finish, count_prompt_tokens(prompt))


class _Chunks:
    """One request's SSE events, encoded once; every token event is the same bytes."""

    _ids = itertools.count(1)

    def __init__(self, job: _Job) -> None:
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
        self.trailer = b"".join([*end, _DONE])

    def opening(self) -> bytes:
        """Sent at arrival: chat's role-only chunk (as vLLM does); for completions no event."""
        if not self.job.chat:
            return b""  # still flushes the headers, as real servers do at once
        choice = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                  "finish_reason": None}
        return self._event(choice)

    def usage(self) -> dict[str, int]:
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


class _Simulator:
    """The request handlers, sharing one config and one Stats."""

    def __init__(self, config: MockConfig) -> None:
        self.config, self.stats = config, Stats()
        self.first_s, self.step_s = config.ttft_ms / 1e3, config.itl_ms / 1e3
        created = int(time.time())
        data = [{"id": m, "object": "model", "created": created, "owned_by": "runner-mock"}
                for m in config.models]
        self.models_body = json.dumps({"object": "list", "data": data}).encode()
        self.clock: Clock | None = None  # made in the event loop, at the first stream
        limit = config.max_streams
        self.slots: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Semaphore(limit) if limit else contextlib.nullcontext())

    async def models(self, request: web.Request) -> web.Response:
        try:
            self._check_key(request)
        except ApiError as err:
            return err.response()
        return web.Response(body=self.models_body, content_type="application/json")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_json())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return web.json_response(self.stats.to_json())

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        stats = self.stats
        stats.total += 1
        async with self.slots:  # a FIFO queue when max_streams is set
            start = asyncio.get_running_loop().time()
            stats.in_flight += 1
            stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
            try:
                return await self._answer(request, chat, start)
            finally:
                stats.in_flight -= 1

    async def _answer(self, request: web.Request, chat: bool, start: float) -> web.StreamResponse:
        try:
            job = await self._parse(request, chat)
        except ApiError as err:
            self.stats.answered(err.status)
            return err.response()
        self.stats.answered(200)
        chunks = _Chunks(job)
        if job.stream:
            self.stats.streaming += 1
            return await self._stream(request, chunks, start)
        await self._sleep_until(start + self.first_s + (job.tokens - 1) * self.step_s, job)
        return web.json_response(chunks.answer())

    async def _parse(self, request: web.Request, chat: bool) -> _Job:
        self._check_key(request)
        body = await _json_body(request)
        model = body.get("model")
        if not isinstance(model, str):
            raise ApiError(400, "'model' is required: a string", "model")
        prompt = _prompt(body, chat)
        if model not in self.config.models:
            raise ApiError(404, f"The model `{model}` does not exist.", "model",
                           "model_not_found")
        return _job(body, chat, model, prompt, self.config.output_tokens)

    def _check_key(self, request: web.Request) -> None:
        key = self.config.api_key
        if key is None:
            return
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            raise ApiError(401, "Incorrect or missing API key.", None, "invalid_api_key")

    async def _stream(self, request: web.Request, chunks: _Chunks,
                      start: float) -> web.StreamResponse:
        response = web.StreamResponse(headers=_SSE_HEADERS)
        await response.prepare(request)
        stream = Stream(request, chunks.token, chunks.trailer, chunks.job.tokens,
                        start + self.first_s, self.step_s)
        try:
            await response.write(chunks.opening())  # a client must not take it for TTFT
            self._clock().add(stream)
            if await stream.done:
                await response.write_eof()
            else:
                self.stats.disconnected += 1
        except ConnectionResetError:  # the client went away mid-stream: not worth a traceback
            self.stats.disconnected += 1
        finally:
            stream.finish(False)
        return response

    async def close_streams(self, app: web.Application) -> None:
        if self.clock is not None:
            self.clock.close()

    def _clock(self) -> Clock:
        if self.clock is None:
            self.clock = Clock(self.stats)
        return self.clock

    async def _sleep_until(self, target: float, job: _Job) -> None:
        now = asyncio.get_running_loop().time()
        if target > now:
            await asyncio.sleep(target - now)
            now = asyncio.get_running_loop().time()
        self.stats.lag.add_schedule(now, target, 0.0, 0, 1)  # one sample per whole answer
        self.stats.tokens += job.tokens


def build_app(config: MockConfig) -> web.Application:
    """The simulator as an aiohttp application."""
    sim = _Simulator(config)
    app = web.Application()
    app.router.add_get("/v1/models", sim.models)
    app.router.add_post("/v1/chat/completions", sim.chat)
    app.router.add_post("/v1/completions", sim.completions)
    app.router.add_get("/mock/stats", sim.get_stats)
    app.router.add_post("/mock/stats/reset", sim.reset_stats)
    app.on_shutdown.append(sim.close_streams)
    return app


@contextlib.asynccontextmanager
async def serving(config: MockConfig, host: str = "127.0.0.1",
                  port: int = 0) -> AsyncIterator[str]:
    """Serve the simulator in the running event loop; yields its base URL (port 0: any free)."""
    app_runner = web.AppRunner(build_app(config), access_log=None, handle_signals=False,
                               shutdown_timeout=SHUTDOWN_GRACE_S)
    await app_runner.setup()
    try:
        site = web.TCPSite(app_runner, host, port, backlog=4096)
        await site.start()
        bound_port = app_runner.addresses[0][1]
        yield f"http://{f'[{host}]' if ':' in host else host}:{bound_port}"
    finally:
        await app_runner.cleanup()
