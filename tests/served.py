"""What the tests' real servers (LiteLLM proxy, vLLM engine) share: a process with a log file,
stopped by a signal, and a bounded wait until it answers."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
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
