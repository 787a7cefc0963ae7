"""A Prometheus exporter on 127.0.0.1 that answers as a test tells it: a sequence of expositions
(one per scrape, the last repeated), or a failure (a status, a stall, garbage, a huge or a
trickled answer). It runs in a thread of the test process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from served import serving_http


@dataclass
class Exporter:
    """`texts`: the answers, in order; `status`: answered instead when not 200; `stall_s`:
    wait this long before answering; `trickle_s`: pause between the body's bytes."""

    texts: Sequence[str] = ("up 1\n",)
    status: int = 200
    stall_s: float = 0.0
    trickle_s: float = 0.0
    hits: list[dict[str, str]] = field(default_factory=list)  # the headers of each scrape
    closing: threading.Event = field(default_factory=threading.Event)

    def answer(self) -> bytes:
        text = self.texts[min(len(self.hits) - 1, len(self.texts) - 1)]
        return text.encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    exporter: Exporter

    def do_GET(self) -> None:
        ex = self.exporter
        ex.hits.append(dict(self.headers))
        if ex.stall_s and ex.closing.wait(ex.stall_s):
            return
        body = ex.answer() if ex.status == 200 else b"no"
        self.send_response(ex.status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if not ex.trickle_s:
                self.wfile.write(body)
                return
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if ex.closing.wait(ex.trickle_s):
                    return
        except OSError:  # the scraper gave up and closed: that is the point
            pass

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def fake_exporter(exporter: Exporter) -> Iterator[str]:
    """Serve `exporter`; yields its metrics URL (http://127.0.0.1:PORT/metrics)."""
    handler = type("Handler", (_Handler,), {"exporter": exporter})
    with serving_http(handler, on_close=exporter.closing.set) as url:
        yield f"{url}/metrics"


def exposition(generated: float, waiting: float = 0, running: float = 1,
               kv: float = 0.5) -> str:
    """A small vLLM-like exposition with the given values."""
    return (
        "# HELP vllm:num_requests_running Requests in the batch.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f'vllm:num_requests_running{{model_name="tiny"}} {running}\n'
        "# TYPE vllm:num_requests_waiting gauge\n"
        f'vllm:num_requests_waiting{{model_name="tiny"}} {waiting}\n'
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        f'vllm:kv_cache_usage_perc{{model_name="tiny"}} {kv}\n'
        "# TYPE vllm:generation_tokens counter\n"
        f'vllm:generation_tokens_total{{model_name="tiny"}} {generated}\n'
        "# TYPE other_thing_seconds gauge\n"
        f"other_thing_seconds {time.time() % 1000:.3f}\n")
