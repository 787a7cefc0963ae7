"""`runner mock-server`: serve the simulated OpenAI-compatible endpoint until SIGTERM or SIGINT
(only SIGTERM for the child of a runner, see runner.mock.process.CHILD_ENV)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Mapping

from runner.errors import EXIT_OK, UsageError
from runner.mock.clock import new_event_loop
from runner.mock.process import CHILD_ENV, die_with_parent, watch_parent
from runner.mock.server import READY_PREFIX, MockConfig, serving


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = build_config(args, env)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, not {args.port}")
    child = bool(env.get(CHILD_ENV))
    stop_on = (signal.SIGTERM,) if child else (signal.SIGINT, signal.SIGTERM)
    if child:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        die_with_parent(env)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve(config, args.host, args.port, stop_on, child))
    return EXIT_OK


def build_config(args: argparse.Namespace, env: Mapping[str, str]) -> MockConfig:
    """The simulator's config from the command line; bad values are a UsageError."""
    key = args.api_key
    if args.api_key_env is not None:
        key = env.get(args.api_key_env)
        if not key or not key.strip():
            state = "is not set" if key is None else "is empty"
            raise UsageError(f"--api-key-env: ${args.api_key_env} {state}: put the key in it")
        key = key.strip()  # as runner's clients read it: a file's trailing newline is no part
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    try:
        return MockConfig(models, args.ttft_ms, args.itl_ms, args.output_tokens, key,
                          max_streams=args.max_streams, reasoning_tokens=args.reasoning_tokens,
                          tokens_per_word=args.tokens_per_word, tokenize=not args.no_tokenize,
                          embedding_dim=args.embedding_dim,
                          prefix_cache_blocks=args.prefix_cache_blocks)
    except ValueError as exc:
        raise UsageError(f"mock-server: {exc}") from None


async def _serve(config: MockConfig, host: str, port: int,
                 stop_on: tuple[signal.Signals, ...], child: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in stop_on:
        loop.add_signal_handler(signum, stop.set)
    if child:  # the runner that started us is gone once our stdin ends
        watch_parent(stop.set)
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(serving(config, host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        print(f"{READY_PREFIX}{url}", flush=True)
        await stop.wait()
