"""The probe's verdicts: one tiny request per (server, model, endpoint) before any job, read
into a status (usable or not, and why) and what the model was seen to do. Pure: the requests
themselves are sent by run.probewire."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.load.records import RequestRecord

# Statuses, and what each means for the model's jobs. A model is dropped before the run when
# its probe says the key cannot call it (401, 403), it is not there (404), or it cannot do the
# benchmark's endpoint (wrong_mode). The others keep their jobs: a 429, a 5xx, a timeout or a
# refused connection may pass, and a job records them as errors if they do not.
STATUSES = ("ok", "unauthorized", "forbidden", "not_found", "wrong_mode", "rate_limited",
            "cooldown", "server_error", "timeout", "connection", "other")
DROPPED = frozenset({"unauthorized", "forbidden", "not_found", "wrong_mode"})
_BY_HTTP = {401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited"}
# The words of a server that refuses an endpoint for a model of another kind (an embedding
# model asked for a chat completion): OpenAI ("This is not a chat model and thus not supported
# in the v1/chat/completions endpoint"), Ollama ("... does not support chat"), vLLM ("The
# model does not support Chat Completions API"), relayed by LiteLLM inside its own message
# (1.106.2 has no mode check of its own: the backend's refusal comes through, 400 or 404).
_WRONG_MODE = re.compile(r"not a chat model|not supported in the v1/(chat/)?completions|"
                         r"does not support (chat|completions|generate|embeddings?|responses)|"
                         r"embedding model|"
                         r"only supports? embedding", re.IGNORECASE)
_NO_DB = "No connected db."  # LiteLLM 1.106.2's 400 for a key it cannot look up
# Inventory modes (LiteLLM's `mode`) that can answer each endpoint; None: unknown, may.
FITS = {"chat": frozenset({"chat", "responses"}), "completions": frozenset({"completion", "chat"}),
        "responses": frozenset({"responses", "chat"}), "embeddings": frozenset({"embedding"})}
_ADVICE = {
    "unauthorized": "check the key (servers.yaml api_key_env) and that it may call this model",
    "forbidden": "the key may not call this model: ask for access or leave it out of the plan",
    "not_found": "the server does not serve this model (or its backend is gone)",
    "wrong_mode": "this model cannot answer this endpoint: select it for another benchmark",
    "cooldown": "LiteLLM benched every deployment of this model after recent failures; the "
                "failure itself is hidden: see the proxy's log, or probe again later",
}
# LiteLLM 1.106.2 (router.py): after a deployment fails (a 404 or a 401 from its backend too),
# it is "in cooldown" for cooldown_time (5 s by default), and a model whose deployments all are
# answers 429 "No deployments available for selected model, Try again in 5 seconds...".
_COOLDOWN = re.compile(r"deployments? (for selected model )?(are |is )?in cooldown|"
                       r"No deployments available", re.IGNORECASE)
_TRY_AGAIN = re.compile(r"Try again in (\d+(?:\.\d+)?) seconds")


def is_cooldown(message: str) -> bool:
    """Whether a 429's message is LiteLLM's cooldown (not the key's rate limit)."""
    return _COOLDOWN.search(message) is not None


def cooldown_wait_s(message: str, default_s: float = 5.0) -> float:
    """The wait LiteLLM's cooldown message names ("Try again in 5 seconds"), else default_s."""
    found = _TRY_AGAIN.search(message)
    return float(found.group(1)) if found else default_s


@dataclass(frozen=True)
class ProbeResult:
    """One probe's verdict and what it learned (None: not learned).

    `streams_usage`: a streamed answer carried `usage` (asked with stream_options.include_usage);
    `honours_min_tokens`: asked for exactly PROBE_TOKENS tokens with ignore_eos and min_tokens,
    that many came; `sends_reasoning`: the answer carried reasoning text (reasoning_content,
    reasoning); `deployment`: the `x-litellm-model-id` header of the answer (LiteLLM's id of the
    deployment that answered)."""

    server: str
    model: str
    endpoint: str
    status: str
    reason: str = ""
    http_status: int | None = None
    deployment: str | None = None
    streams_usage: bool | None = None
    honours_min_tokens: bool | None = None
    sends_reasoning: bool | None = None
    latency_ms: float | None = None

    @property
    def dropped(self) -> bool:
        return self.status in DROPPED

    def to_json(self) -> dict[str, Any]:
        return {"server": self.server, "model": self.model, "endpoint": self.endpoint,
                "status": self.status, "dropped": self.dropped, "reason": self.reason,
                "http_status": self.http_status,
                "deployment": self.deployment, "streams_usage": self.streams_usage,
                "honours_min_tokens": self.honours_min_tokens,
                "sends_reasoning": self.sends_reasoning, "latency_ms": self.latency_ms}


def classify(record: RequestRecord, endpoint: str, mode: str | None) -> tuple[str, str]:
    """(status, reason) of a probe's answer. `mode`: the inventory's mode of the model (None:
    unknown): a 400 or 404 from a model whose mode cannot do `endpoint` is wrong_mode."""
    if record.ok:
        return "ok", ""
    message = record.error or record.error_kind or "failed"
    status = record.http_status
    if status is not None:
        if status in (400, 404, 405, 422) and _wrong_mode(message, endpoint, mode):
            return "wrong_mode", _with_advice("wrong_mode", message)
        if status == 400 and _NO_DB in message:
            status = 401  # LiteLLM without a database: its answer to an unknown key
        if status == 429 and is_cooldown(message):
            return "cooldown", _with_advice("cooldown", message)
        kind = _BY_HTTP.get(status) or ("server_error" if status >= 500 else "other")
        return kind, _with_advice(kind, message)
    if record.error_kind in ("timeout", "stalled"):
        # The probe's deadline is the server's timeout_s (servers.yaml), not the plan's.
        return "timeout", message.replace("request_timeout_s", "timeout_s (servers.yaml)")
    if record.error_kind == "connection":
        return "connection", message
    return "other", message


def _wrong_mode(message: str, endpoint: str, mode: str | None) -> bool:
    if mode is not None and mode not in FITS.get(endpoint, frozenset({mode})):
        return True
    return _WRONG_MODE.search(message) is not None


def _with_advice(status: str, message: str) -> str:
    advice = _ADVICE.get(status)
    return f"{message}; {advice}" if advice else message


@dataclass(frozen=True)
class ProbeReport:
    """Every probe of a plan, the keys' limits as the server told them, and the time it took."""

    results: tuple[ProbeResult, ...] = ()
    key_limits: Mapping[str, Any] = field(default_factory=dict)  # server name -> KeyLimits json
    seconds: float = 0.0
    capped: bool = False  # the overall time cap ended the probe; the rest counted as timeout

    def dropped(self) -> list[ProbeResult]:
        return [r for r in self.results if r.dropped]

    def drops(self, server: str, model: str, endpoint: str) -> ProbeResult | None:
        """The result that drops this (server, model, endpoint), if any."""
        return next((r for r in self.results if (r.server, r.model, r.endpoint)
                     == (server, model, endpoint) and r.dropped), None)

    def to_json(self) -> dict[str, Any]:
        """The manifest's `probe` block: model id -> its verdict (a model probed for two
        endpoints shows the one that dropped it, else the first), with `same_deployment_as`:
        the other ids one deployment answered for. Probes of several servers are keyed
        `<server>:<model id>`: two servers' models of one id are two verdicts."""
        several = len({r.server for r in self.results}) > 1  # then `<server>:<model id>`

        def key(server: str, model: str) -> str:
            return f"{server}:{model}" if several else model

        models: dict[str, Any] = {}
        for r in sorted(self.results, key=lambda r: (not r.dropped, r.endpoint)):
            models.setdefault(key(r.server, r.model), r.to_json())
        for dup in duplicates(self.results):
            for model in dup["models"]:
                models[key(dup["server"], model)]["same_deployment_as"] = [
                    m for m in dup["models"] if m != model]
        return models


def duplicates(results: Iterable[ProbeResult]) -> list[dict[str, Any]]:
    """Deployments that answered for more than one model id (aliases of one backend): each
    [{"deployment": id, "models": [ids]}], sorted."""
    seen: dict[tuple[str, str], set[str]] = {}
    for r in results:
        if r.deployment:
            seen.setdefault((r.server, r.deployment), set()).add(r.model)
    return [{"server": server, "deployment": dep, "models": sorted(ids)}
            for (server, dep), ids in sorted(seen.items()) if len(ids) > 1]


def text_lines(report: ProbeReport) -> list[str]:
    """The plan view's probe section (also the report's list of dropped models)."""
    lines = [f"probe: {len(report.results)} probed in {report.seconds:.1f} s"
             + (" (stopped by the time cap)" if report.capped else "")]
    for r in report.results:
        lines.append(f"  {r.model} [{r.endpoint}] {r.status.upper()}"
                     + (f": {r.reason}" if r.reason else "") + _learned(r))
    for dup in duplicates(report.results):
        lines.append(f"  DUPLICATE: {', '.join(dup['models'])} answered by one deployment "
                     f"({dup['deployment']})")
    dropped = report.dropped()
    if dropped:
        lines.append(f"  dropped before the run ({len(dropped)}): "
                     + ", ".join(sorted({r.model for r in dropped})))
    return lines


def _learned(r: ProbeResult) -> str:
    facts = [f"{name} {'yes' if value else 'no'}" for name, value in (
        ("usage", r.streams_usage), ("min_tokens", r.honours_min_tokens),
        ("reasoning", r.sends_reasoning)) if value is not None]
    if r.deployment:
        facts.append(f"deployment {r.deployment}")
    return f"  ({', '.join(facts)})" if facts else ""


def all_dropped_message(report: ProbeReport) -> str:
    """The exit-3 message when the probe left no model to run."""
    reasons = "; ".join(f"{r.model}: {r.status} ({r.reason})" for r in report.dropped())
    return (f"the probe dropped every selected model, nothing left to run: {reasons}; "
            "fix the cause, or run without the probe (--no-probe) to record the failures")


def probe_keys(items: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """(server, model, endpoint) triples, each once, in a stable order."""
    return sorted(set(items))
