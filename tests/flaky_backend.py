"""An OpenAI-compatible backend on 127.0.0.1 that fails its first calls with 500 and counts
every call, so a test knows how often a gateway in front of it really called it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from served import serving_http


@dataclass
class Backend:
    """`fail_first`: how many calls (counted from the first) answer 500; `calls`: every
    chat call received, in order (its JSON body)."""

    fail_first: int = 0
    text: str = "hello there"
    gap_s: float = 0.005  # between streamed chunks: a steady pace, as an engine streams
    headers: dict[str, str] = field(default_factory=dict)  # added to every answer
    calls: list[dict[str, Any]] = field(default_factory=list)
    call_headers: list[dict[str, str]] = field(default_factory=list)  # each call's headers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: dict[str, Any]) -> tuple[int, list[bytes], str]:
        with self.lock:
            self.calls.append(request)
            failing = len(self.calls) <= self.fail_first
        if failing:
            body = {"error": {"message": "backend failed on purpose", "type": "server_error"}}
            return 500, [json.dumps(body).encode()], "application/json"
        if request.get("stream") is not True:
            return 200, [json.dumps(_completion(self.text)).encode()], "application/json"
        return 200, _events(self.text), "text/event-stream"


def _usage(text: str) -> dict[str, int]:
    words = len(text.split())  # one token per word, one word per chunk
    return {"prompt_tokens": 3, "completion_tokens": words, "total_tokens": 3 + words}


def _completion(text: str) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": _usage(text)}


def _events(text: str) -> list[bytes]:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    words = [f" {w}" if i else w for i, w in enumerate(text.split())]
    chunks = [
        *({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": w}}]}
          for w in words),
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": _usage(text)},
    ]
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


class _Handler(BaseHTTPRequestHandler):
    backend: Backend

    def log_message(self, *args: Any) -> None:  # quiet
        return None

    def do_GET(self) -> None:
        self._send(200, [json.dumps({"object": "list", "data": []}).encode()],
                   "application/json")

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.backend.call_headers.append({k.lower(): v for k, v in self.headers.items()})
        self._send(*self.backend.answer(request))

    def _send(self, status: int, parts: list[bytes], content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(map(len, parts))))
        for name, value in self.backend.headers.items():
            self.send_header(name, value)
        self.end_headers()
        for i, part in enumerate(parts):
            if i:
                time.sleep(self.backend.gap_s)
            self.wfile.write(part)
            self.wfile.flush()


@contextmanager
def flaky_backend(backend: Backend) -> Iterator[str]:
    """Serve `backend` on a free loopback port; yields its base URL (with /v1)."""
    with serving_http(type("Handler", (_Handler,), {"backend": backend})) as url:
        yield f"{url}/v1"
