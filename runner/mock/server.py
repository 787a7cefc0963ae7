"""A simulated OpenAI-compatible endpoint with deterministic timing, for testing clients."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from aiohttp import web

from runner.mock.answers import Chunks
from runner.mock.clock import Clock, Stats
from runner.mock.endpoints import add_endpoints
from runner.mock.prefixcache import CAPACITY_BLOCKS, PrefixCache, prompt_words
from runner.mock.reasoning import answer_chunks, natural_length
from runner.mock.requests import ApiError, Job, json_body, parse_job, prompt_of
from runner.mock.tokenizer import count_tokens, tokenize_handler

READY_PREFIX = "mock-server listening on "  # what `runner mock-server` prints when serving
SHUTDOWN_GRACE_S = 1.0
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


@dataclass(frozen=True)
class MockConfig:
    """How the simulator answers: served models, timing (ms), natural answer length, key, and
    how many answers it serves at once (`max_streams`; None: no limit). Beyond max_streams a
    request waits in a FIFO queue and its timing (TTFT, then one token per ITL) starts when it
    leaves it, so the simulator's capacity is known: max_streams / (ttft + (tokens - 1) * itl)
    requests per second, the knee of a rate sweep."""

    models: tuple[str, ...] = ("mock-model",)
    ttft_ms: float = 50.0
    itl_ms: float = 10.0
    output_tokens: int = 128
    api_key: str | None = None
    max_streams: int | None = None
    reasoning_tokens: int = 0  # chat answers reason this long first (runner.mock.reasoning)
    tokens_per_word: float = 1.0  # the simulated tokenizer (runner.mock.tokenizer)
    tokenize: bool = True  # serve vLLM's POST /tokenize
    embedding_dim: int = 8  # floats per vector of /v1/embeddings (runner.mock.endpoints)
    prefix_cache_blocks: int = CAPACITY_BLOCKS  # see runner.mock.prefixcache; 0: no cache

    def __post_init__(self) -> None:
        if not self.models or not all(self.models):
            raise ValueError("models must be non-empty ids")
        if not (0 <= self.ttft_ms < math.inf and 0 <= self.itl_ms < math.inf):  # NaN fails too
            raise ValueError("ttft_ms and itl_ms must be finite and >= 0")
        if self.output_tokens < 1:
            raise ValueError("output_tokens must be >= 1")
        if not 1 <= self.embedding_dim <= 65536:
            raise ValueError("embedding_dim must be from 1 to 65536")
        if self.max_streams is not None and self.max_streams < 1:
            raise ValueError("max_streams must be >= 1")
        if self.reasoning_tokens < 0:
            raise ValueError("reasoning_tokens must be >= 0")
        if not 0 < self.tokens_per_word <= 100:
            raise ValueError("tokens_per_word must be > 0 and <= 100")
        if self.prefix_cache_blocks < 0:
            raise ValueError("prefix_cache_blocks must be >= 0")


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
        self.queue: asyncio.Semaphore | None = None  # max_streams: made in the event loop
        self.prefix_cache = PrefixCache(config.prefix_cache_blocks)

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

    async def metrics(self, request: web.Request) -> web.Response:
        if not self.config.prefix_cache_blocks:  # no cache: a server without metrics (404)
            raise web.HTTPNotFound()
        text = self.prefix_cache.exposition(self.config.models[0], self.stats.in_flight)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_json())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return web.json_response(self.stats.to_json())

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        limit = self.config.max_streams
        if limit is None:
            return await self._serve(request, chat)
        try:
            await request.read()  # before the queue: kept for _parse, and a client gone is known
        except ConnectionResetError:
            return web.Response()  # never delivered: the client left
        if self.queue is None:
            self.queue = asyncio.Semaphore(limit)  # FIFO: waiters are woken in arrival order
        async with self.queue:  # the answer's timing starts once it has a stream
            if request.transport is None or request.transport.is_closing():
                self.stats.disconnected += 1  # it left while queued: its turn passes on
                return web.Response()
            return await self._serve(request, chat)

    async def _serve(self, request: web.Request, chat: bool) -> web.StreamResponse:
        start = asyncio.get_running_loop().time()
        stats = self.stats
        stats.total += 1
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
        chunks = answer_chunks(job, self.config.reasoning_tokens)
        if job.stream:
            self.stats.streaming += 1
            return await self._stream(request, chunks, start)
        await self._sleep_until(start + self.first_s + (job.tokens - 1) * self.step_s, job)
        return web.json_response(chunks.answer())

    async def _parse(self, request: web.Request, chat: bool) -> Job:
        self._check_key(request)
        body = await json_body(request)
        model = body.get("model")
        if not isinstance(model, str):
            raise ApiError(400, "'model' is required: a string", "model")
        prompt = prompt_of(body, chat)
        if model not in self.config.models:
            raise ApiError(404, f"The model `{model}` does not exist.", "model",
                           "model_not_found")
        natural = natural_length(self.config.output_tokens, self.config.reasoning_tokens, chat)
        job = parse_job(body, chat, model, prompt, natural)
        if self.config.prefix_cache_blocks:  # off: no cost on the hot path
            self.prefix_cache.lookup(prompt_words(prompt))
        return replace(job, prompt_tokens=count_tokens(prompt, self.config.tokens_per_word))

    def _check_key(self, request: web.Request) -> None:
        key = self.config.api_key
        if key is None:
            return
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            raise ApiError(401, "Incorrect or missing API key.", None, "invalid_api_key")

    async def _stream(self, request: web.Request, chunks: Chunks,
                      start: float) -> web.StreamResponse:
        response = web.StreamResponse(headers=_SSE_HEADERS)
        await response.prepare(request)
        stream = chunks.stream(request, start + self.first_s, self.step_s)
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

    async def _sleep_until(self, target: float, job: Job) -> None:
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
    if config.tokenize:
        app.router.add_post("/tokenize", tokenize_handler(sim._check_key, config.models,
                                                          config.tokens_per_word))
    add_endpoints(app, sim)  # /v1/embeddings, /v1/responses
    app.router.add_get("/metrics", sim.metrics)
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
