"""A hostile HTTP server on 127.0.0.1, in its own process, for tests and benchmarks/hostile.py.

The first path segment picks the misbehaviour, with an optional size: `{url}/line~16000000`
is a base URL whose chat completions answer one 16 MB SSE line, whose /v1/models answer one
16 MB JSON document. Bodies are generated on the fly, never held whole in memory, so a 1 GiB
answer costs this process a few MB. Each case (`CASES`) answers POST (an inference request:
SSE, or JSON when the request asked `"stream": false`) and GET (/v1/models, /model/info).
Responses end by closing the connection (HTTP/1.1 with `Connection: close`).
Run: python tests/hostile_server.py   (prints `listening on URL`, serves until killed)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import subprocess
import sys
import urllib.request
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

CHUNK = 1 << 16
TOKEN = (b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,'
         b'"delta":{"content":"tok "},"finish_reason":null}]}\n\n')
FINISH = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}\n\n'
DONE = b"data: [DONE]\n\n"
MODELS = b'{"object":"list","data":[{"id":"m"}]}'
INFO = b'{"data":[{"model_name":"m","model_info":{"mode":"chat","max_input_tokens":8}}]}'


@dataclass
class Request:
    method: str
    case: str  # the first path segment without its size: "line", "gzip", ...
    size: int  # its size, or the case's default
    path: str  # the rest: "/v1/chat/completions", "/v1/models", "/model/info"
    stream: bool  # a POST's `stream` (true unless the body says false)


Body = AsyncIterator[bytes]


async def repeat(piece: bytes, total: int, chunk: int = CHUNK) -> Body:
    """`piece` repeated, about `total` bytes (whole pieces), in chunks of about `chunk` bytes."""
    count, per_block = total // len(piece), max(1, chunk // len(piece))
    block = piece * per_block
    while count > 0:
        yield block if count >= per_block else piece * count
        count -= per_block


async def forever(piece: bytes, pause_s: float = 0.0) -> Body:
    block = piece * max(1, CHUNK // len(piece)) if pause_s == 0 else piece
    while True:
        yield block
        await asyncio.sleep(pause_s)


async def then_silent(body: Body) -> Body:
    """`body`, then nothing more for an hour, the connection open."""
    async for chunk in body:
        yield chunk
    await asyncio.sleep(3600)


async def later(piece: bytes, pause_s: float = 0.1) -> Body:
    """`piece` after `pause_s`: the client has read what came before (a read of its own)."""
    await asyncio.sleep(pause_s)
    yield piece


def framed(piece: bytes) -> bytes:
    """`piece` as one chunk of HTTP/1.1 chunked transfer coding."""
    return b"%x\r\n%s\r\n" % (len(piece), piece)


async def parts(*pieces: bytes | Body) -> Body:
    for piece in pieces:
        if isinstance(piece, bytes):
            yield piece
        else:
            async for chunk in piece:
                yield chunk


def text_event(size: int) -> Body:
    """One SSE content event of about `size` bytes (a single line), written 4 KiB at a time
    (a big write would hide the cost of a client that re-reads its buffer on every read)."""
    head = b'data: {"choices":[{"index":0,"delta":{"content":"'
    return parts(head, repeat(b"a", max(size - len(head) - 7, 0), 4096), b'"}}]}\n\n')


def big_json(size: int, array: bool = False) -> Body:
    """A JSON answer of about `size` bytes: a chat answer or a /v1/models list."""
    if array:
        entry = b'{"id":"m-00000000000000000000"},'
        return parts(b'{"data":[', repeat(entry, size - 30), b'{"id":"last"}]}')
    head = b'{"choices":[{"index":0,"message":{"content":"'
    return parts(head, repeat(b"a", size), b'"},"finish_reason":"stop"}]}')


async def gzipped(body: Body) -> Body:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    async for chunk in body:
        if out := packer.compress(chunk):
            yield out
    yield packer.flush()


async def garbage(size: int) -> Body:
    rng = random.Random(size)
    while size > 0:
        yield rng.randbytes(min(size, CHUNK))
        size -= CHUNK


RECEIVED: collections.Counter[str] = collections.Counter()  # inference requests per case


def _answer(req: Request) -> tuple[int, dict[str, str], Body]:
    """(status, headers, body) for a request of any case."""
    sse = {"Content-Type": "text/event-stream"}
    as_json = {"Content-Type": "application/json"}
    get, n = req.method == "GET", req.size
    inference = not get and req.stream
    if req.case == "received":  # GET {base}/received/: how many POSTs each case had
        return 200, as_json, parts(json.dumps(RECEIVED).encode())
    if req.case == "ok":
        body = INFO if req.path == "/model/info" else MODELS if get else None
        if body is not None or not req.stream:
            return 200, as_json, parts(body or b'{"choices":[{"message":{"content":"a"},'
                                               b'"finish_reason":"stop"}]}')
        return 200, sse, parts(TOKEN, TOKEN, TOKEN, FINISH, USAGE, DONE)
    if req.case == "deep":  # nested arrays: a RecursionError for a naive parser
        return (200, sse if inference else as_json,
                parts(b"data: " if inference else b"", repeat(b"[", n), b"\n\n"))
    if req.case == "deepinfo":  # a usable /v1/models, a deeply nested /model/info
        if req.path == "/v1/models":
            return 200, as_json, parts(MODELS)
        return 200, as_json, repeat(b"[", n)
    if req.case == "deeperror":
        return 500, as_json, parts(b'{"error":', repeat(b"[", n))
    if req.case in ("line", "gzip"):
        if inference:
            body = parts(TOKEN, text_event(n), FINISH, USAGE, DONE)
        else:
            body = big_json(n, array=req.path == "/v1/models")
        headers = sse if inference else as_json
        if req.case == "gzip":
            return 200, {**headers, "Content-Encoding": "gzip"}, gzipped(body)
        return 200, headers, body
    if req.case == "errbody":
        return 500, {"Content-Type": "text/plain", "Content-Length": str(n)}, repeat(b"x", n)
    if req.case == "endless":  # content chunks as fast as the socket takes them
        return 200, sse, forever(TOKEN)
    if req.case == "roles":  # chunks with choices but no text, as fast as the socket takes them
        return 200, sse, forever(b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n')
    if req.case == "idle":  # events with no content, as fast as the socket takes them
        return 200, sse, forever(b'data: {"choices":[]}\n\n')
    if req.case == "drip":  # one byte every 0.2 s
        return 200, sse, forever(b"d", 0.2)
    if req.case == "stall":  # a token, then silence, the connection open
        return 200, sse, then_silent(parts(TOKEN))
    chunked = {**sse, "Transfer-Encoding": "chunked"}
    if req.case == "badchunk":  # a good chunk, then a chunk size that is not hexadecimal
        return 200, chunked, then_silent(
            parts(framed(TOKEN), later(b"zz\r\n" + TOKEN + b"\r\n")))
    if req.case == "cutchunk":  # a good chunk, then chunk data not followed by its CRLF
        return 200, chunked, then_silent(parts(framed(TOKEN), later(framed(TOKEN)[:-2] + b"XX")))
    if req.case == "finish":  # a finish reason of n characters
        return 200, sse, parts(TOKEN, b'data: {"choices":[{"index":0,"delta":{},'
                               b'"finish_reason":"', repeat(b"r", n), b'"}]}\n\n', DONE)
    if req.case == "usage":  # a completion_tokens of n digits
        return 200, sse, parts(TOKEN, FINISH, b'data: {"choices":[],"usage":{"completion_'
                               b'tokens":', repeat(b"9", n), b"}}\n\n", DONE)
    if req.case == "garbage":
        return 200, sse if inference else as_json, garbage(n)
    return 404, as_json, parts(b'{"error":{"message":"no such case"}}')


DEFAULT_SIZE = {"deep": 100_000, "deepinfo": 100_000, "deeperror": 100_000, "line": 16_000_000,
                "gzip": 256 << 20, "errbody": 1 << 30, "finish": 1000, "usage": 5000,
                "garbage": 1 << 20}
CASES = ("ok", "silent", *DEFAULT_SIZE, "endless", "idle", "drip", "stall", "badchunk",
         "cutchunk", "received")


async def _read_request(reader: asyncio.StreamReader) -> Request:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    method, target, _ = head[0].split(" ", 2)
    headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    length = int(headers.get("Content-Length", "0"))
    body = await reader.readexactly(length) if length else b""
    segment, _, rest = target.lstrip("/").partition("/")
    case, _, size = segment.partition("~")
    stream = True
    if body:
        with contextlib.suppress(ValueError, AttributeError):
            stream = json.loads(body).get("stream", True) is not False
    return Request(method, case, int(size) if size else DEFAULT_SIZE.get(case, 0),
                   "/" + rest, stream)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, OSError):
        try:
            req = await _read_request(reader)
            RECEIVED[req.case] += req.method == "POST"
            if req.case == "silent":
                await asyncio.sleep(3600)
            status, headers, body = _answer(req)
            lines = [f"HTTP/1.1 {status} X", "Connection: close",
                     *(f"{k}: {v}" for k, v in headers.items()), "", ""]
            writer.write("\r\n".join(lines).encode())
            async for chunk in body:
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()


async def _serve() -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def hostile_server() -> Iterator[Callable[[str], str]]:
    """The server in its own process; yields `url(case)`: the base URL of a case, e.g.
    url("line~16000000") (`~` separates the size; the default size is DEFAULT_SIZE's)."""
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        base = line.split()[-1]
        yield lambda case: f"{base}/{case}"
    finally:
        proc.kill()
        proc.wait()


def received(url: Callable[[str], str]) -> dict[str, int]:
    """How many inference requests (POST) each case of the server at `url` has had."""
    with urllib.request.urlopen(url("received") + "/", timeout=10) as answer:
        counts: dict[str, int] = json.load(answer)
    return counts


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())
