"""Sending the probe: one tiny request per (server, model, endpoint) through the load
generator's own Exchange (its request, its answer reading and its error kinds), at most
CONCURRENCY at a time and all within CAP_S."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from time import perf_counter_ns
from typing import Any

import aiohttp

from runner.inventory.config import Server, auth_headers
from runner.load.chunks import REASONING_KEYS
from runner.load.endpoints import shape_prompt, streams
from runner.load.exchange import Exchange, Target
from runner.load.gatewayheaders import read_gateway
from runner.load.records import RequestRecord
from runner.load.sse import StreamState
from runner.load.workload import encode_body, request_body
from runner.redaction import redact
from runner.run.gateway import gateway_request
from runner.run.probe import (
    ProbeReport,
    ProbeResult,
    classify,
    cooldown_wait_s,
    is_cooldown,
)

PROBE_TOKENS = 4  # what the probe asks for: a few tokens, the least a night can spend
CONCURRENCY = 4
CAP_S = 120.0  # the whole probe, however many models; each request has the server's timeout_s
COOLDOWN_MAX_S = 15.0  # the longest wait for a LiteLLM cooldown to end before asking again
PROMPT = "Reply with the single word OK."
DEPLOYMENT_HEADER = "x-litellm-model-id"  # LiteLLM 1.106.2: the deployment that answered


@dataclass(frozen=True)
class ProbeTarget:
    """What to probe: a model on a server, with its benchmark's job params (endpoint, stream,
    extra_body) and its inventory mode (None: unknown)."""

    server: Server
    model: str
    params: Mapping[str, Any]
    mode: str | None = None

    @property
    def endpoint(self) -> str:
        return str(self.params.get("endpoint", "chat"))


def run_probe(targets: Sequence[ProbeTarget], env: Mapping[str, str],
              concurrency: int = CONCURRENCY, cap_s: float = CAP_S) -> ProbeReport:
    """Probe every target; never raises for what a server answers (errors are verdicts)."""
    start = time.monotonic()
    results, capped = asyncio.run(_probe_all(targets, env, concurrency, cap_s))
    return ProbeReport(tuple(results), seconds=time.monotonic() - start, capped=capped)


async def _probe_all(targets: Sequence[ProbeTarget], env: Mapping[str, str], concurrency: int,
                     cap_s: float) -> tuple[list[ProbeResult], bool]:
    gate = asyncio.Semaphore(concurrency)

    async def one(target: ProbeTarget) -> ProbeResult:
        async with gate:
            return await probe_one(target, env)

    tasks = [asyncio.create_task(one(t)) for t in targets]
    if not tasks:
        return [], False
    _, pending = await asyncio.wait(tasks, timeout=cap_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return [_result_of(task, t, cap_s) for task, t in zip(tasks, targets, strict=True)], \
        bool(pending)


def _result_of(task: asyncio.Task[ProbeResult], target: ProbeTarget, cap_s: float) -> ProbeResult:
    if task.cancelled():
        return _verdict(target, "timeout", f"not answered within the probe's cap ({cap_s:g} s)")
    exc = task.exception()
    if exc is not None:
        return _verdict(target, "other", f"{type(exc).__name__}: {exc}")
    return task.result()


def _verdict(target: ProbeTarget, status: str, reason: str) -> ProbeResult:
    return ProbeResult(target.server.name, target.model, target.endpoint, status, reason)


async def probe_one(target: ProbeTarget, env: Mapping[str, str]) -> ProbeResult:
    """The first request classifies (the benchmark's endpoint and stream, PROBE_TOKENS tokens);
    when it succeeded, a second asks for exactly PROBE_TOKENS with ignore_eos and min_tokens."""
    params = {**target.params, "max_tokens": PROBE_TOKENS, "warmup_requests": 0,
              "request_timeout_s": target.server.timeout_s,
              "stall_timeout_s": target.server.timeout_s}
    first = await _send(target, params, env)
    if first.record.http_status == 429 and is_cooldown(first.record.error or ""):
        # An earlier failure (another probe's, a job's) benched the model: its own answer
        # comes after the cooldown, asked once more.
        await asyncio.sleep(min(cooldown_wait_s(first.record.error or "") + 0.5, COOLDOWN_MAX_S))
        first = await _send(target, params, env)
    record = first.record
    status, reason = classify(record, target.endpoint, target.mode)
    streamed = streams(params)  # an embeddings request is never streamed
    learned = record.ok
    result = ProbeResult(
        target.server.name, target.model, target.endpoint, status, reason, record.http_status,
        first.deployment, streams_usage=(record.usage_output_tokens is not None)
        if learned and streamed else None, sends_reasoning=first.reasoning if learned else None,
        latency_ms=record.e2e_ms)
    if status != "ok" or target.endpoint == "embeddings":  # no output to ask a length of
        return result
    extra = {**(params.get("extra_body") or {}), "ignore_eos": True, "min_tokens": PROBE_TOKENS}
    second = (await _send(target, {**params, "extra_body": extra}, env)).record
    return replace(result, honours_min_tokens=honoured(record, second))


def honoured(plain: RequestRecord, forced: RequestRecord) -> bool | None:
    """Whether ignore_eos/min_tokens were honoured: True when the plain request stopped before
    PROBE_TOKENS and the one asking for them got all PROBE_TOKENS; False when that one got
    fewer (or failed); None when both got PROBE_TOKENS (the model did not stop early: nothing
    to tell)."""
    if not forced.ok or (forced.output_tokens or 0) < PROBE_TOKENS:
        return False
    return True if (plain.output_tokens or 0) < PROBE_TOKENS else None


@dataclass
class _Seen:
    record: RequestRecord
    deployment: str | None
    reasoning: bool | None  # None: read by another endpoint's reader (embeddings, responses)


async def send_prompt(target: ProbeTarget, params: Mapping[str, Any], env: Mapping[str, str],
                      prompt: Mapping[str, Any]) -> RequestRecord:
    """One unmeasured request of `prompt` ({"messages"} or {"prompt"}) sent as the probe sends
    its own (runner.run.calibration's probe requests): its record."""
    return (await _send(target, params, env, prompt)).record


def probe_exchange(target: ProbeTarget, params: Mapping[str, Any],
                   env: Mapping[str, str]) -> _ProbeExchange:
    """The probe's wire for `target`: its client_session() has the server's key and the
    load generator's settings."""
    server = target.server
    return _ProbeExchange(Target(server.url, auth_headers(server, env), target.model,
                                 server.limits), params)


async def _send(target: ProbeTarget, params: Mapping[str, Any], env: Mapping[str, str],
                prompt: Mapping[str, Any] | None = None) -> _Seen:
    """One request through Exchange, the response's deployment header read by a trace hook
    as the load generator reads it (printable, bounded) and without the key should it echo it:
    it is printed and stored in the manifest."""
    headers: dict[str, str] = {}
    trace = aiohttp.TraceConfig()

    async def ended(_s: Any, _c: Any, sent: aiohttp.TraceRequestEndParams) -> None:
        value = (read_gateway(sent.response.headers) or {}).get("deployment_id")
        if value:
            headers[DEPLOYMENT_HEADER] = redact(value, wire.target.headers)

    trace.on_request_end.append(ended)
    server = target.server
    wire = probe_exchange(target, params, env)
    if prompt is None:
        chat = target.endpoint == "chat"
        prompt = {"messages": [{"role": "user", "content": PROMPT}]} if chat \
            else {"prompt": PROMPT}
    prompt = shape_prompt(params, prompt)  # the Responses API's input, an embeddings batch
    # What the jobs ask of a gateway (no fallbacks, by default): a fallback would answer for a
    # model the jobs will find failing.
    _, added = gateway_request(server.kind, server.gateway)
    extra = {**added, **(params.get("extra_body") or {})}
    body = encode_body(request_body({**params, "extra_body": extra}, target.model, prompt))
    async with _session(wire, trace) as session:
        record = await wire.send(session, body)
    return _Seen(record, headers.get(DEPLOYMENT_HEADER), wire.reasoning)


def _session(wire: Exchange, trace: aiohttp.TraceConfig) -> aiohttp.ClientSession:
    """As the load generator's session, and asking LiteLLM for no retries: the probe must see
    the first answer."""
    return wire.client_session(headers={"x-litellm-num-retries": "0"}, trace_configs=[trace])


class _ReasoningState(StreamState):
    """A stream read as the load generator reads it, noting whether reasoning text came."""

    __slots__ = ("reasoning",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reasoning = False

    def _parse(self, data: bytes, event: bytes, now_ns: int) -> None:
        self.reasoning = self.reasoning or has_reasoning(data)
        super()._parse(data, event, now_ns)

    def body(self, data: bytes, now_ns: int) -> None:
        self.reasoning = self.reasoning or has_reasoning(data)
        super().body(data, now_ns)


def has_reasoning(data: bytes) -> bool:
    """Whether an event (or a whole answer) carries reasoning text in a choice's delta or
    message (`reasoning_content`: vLLM, DeepSeek, LiteLLM; `reasoning`: OpenRouter, Ollama)."""
    if b'"reasoning' not in data:
        return False
    try:
        answer = json.loads(data)
    except (ValueError, RecursionError):
        return False
    choices = answer.get("choices") if isinstance(answer, dict) else None
    for choice in choices if isinstance(choices, list) else ():
        part = (choice.get("delta") or choice.get("message")) if isinstance(choice, dict) else None
        if isinstance(part, dict) and any(isinstance(part.get(k), str) and part[k]
                                          for k in REASONING_KEYS):
            return True
    return False


class _ProbeExchange(Exchange):
    """One request, kept; the probe never gives up on a server, it reports."""

    state_type = _ReasoningState

    def __init__(self, target: Target, params: Mapping[str, Any]) -> None:
        super().__init__(target, params)
        self.record: RequestRecord | None = None
        self.reasoning: bool | None = False

    async def send(self, session: aiohttp.ClientSession, body: bytes) -> RequestRecord:
        """Send `body` once through `session`; its record (errors are records, not raised)."""
        self.session, self.t0 = session, perf_counter_ns()
        await self._request(0, body, None, None)
        assert self.record is not None  # _request always ends in _finish
        return self.record

    def _finish(self, record: RequestRecord) -> None:
        self.inflight.pop(record.index, None)
        self.record = record

    def _give_up(self, reason: str) -> None:
        self.sending = False

    def _measure(self, record: RequestRecord, state: StreamState, start: int, end: int) -> None:
        super()._measure(record, state, start, end)
        self.reasoning = state.reasoning if isinstance(state, _ReasoningState) else None
