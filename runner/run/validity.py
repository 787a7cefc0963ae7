"""The validity verdict on a job's numbers: valid, degraded or invalid, with reasons (pure).

The thresholds live in THRESHOLDS, the codes and severities in RULES; both are mirrored in
schemas/result.schema.json (`$defs.validity`, `$defs.validity_thresholds`), and a test keeps them
equal. The verdict reads only the job's metrics (runner.run.metrics.summarize and the keys of
issue 10 beside them), its server_metrics block (runner.servermetrics) and its `early_stop`
(passed in beside the metrics); a key a job does not have (an older runner) gives no reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.run import gateway, prefixhits
from runner.servermetrics.summary import DISAGREEMENT

VALID, DEGRADED, INVALID = "valid", "degraded", "invalid"
UNKNOWN = "unknown"  # a job stored before verdicts existed: no `metrics.validity`
_RANK = {VALID: 0, DEGRADED: 1, INVALID: 2}


@dataclass(frozen=True)
class Thresholds:
    """The one table of validity thresholds (mirrored in `$defs.validity_thresholds`)."""

    # With ignore_eos or min_tokens an engine returns max_tokens tokens; a detokenizer boundary
    # or a special token may cost one or two, never 10%. Below 0.9 the engine stopped early (its
    # context cap, a stop string), so TPOT, E2E and tok/s describe shorter answers than planned.
    short_outputs_ratio: float = 0.9
    # Synthetic prompts count words, one token each in most BPE vocabularies; a tokenizer that
    # splits rarer words runs ~10-20% over, one that merges runs under. Outside 0.8-1.25 of
    # the target the prompts are another workload (prefill cost grows with length).
    prompt_ratio_low: float = 0.8
    prompt_ratio_high: float = 1.25
    # A chat template adds role markers and, for some models, a default system prompt: 10-30
    # tokens that no prompt generator controls. A difference within this is never off target
    # (an 8-token prompt that arrives as 30 is the template, not the generator).
    prompt_slack_tokens: float = 32
    # Poisson arrivals over n requests give an achieved rate whose relative spread is about
    # 1/sqrt(n): 10% at 100 requests. Below 0.8 of the target (2 spreads at 100 requests) the
    # server saw less load than the plan names, by more than chance.
    rate_ratio: float = 0.8
    # One token per chunk makes ITL p50 close to TPOT p50 (the same gaps, median vs mean);
    # coalesced chunks make it larger. ITL p50 below a tenth of TPOT p50 means chunks arrive
    # in bursts with waits between them: a buffering proxy, or a client that read late.
    bursty_itl_fraction: float = 0.1
    # Below 1 ms per token timer and socket jitter are as large as the gaps themselves.
    bursty_min_tpot_ms: float = 1.0
    # vLLM sends one chunk per token until it coalesces under load. At a median above 1.5
    # tokens per chunk most gaps span several tokens: ITL is per chunk, not per token.
    tokens_per_chunk_p50: float = 1.5
    # Server generation tok/s vs client output tok/s: why 20%, see servermetrics.summary.
    server_disagreement: float = DISAGREEMENT
    # Achieved vs expected prefix-cache hit rate: why 0.10, see runner.run.prefixhits.GAP.
    prefix_cache_gap: float = prefixhits.GAP


THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Rule:
    """What a reason code means for the numbers, and what to do about it."""

    severity: str
    explanation: str
    remedy: str


# Invalid: the numbers measure the client or a workload the plan did not name. Degraded: they
# measure the server, with a caveat a reader must know. The gateway_* and deployment_mismatch
# codes read `metrics["gateway"]` (runner.run.gateway, from LiteLLM's response headers).
RULES: Mapping[str, Rule] = {
    "client_bound": Rule(
        INVALID, "the load generator, not the server, was the limit: latencies include "
        "client time", "lower concurrency or rate per runner process, free the machine's CPU "
        "(no other benchmark beside it), or split the load over workers"),
    "model_limit_exceeded": Rule(
        INVALID, "the job asks for more tokens than the model takes: the engine cuts or "
        "refuses, so the job does not measure the workload it names", "lower input_tokens or "
        "max_tokens to fit the model's limits (runner plan warns about it)"),
    "tokens_from_chunks": Rule(
        DEGRADED, "the server sent no usage: output tokens are content chunks, so TPOT and "
        "tok/s are per chunk (tokens≈chunks)", "serve with usage in streams "
        "(stream_options.include_usage; LiteLLM and vLLM honour it)"),
    "usage_inconsistent": Rule(
        DEGRADED, "the server's usage counted fewer tokens than it streamed chunks: runner "
        "used the chunk count", "fix the server or gateway that rewrites usage; compare its "
        "completion_tokens with the stream"),
    "short_outputs": Rule(
        DEGRADED, "a fixed output length was asked for (ignore_eos or min_tokens) and the "
        "answers were much shorter", "check the model's context length and stop strings; "
        "make sure the server honours ignore_eos/min_tokens"),
    "prompts_off_target": Rule(
        DEGRADED, "the server counted prompts far from the synthetic target length",
        "calibrate synthetic prompts (calibrate: auto, or workload.tokenizer), or use a dataset"),
    "rate_shortfall": Rule(
        DEGRADED, "the achieved request rate fell short of the target: the server saw less "
        "load than planned", "raise max_concurrency, or lower the rate to what the server "
        "sustains; run longer for a steadier rate"),
    "bursty_chunks": Rule(
        DEGRADED, "chunks arrived in bursts (ITL near zero while TPOT is large): a buffering "
        "proxy or a saturated client; ITL does not show the server's pace", "turn off "
        "response buffering in proxies between runner and the server; check client_bound"),
    "tokens_per_chunk": Rule(
        DEGRADED, "chunks carry several tokens each: ITL is the time per chunk, not per "
        "token", "read TPOT for the per-token pace; lower the load if the engine coalesces "
        "under it"),
    "server_disagreement": Rule(
        DEGRADED, "the server's own generation counter and the client's output tokens/s "
        "disagree: one of them counts tokens the other does not (other traffic on the server, "
        "a gateway, a counter that is not this model's)", "benchmark a server no one else "
        "uses; compare series.generation_tokens with the job's usage; check that metrics_url "
        "belongs to the server that answered"),
    "prefix_cache_gap": Rule(
        DEGRADED, "the server's prefix cache hit a share of prompt tokens far from what the "
        "plan's shared prefixes imply: the engine did not do the prefill work the plan names "
        "(prefix caching off, a cache too small for the prefixes, prompts that do not share "
        "them, another client's traffic)", "turn prefix caching on (vLLM: "
        "--enable-prefix-caching), fit count x tokens in the cache, or benchmark a server no "
        "one else uses; compare metrics.prefix_cache with the server's counters"),
    "gateway_retries": Rule(
        DEGRADED, "the LiteLLM proxy retried failed calls: those requests' latencies include "
        "the failed attempts, and failures the model had are hidden", "leave servers.yaml "
        "gateway.retries false (runner then asks for no retries), or fix the failing backend"),
    "gateway_fallbacks": Rule(
        INVALID, "the LiteLLM proxy fell back to another model group: some answers came from "
        "a model the job does not name", "leave servers.yaml gateway.fallbacks false (runner "
        "then asks for no fallbacks), or fix the model the proxy fell back from"),
    "deployment_mismatch": Rule(
        INVALID, "requests for this model were answered by a deployment of another model group "
        "(an alias or a route): the numbers are another model's", "benchmark the model group "
        "the proxy really routes to, or fix the proxy's model_group_alias/routing"),
    "saturated": Rule(
        INVALID, "the job stopped early: the server was over-saturated (it completed far "
        "fewer requests than arrived while the wait for an answer kept growing), so its "
        "latencies measure a growing queue, not a steady state", "lower the rate to what the "
        "server sustains (a capacity search finds it), or turn early_stop.saturation off to "
        "measure the overload anyway"),
}


def judge_validity(
    metrics: Mapping[str, Any], thresholds: Thresholds = THRESHOLDS,
    server_metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`{"verdict": valid|degraded|invalid, "reasons": [...]}` for a job's metrics, and its
    `server_metrics` block when the server was scraped (the checks see it as the metrics key
    `server_metrics`).

    Each reason is {code, severity, figure, explanation, remedy}: `figure` quotes the measured
    value against its threshold. Reasons come invalid first, then in RULES order; the verdict
    is the worst severity (valid without reasons). A metrics key that is absent or null (a
    summary of an older runner) gives no reason."""
    if server_metrics is not None:
        metrics = {**metrics, "server_metrics": server_metrics}
    reasons = [_reason(code, figure) for code, check in CHECKS.items()
               if (figure := check(metrics, thresholds))]
    reasons.sort(key=lambda r: -_RANK[r["severity"]])
    verdict = max((r["severity"] for r in reasons), key=_RANK.__getitem__, default=VALID)
    return {"verdict": verdict, "reasons": reasons}


def _reason(code: str, figure: str) -> dict[str, str]:
    rule = RULES[code]
    return {"code": code, "severity": rule.severity, "figure": figure,
            "explanation": rule.explanation, "remedy": rule.remedy}


def dig(data: Any, *path: str) -> Any:
    """data[path[0]][path[1]]...; None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _num(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _client_bound(m: Mapping[str, Any], t: Thresholds) -> str | None:
    client = dig(m, "client") or {}
    if not client.get("client_bound"):
        return None
    return str(client.get("reason") or "client_bound")


def _model_limit(m: Mapping[str, Any], t: Thresholds) -> str | None:
    limits = dig(m, "model_limits") or {}
    if not limits.get("exceeded"):
        return None
    return str(limits.get("detail") or "lengths exceed the model's limits")


def _from_chunks(m: Mapping[str, Any], t: Thresholds) -> str | None:
    # A request whose usage was inconsistent is counted by chunks too: it has its own reason.
    chunks = int(_num(dig(m, "output_tokens_source", "chunks")) or 0)
    estimated = chunks - int(_num(dig(m, "output_tokens_source", "usage_inconsistent")) or 0)
    if estimated <= 0:
        return None
    return f"{estimated} of {_ok(m)} ok requests counted by content chunks (no usage)"


def _inconsistent(m: Mapping[str, Any], t: Thresholds) -> str | None:
    bad = int(_num(dig(m, "output_tokens_source", "usage_inconsistent")) or 0)
    if bad <= 0:
        return None
    return f"{bad} of {_ok(m)} ok requests had usage below their content chunks"


def _ok(m: Mapping[str, Any]) -> int:
    return int(_num(dig(m, "requests", "ok")) or 0)


def _short(m: Mapping[str, Any], t: Thresholds) -> str | None:
    out = dig(m, "lengths", "output") or {}
    ratio = _num(out.get("ratio"))
    if not out.get("fixed") or ratio is None or ratio >= t.short_outputs_ratio:
        return None
    own = _num(out.get("requested_mean"))  # a trace: each request's own length
    if own is not None:
        return (f"outputs {_fig(ratio * own)} tokens on average of {_fig(own)} asked (each "
                f"request's own length; ratio {ratio:.2f} < {t.short_outputs_ratio:g})")
    return (f"outputs {_fig(out.get('achieved_mean'))} tokens on average of "
            f"{out.get('requested')} asked (ratio {ratio:.2f} < {t.short_outputs_ratio:g})")


def _off_target(m: Mapping[str, Any], t: Thresholds) -> str | None:
    given = dig(m, "lengths", "input") or {}
    ratio, mean, target = (_num(given.get(k)) for k in ("ratio", "achieved_mean", "target"))
    own = _num(given.get("requested_mean"))  # a trace: each request's own input length
    if own is not None and ratio is not None:
        mean, target = ratio * own, own
    if ratio is None or mean is None or target is None:
        return None
    if t.prompt_ratio_low <= ratio <= t.prompt_ratio_high:
        return None
    if abs(mean - target) <= t.prompt_slack_tokens:
        return None
    asked = (f"{_fig(target)} asked (each request's own length; " if own is not None
             else f"target {_fig(target)} (")
    return (f"prompts {_fig(mean)} tokens on average vs {asked}ratio {ratio:.2f}, outside "
            f"{t.prompt_ratio_low:g}-{t.prompt_ratio_high:g})")


def _rate(m: Mapping[str, Any], t: Thresholds) -> str | None:
    rate = dig(m, "rate") or {}
    ratio = _num(rate.get("ratio"))
    if ratio is None or ratio >= t.rate_ratio:
        return None
    # A replay plans no rate: its ratio is against the rate its trace scheduled.
    target = (f"{_fig(rate.get('target_per_s'))} target" if _num(rate.get("target_per_s"))
              is not None else f"{_fig(rate.get('scheduled_per_s'))} scheduled by the trace")
    return (f"achieved {_fig(rate.get('achieved_per_s'))} req/s of {target} "
            f"(ratio {ratio:.2f} < {t.rate_ratio:g})")


def _bursty(m: Mapping[str, Any], t: Thresholds) -> str | None:
    itl, tpot = _num(dig(m, "itl_ms", "p50")), _num(dig(m, "tpot_ms", "p50"))
    if itl is None or tpot is None or tpot < t.bursty_min_tpot_ms:
        return None
    if itl >= t.bursty_itl_fraction * tpot:
        return None
    return (f"ITL p50 {_fig(itl)} ms vs TPOT p50 {_fig(tpot)} ms (below "
            f"{t.bursty_itl_fraction:g} x TPOT)")


def _per_chunk(m: Mapping[str, Any], t: Thresholds) -> str | None:
    p50 = _num(dig(m, "tokens_per_chunk", "p50"))
    if p50 is None or p50 <= t.tokens_per_chunk_p50:
        return None
    return f"tokens per chunk p50 {_fig(p50)} > {t.tokens_per_chunk_p50:g}"


def _disagreement(m: Mapping[str, Any], t: Thresholds) -> str | None:
    fact = dig(m, "server_metrics", "disagreement") or {}
    server, client = (_num(dig(fact, k)) for k in ("server_tokens_per_s", "client_tokens_per_s"))
    if server is None or not client:
        return None
    ratio = server / client
    if abs(ratio - 1) <= t.server_disagreement:
        return None
    return (f"server generated {_fig(server)} tok/s vs client {_fig(client)} tok/s (ratio "
            f"{ratio:.2f}, beyond 1 ± {t.server_disagreement:g})")


def _saturated(m: Mapping[str, Any], t: Thresholds) -> str | None:
    stop = dig(m, "early_stop") or {}
    if stop.get("reason") != "saturated":
        return None
    return (f"completed {_fig(stop.get('completed_per_s'))} req/s of "
            f"{_fig(stop.get('target_per_s'))} target while the median wait grew from "
            f"{_fig(stop.get('previous_wait_p50_ms'))} to {_fig(stop.get('wait_p50_ms'))} ms "
            f"(at {_fig(stop.get('at_s'))} s)")


def _fig(value: Any) -> str:
    number = _num(value)
    if number is None:
        return "?"
    return f"{number:.0f}" if abs(number) >= 100 else f"{number:.3g}"


Check = Callable[[Mapping[str, Any], Thresholds], str | None]
CHECKS: Mapping[str, Check] = {
    "client_bound": _client_bound, "model_limit_exceeded": _model_limit,
    "tokens_from_chunks": _from_chunks, "usage_inconsistent": _inconsistent,
    "short_outputs": _short, "prompts_off_target": _off_target, "rate_shortfall": _rate,
    "bursty_chunks": _bursty, "tokens_per_chunk": _per_chunk,
    "server_disagreement": _disagreement,
    "prefix_cache_gap": lambda m, t: prefixhits.gap_reason(m, t.prefix_cache_gap),
    "gateway_retries": lambda m, t: gateway.retried(m),
    "gateway_fallbacks": lambda m, t: gateway.fell_back(m),
    "deployment_mismatch": lambda m, t: gateway.mismatched(m),
    "saturated": _saturated,
}


def stored_verdict(summary: Mapping[str, Any]) -> str | None:
    """A stored job's verdict: valid/degraded/invalid, `unknown` when its metrics carry none
    (stored by an older runner), None when the job has no metrics (never ran)."""
    metrics = summary.get("metrics")
    if not isinstance(metrics, Mapping):
        return None
    verdict = dig(metrics, "validity", "verdict")
    return verdict if verdict in _RANK else UNKNOWN


def stored_reasons(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A stored job's reasons (empty when it has none, or no verdict)."""
    reasons = dig(summary, "metrics", "validity", "reasons")
    return [r for r in reasons if isinstance(r, Mapping)] if isinstance(reasons, list) else []


def tokens_estimated(summary: Mapping[str, Any]) -> bool:
    """Some ok request's output tokens were counted by chunks: the `tokens≈chunks` marker."""
    return (_num(dig(summary, "metrics", "output_tokens_source", "chunks")) or 0) > 0


def first_reason(summary: Mapping[str, Any]) -> str:
    """The first reason of a stored job with its figure, and how many more:
    `client_bound (event-loop delay p99 23.4 ms > 10 ms) +1 more`; empty without reasons."""
    reasons = stored_reasons(summary)
    if not reasons:
        return ""
    more = f" +{len(reasons) - 1} more" if len(reasons) > 1 else ""
    return f"{reasons[0].get('code')} ({reasons[0].get('figure')}){more}"


def set_aside(base: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """Why `runner compare` must not gate on a pair of stored jobs: each side that is not
    valid, with its first reason (`new invalid: client_bound (...)`); None when both are valid
    or unknown (stored before verdicts: gated as before)."""
    found = [f"{side} {verdict}" + (f": {first_reason(job)}" if first_reason(job) else "")
             for side, job in (("base", base), ("new", new))
             if (verdict := stored_verdict(job)) in (DEGRADED, INVALID)]
    return "; ".join(found) or None
