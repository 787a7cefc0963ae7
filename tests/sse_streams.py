"""Streamed answers as servers send them (recorded shapes), and ways to write them as bytes.

Each stream is a list of events (JSON values, or the string "[DONE]"); `render` writes one as
SSE bytes in a given style, so a test can send the same answer compact, spaced, with its keys
shuffled, or one JSON line per data line."""

from __future__ import annotations

import json
import zlib
from typing import Any

DONE = "[DONE]"
USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
STYLES = ("compact", "spaced", "shuffled", "multiline", "ascii")


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          **extra: Any) -> dict[str, Any]:
    """A chat.completion.chunk as vLLM writes it (one choice)."""
    choice = {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1795566568,
            "model": "m", "choices": [choice], **extra}


def text(content: str) -> dict[str, Any]:
    return chunk({"content": content})


def usage_chunk(**counts: int) -> dict[str, Any]:
    return chunk(None, choices=[], usage={**USAGE, **counts})


def details(*entries: dict[str, Any]) -> dict[str, Any]:
    return chunk({"reasoning_details": list(entries)})


ROLE = chunk({"role": "assistant", "content": ""})
STOP = chunk(finish="stop")
SGLANG_NULLS = {"role": None, "reasoning_content": None, "tool_calls": None}

RECORDED: dict[str, list[Any]] = {
    "vllm": [ROLE, text("Hello"), text(" there"), text("!"), STOP, usage_chunk(), DONE],
    "vllm abort": [ROLE, *[text("tok ")] * 5, chunk(finish="abort"), usage_chunk(), DONE],
    "content filter": [ROLE, text("I"), chunk(finish="content_filter"), DONE],
    "openai usage null and obfuscation": [
        {**ROLE, "usage": None, "obfuscation": "x1"},
        *[{**text(c), "usage": None, "obfuscation": c * 3} for c in "abc"],
        {**chunk(finish="length"), "usage": None}, usage_chunk(), DONE],
    "sglang nulls": [
        chunk({**SGLANG_NULLS, "content": c}, matched_stop=None) for c in ("a", "b")
    ] + [chunk({**SGLANG_NULLS, "content": None}, finish="stop", matched_stop=2), DONE],
    "reasoning_content then content": [
        ROLE, chunk({"reasoning_content": "think"}), chunk({"reasoning_content": "ing"}),
        text("answer"), STOP, DONE],
    "reasoning": [chunk({"reasoning": "hm"}), text("x"), STOP, DONE],
    "reasoning_details text and summary": [
        ROLE, details({"type": "reasoning.text", "text": "step", "signature": None}),
        details({"type": "reasoning.summary", "summary": "short"}),
        details({"type": "summary", "summary": "also"}),
        details({"type": "reasoning.encrypted", "data": "opaque"}),
        details({"type": "reasoning.text", "text": ""}),
        text("done"), STOP, DONE],
    "content as parts": [
        chunk({"content": [{"type": "text", "text": "a"}]}),
        chunk({"content": [{"type": "image_url", "image_url": {"url": "u"}}]}),
        chunk({"content": [{"type": "text", "text": ""}]}), STOP, DONE],
    "tool calls": [
        chunk({"tool_calls": [{"index": 0, "id": "c", "type": "function",
                               "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk(finish="tool_calls"), DONE],
    "legacy function_call": [
        chunk({"function_call": {"name": "f", "arguments": ""}}),
        chunk({"function_call": {"arguments": "{}"}}), chunk(finish="function_call"), DONE],
    "role-only with an unrelated nested text": [
        chunk({"role": "assistant"}, meta={"text": "not an answer", "content": "nor this"}),
        chunk({"role": "assistant", "content": None},
              logprobs={"content": [{"token": "a", "text": "b"}]}),
        text("real"), STOP, DONE],
    "refusal": [chunk({"refusal": "I can't"}), STOP, DONE],
    "text that looks like keys": [
        text('"usage": 1, "finish_reason": "abort"'), text("\\\"content\\\":\\\"x"),
        text("é ✓ \u2028"), text(""), STOP, DONE],
    "two choices": [
        {"choices": [{"index": 0, "delta": {"content": "a"}}, {"index": 1, "delta": {}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"},
                     {"index": 1, "delta": {}, "finish_reason": "abort"}]}, DONE],
    "completions": [
        {"id": "cmpl-1", "object": "text_completion", "choices": [{"index": 0, "text": t}]}
        for t in ("Hel", "lo", "")
    ] + [{"choices": [{"index": 0, "text": "", "finish_reason": "length"}]}, DONE],
    "error inside the stream": [text("a"), {"error": {"message": "CUDA out of memory"}}, DONE],
    "no finish reason": [text("a"), text("b"), DONE],
    "usage beside the last text": [text("a"), {**text("b"), "usage": USAGE}, STOP, DONE],
}


def shuffled(value: Any, seed: int) -> Any:
    """`value` with the keys of every object in an order of `seed`'s (the same for the same
    keys, as one server writes them; lists keep their order)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: zlib.crc32(f"{seed}:{k}".encode()))
        return {k: shuffled(value[k], seed) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, seed) for v in value]
    return value


def render(events: list[Any], style: str = "compact", seed: int = 0) -> list[bytes]:
    """Each event as SSE bytes (one item per event, blank line included) in `style`:
    compact (no spaces), spaced (json.dumps' default), shuffled (keys in another order),
    multiline (indented JSON, one data line per line) or ascii (non-ASCII as escapes)."""
    out = []
    for value in events:
        if value == DONE:
            out.append(b"data: [DONE]\n\n")
            continue
        if style == "multiline":
            lines = json.dumps(value, indent=1, ensure_ascii=False).split("\n")
            out.append("".join(f"data: {line}\n" for line in lines).encode() + b"\n")
            continue
        if style == "shuffled":
            value = shuffled(value, seed)
        spaced = style in ("spaced", "shuffled")
        data = json.dumps(value, ensure_ascii=style == "ascii",
                          separators=None if spaced else (",", ":"))
        out.append(f"data: {data}\n\n".encode())
    return out
