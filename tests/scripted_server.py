"""An OpenAI-compatible server on 127.0.0.1 that plays a script, so a test knows the truth.

Every inference request gets the same answer: SSE events written at set times after the
request arrived (the true TTFT is the time of the first event with text), or one JSON body
when the request says `"stream": false`. It lists `models` on /v1/models, so `runner apply`
can use it too. It runs in a thread of the test process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from served import serving_http


@dataclass
class Script:
    """`events`: (ms after the request arrived, JSON value or "[DONE]"), written compact or
    with json.dumps' spaces; `body`: the non-streamed answer."""

    events: Sequence[tuple[float, Any]]
    body: Any = None
    compact: bool = True
    models: Sequence[str | dict[str, Any]] = ("m",)  # ids, or whole /v1/models entries
    received: list[dict[str, Any]] = field(default_factory=list)
    # time.perf_counter() (the client's clock too) when each request arrived and its answer ended
    arrived: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)
    # Requests after this many answer 500 with an OpenAI error: a server failing half-way.
    fail_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # added to every streamed answer

    def write(self, value: Any) -> bytes:
        if value == "[DONE]":
            return b"data: [DONE]\n\n"
        text = json.dumps(value, separators=(",", ":") if self.compact else None)
        return f"data: {text}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args: Any) -> None:  # quiet
        return None

    def do_GET(self) -> None:
        data = [m if isinstance(m, dict) else {"id": m, "object": "model"}
                for m in self.script.models]
        self._json({"object": "list", "data": data})

    def do_POST(self) -> None:
        start = time.perf_counter()
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.script.received.append(request)
        self.script.arrived.append(start)
        if self.script.fail_after is not None and \
                len(self.script.arrived) > self.script.fail_after:
            self._json({"error": {"message": "engine died", "type": "server_error"}}, 500)
            return
        if request.get("stream") is False:
            self._json(self.script.body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        for name, value in self.script.headers.items():
            self.send_header(name, value)
        self.end_headers()
        for at_ms, value in self.script.events:
            time.sleep(max(0.0, start + at_ms / 1e3 - time.perf_counter()))
            self.wfile.write(self.script.write(value))
        self.wfile.flush()
        self.script.ended.append(time.perf_counter())

    def _json(self, value: Any, status: int = 200) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def scripted_server(script: Script) -> Iterator[str]:
    """Serve `script` on a free loopback port; yields the base URL."""
    with serving_http(type("Handler", (_Handler,), {"script": script})) as url:
        yield url
