"""A trace to replay (issue 14 §5): a JSONL file of requests with their send times, in runner's
own format or the Mooncake trace format, read once into typed records; a bad line is exit 2 with
its file:line and field."""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner import defaults
from runner.errors import InputError, Location
from runner.inputfile import read_input, utf8_text
from runner.load.workload import DatasetPrompts

FORMATS = ("runner", "mooncake")
# Mooncake (FAST'25, github.com/kvcache-ai/Mooncake, FAST25-release/traces): each hash id names
# one block of 512 tokens, so two requests with the same first ids share that prefix.
BLOCK_TOKENS = 512
MAX_TOKENS = 10_000_000  # a line's input or output length, at most (as param_input_tokens)
_FIELDS = {"runner": ("timestamp_ms", "input_tokens", "output_tokens"),
           "mooncake": ("timestamp", "input_length", "output_length")}
_SORT = {"runner": "jq -c -s 'sort_by(.timestamp_ms)[]'",
         "mooncake": "jq -c -s 'sort_by(.timestamp)[]'"}


@dataclass(frozen=True)
class TraceRequest:
    """One request of a trace: `offset_ms` from the trace's first request (its timestamp minus
    the first one's, milliseconds), its 1-based `line`, and either `prompt` (the line's own
    `{"prompt": ...}` or `{"messages": [...]}`) or `input_tokens` (synthetic words); optional
    `output_tokens` (the request's max_tokens) and Mooncake's `hash_ids`."""

    offset_ms: float
    line: int
    prompt: Mapping[str, Any] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    hash_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Trace:
    """A parsed trace: its requests in send order (at least one)."""

    path: str
    format: str
    requests: tuple[TraceRequest, ...]

    @property
    def duration_s(self) -> float:
        """Seconds from the first request's send to the last one's, as recorded (speed 1)."""
        return self.requests[-1].offset_ms / 1000

    def token_totals(self) -> dict[str, int | None]:
        """Input and output tokens the trace states (None when a line does not say: text
        prompts, or no output length)."""
        ins = [r.input_tokens for r in self.requests]
        outs = [r.output_tokens for r in self.requests]
        return {"input_tokens": None if None in ins else sum(map(int, filter(None, ins))),
                "output_tokens": None if None in outs else sum(map(int, filter(None, outs)))}


def trace_path(params: Mapping[str, Any], plan_dir: str) -> str:
    """The trace file of a job's params, relative to the plan's folder."""
    return os.path.join(plan_dir, str(params["trace"]))


def load_trace(params: Mapping[str, Any], plan_dir: str) -> Trace | None:
    """The job's trace (`trace`, `trace_format`, `endpoint` of its params), None when it has
    none. Read once per file version (path, size, mtime). InputError (exit 2) names the file,
    the line and the field of the first problem."""
    if not params.get("trace"):
        return None
    path = trace_path(params, plan_dir)
    fmt = str(params.get("trace_format") or defaults.TRACE_FORMAT)
    chat = params.get("endpoint", defaults.PARAMS["endpoint"]) == "chat"
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        why = exc.strerror if isinstance(exc, OSError) else "not a file path"
        raise InputError(f"cannot read the trace: {why}; workload.trace is a JSONL "
                         "file, relative to the plan's folder", Location(path)) from None
    return _read(path, fmt, chat, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read(path: str, fmt: str, chat: bool, size: int, mtime_ns: int) -> Trace:
    try:
        raw = read_input(path, "the trace", defaults.MAX_DATASET_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read the trace: {exc}; workload.trace is a UTF-8 JSONL file, "
                         "relative to the plan's folder", Location(path)) from None
    lines = utf8_text(raw, path, "the trace")
    parse = _Lines(path, chat)
    requests: list[TraceRequest] = []
    first: float | None = None
    last: tuple[float, int] | None = None
    for number, text in enumerate(lines.splitlines(), 1):
        if not text.strip():
            continue
        item, at = parse.item(text, number), Location(path, number)
        stamp = _timestamp(item, fmt, at)
        if last is not None and stamp < last[0]:
            raise InputError(f"{_FIELDS[fmt][0]} {stamp:g} is before line {last[1]}'s "
                             f"{last[0]:g}: a trace lists requests in send order; sort it "
                             f"(e.g. {_SORT[fmt]})", at)
        first = stamp if first is None else first
        last = (stamp, number)
        request = _mooncake(item, at) if fmt == "mooncake" else parse.runner(item, text, at)
        requests.append(TraceRequest(stamp - first, number, *request))
    if not requests:
        raise InputError(f"the trace has no requests; add one JSON object per line ({fmt} "
                         "format: README, Trace replay)", Location(path))
    return Trace(path, fmt, tuple(requests))


def _timestamp(item: Mapping[str, Any], fmt: str, at: Location) -> float:
    name = _FIELDS[fmt][0]
    value: Any = item.get(name)
    if not _number(value) or not math.isfinite(value) or value < 0:
        raise InputError(f"{name}: expected the request's send time in milliseconds (a number "
                         f"at least 0), got {_shown(value)}", at)
    return float(value)


def _length(item: Mapping[str, Any], name: str, at: Location, least: int = 1) -> int | None:
    value = item.get(name)
    if value is None and name not in item:
        return None
    if type(value) is not int or not least <= value <= MAX_TOKENS:
        raise InputError(f"{name}: expected a whole number of tokens from {least} to "
                         f"{MAX_TOKENS:,}, got {_shown(value)}", at)
    return value


def _mooncake(item: Mapping[str, Any], at: Location) -> tuple[Any, ...]:
    """(prompt, input_tokens, output_tokens, hash_ids) of a Mooncake line."""
    found = {name: _length(item, name, at) for name in ("input_length", "output_length")}
    for name, value in found.items():
        if value is None:
            raise InputError(f"{name}: missing; a Mooncake line has timestamp, input_length, "
                             "output_length and hash_ids", at)
    ids = item.get("hash_ids", [])
    if not isinstance(ids, list) or not all(type(i) is int and i >= 0 for i in ids):
        raise InputError(f"hash_ids: expected a list of whole numbers at least 0, got "
                         f"{_shown(ids)}", at)
    blocks = -(-int(found["input_length"] or 0) // BLOCK_TOKENS)
    if len(ids) > blocks:
        raise InputError(f"hash_ids: {len(ids)} blocks of {BLOCK_TOKENS} tokens, more than "
                         f"input_length {found['input_length']} fills ({blocks})", at)
    return None, found["input_length"], found["output_length"], tuple(ids)


class _Lines(DatasetPrompts):
    """A trace's lines, read with the dataset's rules for `prompt` and `messages` (the file
    itself is read by `_read`)."""

    def __init__(self, path: str, chat: bool) -> None:  # no read: see _read
        self.path, self.chat = path, chat

    def item(self, text: str, number: int) -> dict[str, Any]:
        at = Location(self.path, number)
        try:
            item = json.loads(text)
        except ValueError as exc:
            raise InputError(f"not JSON: {exc}", at) from None
        except RecursionError:
            raise InputError("not JSON a trace line can be: nested too deeply", at) from None
        if not isinstance(item, dict):
            raise InputError(f"expected an object, got {_shown(item)}", at)
        return item

    def runner(self, item: Mapping[str, Any], text: str, at: Location) -> tuple[Any, ...]:
        """(prompt, input_tokens, output_tokens) of a line of runner's format."""
        output = _length(item, "output_tokens", at)
        given = [k for k in ("prompt", "messages", "input_tokens") if k in item]
        if len(given) != 1:
            raise InputError('expected one of "prompt", "messages" (the text) or "input_tokens" '
                             f"(synthetic words), got {' and '.join(given) or 'none'}", at)
        if given[0] == "input_tokens":
            return None, _length(item, "input_tokens", at), output
        return self._line(text, at.line or 0), None, output


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if value is not None else "nothing"
    return text if len(text) <= 40 else text[:37] + "..."
