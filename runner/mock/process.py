"""The simulator in its own process: started on a free port, its URL read, stopped on exit,
and never outliving the runner that started it, however that runner ends (kill -9 included)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO

from runner.mock.server import READY_PREFIX, MockConfig

API_KEY_ENV = "RUNNER_MOCK_API_KEY"  # how `mock_process` hands the key to its child
# Set for a child of `mock_process`: it ignores SIGINT. Ctrl-C reaches the whole foreground
# process group; the runner's first signal gives in-flight requests a grace period, which a
# simulator that died on the same SIGINT would turn into connection errors. The runner stops
# its child itself (SIGTERM), and a SIGTERM to the group still ends both.
CHILD_ENV = "RUNNER_MOCK_CHILD"
# The runner's pid, set when it started the child from its main thread: Linux's parent-death
# signal fires when the *thread* that forked exits, so from another thread it would stop the
# simulator early; the stdin pipe (see watch_parent) covers every case anyway.
PARENT_ENV = "RUNNER_MOCK_PARENT"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def mock_process_argv(config: MockConfig, host: str) -> list[str]:
    """The command line of a simulator process (its key travels in $RUNNER_MOCK_API_KEY)."""
    if any("," in model for model in config.models):
        raise ValueError("model ids passed to `runner mock-server` cannot contain commas")
    argv = [sys.executable, "-m", "runner", "mock-server", "--host", host, "--port", "0",
            "--models=" + ",".join(config.models), "--ttft-ms", repr(config.ttft_ms),
            "--itl-ms", repr(config.itl_ms), "--output-tokens", str(config.output_tokens)]
    argv += ["--embedding-dim", str(config.embedding_dim)]
    if config.prefix_cache_blocks:
        argv += ["--prefix-cache-blocks", str(config.prefix_cache_blocks)]
    if config.max_streams is not None:
        argv += ["--max-streams", str(config.max_streams)]
    argv += ["--reasoning-tokens", str(config.reasoning_tokens)] if config.reasoning_tokens else []
    argv += ["--tokens-per-word", repr(config.tokens_per_word)]
    argv += [] if config.tokenize else ["--no-tokenize"]
    return argv + (["--api-key-env", API_KEY_ENV] if config.api_key is not None else [])


@contextlib.contextmanager
def mock_process(config: MockConfig, host: str = "127.0.0.1",
                 startup_timeout_s: float = 15.0) -> Iterator[str]:
    """Run the simulator in its own process; yields its base URL, stops it on exit."""
    env = {**os.environ, CHILD_ENV: "1"}
    env.pop(PARENT_ENV, None)
    if threading.current_thread() is threading.main_thread():
        env[PARENT_ENV] = str(os.getpid())
    if config.api_key is not None:
        env[API_KEY_ENV] = config.api_key
    with tempfile.TemporaryFile() as stderr:
        # stdin: a pipe whose writing end only this process holds (not inheritable), never
        # written; the child reads EOF from it once this process is gone.
        proc = subprocess.Popen(mock_process_argv(config, host), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=stderr, env=env)
        try:
            url = _read_url(proc, time.monotonic() + startup_timeout_s)
            if url is None:
                _stop(proc)
                raise RuntimeError(f"mock-server did not start: {_tail(stderr)}")
            yield url
        finally:
            _stop(proc)


def die_with_parent(env: Mapping[str, str]) -> None:
    """In a child of `mock_process` on Linux: ask the kernel for SIGTERM when the runner that
    started it dies (kill -9 included); if it is already gone, SIGTERM now. Elsewhere, or when
    the runner started it from another thread, `watch_parent` alone does the job."""
    parent = env.get(PARENT_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(parent):  # it died before the request: nobody will signal us
        os.kill(os.getpid(), signal.SIGTERM)


def watch_parent(stop: Callable[[], None]) -> None:
    """In a child of `mock_process`, in its event loop: call `stop` once stdin reaches EOF,
    which is when the runner that holds the pipe's other end has exited, however it ended."""
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop()

    loop.add_reader(fd, readable)


def _read_url(proc: subprocess.Popen[bytes], deadline: float) -> str | None:
    assert proc.stdout is not None
    fd, line = proc.stdout.fileno(), b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in line:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return None
            data = os.read(fd, 4096)
            if not data:
                return None
            line += data
    text = line.split(b"\n", 1)[0].decode(errors="replace")
    return text.removeprefix(READY_PREFIX) if text.startswith(READY_PREFIX) else None


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _tail(stream: IO[bytes], limit: int = 2000) -> str:
    stream.seek(0)
    text = stream.read().decode(errors="replace").strip()
    return text[-limit:] or "(no output on stderr)"
