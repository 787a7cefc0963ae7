"""A small OpenAI-compatible server that says hostile things, on 127.0.0.1 in a thread.

It lists the model ids it is given (control characters and all), streams a short answer for
each, and lets a test choose per model what goes wrong: a finish reason or an HTTP error whose
message the test writes (terminal escapes, an echoed key: `{key}` in a message or a finish
reason is replaced by the bearer token the request carried)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from served import serving_http


@dataclass
class Script:
    """What the server answers: the ids of /v1/models, and per model a finish reason or an
    error (status, message); `models_error` makes /v1/models itself fail that way."""

    ids: list[str]
    finish: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    models_error: tuple[int, str] | None = None
    seen_keys: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args: Any) -> None:  # quiet
        return None

    def do_GET(self) -> None:
        self.script.seen_keys.append(self.headers.get("Authorization", ""))
        if self.path.rstrip("/").endswith("/v1/models"):
            if self.script.models_error:
                self._error(*self.script.models_error)
            else:
                self._json(200, {"object": "list",
                                 "data": [{"id": i, "object": "model"} for i in self.script.ids]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        model = body.get("model", "")
        if model in self.script.errors:
            self._error(*self.script.errors[model])
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for text in ("Hello", " there"):
            self._event({"choices": [{"index": 0, "delta": {"content": text}}]})
        reason = self._echo(self.script.finish.get(model, "stop"))
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
        self._event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
        self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, obj: Any) -> None:
        self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")

    def _echo(self, text: str) -> str:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        return text.replace("{key}", token)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": {"message": self._echo(message), "type": "hostile"}})

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def hostile_server(script: Script) -> Iterator[str]:
    """Serve `script` on a free loopback port; yields the base URL."""
    with serving_http(type("Handler", (_Handler,), {"script": script})) as url:
        yield url
