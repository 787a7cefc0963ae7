"""The calling key's limits (LiteLLM `GET /key/info`) against what a plan will ask for.

LiteLLM 1.106.2 (proxy/management_endpoints/key_management_endpoints.py, `info_key_fn`):
`GET /key/info` without `?key=` describes the key of the Authorization header, as
`{"key": ..., "info": {"rpm_limit", "tpm_limit", "max_budget", "spend", ...}}`; limits are
null when unset. It needs the proxy's database: without one the answer is an error, and the
check is skipped ("key limits unknown"). `tpm_limit` counts total tokens (prompt + completion,
proxy/hooks/parallel_request_limiter_v3.py)."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from runner import defaults
from runner.inventory.config import Server, auth_headers
from runner.inventory.listing import LiveUnavailable
from runner.inventory.proxyclient import _Getter, _timeout
from runner.load.replay import replay_speed
from runner.load.trace import Trace, TraceRequest
from runner.plan.expand import Job

KEY_INFO_BYTES = 1 << 20  # a key's row is a few KB


@dataclass(frozen=True)
class KeyLimits:
    """A key's limits; `unknown` says why they could not be read (then the rest is None)."""

    server: str
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_budget: float | None = None
    spend: float | None = None
    unknown: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"rpm_limit": self.rpm_limit, "tpm_limit": self.tpm_limit,
                "max_budget": self.max_budget, "spend": self.spend, "unknown": self.unknown}

    def text(self) -> str:
        if self.unknown:
            return f"key limits unknown ({self.unknown})"
        shown = [f"{name} {value:g}" for name, value in (
            ("rpm_limit", self.rpm_limit), ("tpm_limit", self.tpm_limit),
            ("max_budget", self.max_budget), ("spend", self.spend)) if value is not None]
        return f"key limits: {', '.join(shown) if shown else 'none set'}"


def fetch_key_limits(server: Server, env: Mapping[str, str],
                     client: httpx.Client | None = None) -> KeyLimits:
    """The calling key's limits on `server`; any failure is an `unknown` reason, never raised."""
    if client is None:
        with httpx.Client(verify=server.verify_tls, timeout=_timeout(server.timeout_s)) as own:
            return fetch_key_limits(server, env, own)
    get = _Getter(client, auth_headers(server, env), server.timeout_s, KEY_INFO_BYTES)
    try:
        status, body = get(f"{server.url}/key/info")
    except (httpx.HTTPError, LiveUnavailable) as exc:
        return KeyLimits(server.name, unknown=f"GET /key/info failed: {type(exc).__name__}")
    if status != 200:
        return KeyLimits(server.name, unknown=f"GET /key/info answered HTTP {status}")
    try:
        info = json.loads(body).get("info")
    except (ValueError, RecursionError, AttributeError):
        info = None
    if not isinstance(info, dict):
        return KeyLimits(server.name, unknown="GET /key/info answered without an `info` object")
    return KeyLimits(server.name, _number(info.get("rpm_limit")), _number(info.get("tpm_limit")),
                     _number(info.get("max_budget")), _number(info.get("spend")))


def _number(value: Any) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return value if ok and value < 1e300 else None


@dataclass(frozen=True)
class Demand:
    """What one job asks of the key per minute: requests (`rpm`) and total tokens (`tpm`),
    and how `rpm` was estimated."""

    job: str
    rpm: float
    tpm: float
    basis: str


def job_demand(job: Job, latency_s: float | None, trace: Trace | None = None) -> Demand | None:
    """A job's requests and tokens per minute at its peak.

    Open loop: `rate` x 60 (what the plan sends; max_concurrency may only lower it). Closed
    loop: concurrency x 60 / L, where L is the expected request latency: the probe's latency
    for its few tokens (`latency_s`, per token) times the job's max_tokens; without a probe
    there is no estimate (None). Tokens: requests x (input_tokens + max_tokens), the most a
    request can count against tpm_limit (which counts total tokens). A replay: its `trace`'s
    busiest minute at the speed asked (replay_demand); None when the trace is not given."""
    params = job.params
    if params.get("replay") is not None:
        return None if trace is None else replay_demand(job, trace)
    size = _tokens(params.get("input_tokens"), defaults.INPUT_TOKENS) + _tokens(
        params.get("max_tokens"), defaults.PARAMS["max_tokens"])
    if "rate" in params:
        rpm = float(params["rate"]) * 60
        return Demand(job.id, rpm, rpm * size, f"rate {float(params['rate']):g}/s")
    if latency_s is None or latency_s <= 0:
        return None
    slots = int(params.get("concurrency", defaults.CONCURRENCY))
    expected = latency_s * _tokens(params.get("max_tokens"), defaults.PARAMS["max_tokens"])
    rpm = slots * 60 / expected
    return Demand(job.id, rpm, rpm * size,
                  f"concurrency {slots} / expected latency {expected:.2f} s (from the probe)")


def replay_demand(job: Job, trace: Trace) -> Demand:
    """A replay job's peak: the most requests, and separately the most tokens, that its
    `trace` sends within any 60 s at the job's speed (sends at offset / speed; only the lines
    sent: the first `requests`, up to `duration_s`). A request's tokens: its input length (a
    text prompt's words), plus its output length, else the job's max_tokens."""
    params, speed = job.params, replay_speed(job.params)
    lines = trace.requests[:int(params.get("requests") or len(trace.requests))]
    until = float(params.get("duration_s") or math.inf)
    sent = [(r.offset_ms / 1000 / speed, r) for r in lines if r.offset_ms / 1000 / speed <= until]
    asked = _tokens(params.get("max_tokens"), defaults.PARAMS["max_tokens"])
    sums = [0, *itertools.accumulate(_line_tokens(r, asked) for _, r in sent)]
    rpm, first, last, tpm = 0, 0, 0, 0.0
    end = 0
    for start, (at, _) in enumerate(sent):  # each send opens a minute: what falls in it
        while end < len(sent) and sent[end][0] < at + 60:
            end += 1
        tpm = max(tpm, float(sums[end] - sums[start]))
        if end - start > rpm:
            rpm, first, last = end - start, sent[start][1].line, sent[end - 1][1].line
    return Demand(job.id, float(rpm), tpm, f"the trace's busiest minute at speed {speed:g} "
                  f"(trace lines {first}-{last})")


def _line_tokens(line: TraceRequest, max_tokens: int) -> int:
    """A trace line's tokens against tpm_limit: its input (a text prompt: a token a word) and
    output lengths (its own, else the job's max_tokens)."""
    if line.input_tokens is not None:
        given = line.input_tokens
    else:
        prompt = line.prompt or {}
        texts = [prompt.get("prompt")] + [m.get("content") for m in prompt.get("messages") or ()
                                          if isinstance(m, Mapping)]
        given = sum(len(t.split()) for t in texts if isinstance(t, str))
    return given + (line.output_tokens if line.output_tokens is not None else max_tokens)


def _tokens(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def exceeded(limits: KeyLimits, demands: Iterable[Demand]) -> list[str]:
    """One line per limit the plan passes (its busiest job), with the figures; [] when none."""
    found = list(demands)
    lines = []
    if limits.max_budget is not None and limits.spend is not None \
            and limits.spend >= limits.max_budget:
        lines.append(f"server {limits.server!r}: the key has spent its budget (spend "
                     f"{limits.spend:g} of max_budget {limits.max_budget:g})")
    for name, limit in (("rpm", limits.rpm_limit), ("tpm", limits.tpm_limit)):
        if limit is None or not found:
            continue
        worst, asked = _busiest(found, name)
        if asked > limit:
            lines.append(f"server {limits.server!r}: job {worst.job} asks about {asked:.0f} "
                         f"{name} ({worst.basis}), above the key's {name}_limit {limit:g}: it "
                         "would measure 429s, not the model")
    return lines


def _busiest(demands: list[Demand], name: str) -> tuple[Demand, float]:
    asked = [(float(getattr(d, name)), i) for i, d in enumerate(demands)]
    value, index = max(asked)
    return demands[index], value
