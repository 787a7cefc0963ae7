"""What the tests' servers share: for the real ones (LiteLLM proxy, vLLM engine) a process with a
log file, stopped by a signal, and a bounded wait until it answers; for the small fake ones an
HTTP server on a loopback port in a thread."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx


class ServedProcess:
    """A server process the tests started (a dataclass below gives `process` and `log_path`)."""

    process: subprocess.Popen[bytes]
    log_path: Path
    STOP_SIGNAL: ClassVar[int] = signal.SIGTERM

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 10.0) -> None:
        """STOP_SIGNAL, then kill after `grace_s` seconds."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(self.STOP_SIGNAL)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(grace_s)


def wait_ready(served: ServedProcess, name: str, is_ready: Callable[[], bool], deadline_s: float,
               poll_s: float, on_exit: Callable[[], None] | None = None) -> None:
    """Poll `is_ready` (a refused or reset connection counts as not yet) every `poll_s` until
    it holds. Raises RuntimeError with the log's tail when the process exits first (`on_exit`
    may raise a more precise error) or `deadline_s` passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            if on_exit is not None:
                on_exit()
            raise RuntimeError(f"{name} exited with {served.process.returncode} before it was "
                               f"ready; log tail:\n{served.log_tail()}")
        try:
            if is_ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(poll_s)
    raise RuntimeError(f"{name} not ready after {deadline_s:g}s; log tail:\n{served.log_tail()}")


@contextmanager
def serving_http(handler: type[BaseHTTPRequestHandler],
                 on_close: Callable[[], None] | None = None) -> Iterator[str]:
    """Serve `handler` on a free loopback port from a thread (one thread per connection);
    yields the base URL http://127.0.0.1:PORT. On exit `on_close` runs first (e.g. to release
    a handler that is still streaming), then the server stops."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if on_close is not None:
            on_close()
        server.shutdown()
        server.server_close()
        thread.join(5)
