"""The validity verdict (pure): every reason code at and beside its threshold, severities, the
order of reasons, old summaries without the keys, and the schema mirror of the one table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner.load.records import ClientHealth, RequestRecord
from runner.run.metrics import summarize
from runner.run.validity import (
    RULES,
    THRESHOLDS,
    judge_validity,
    stored_reasons,
    stored_verdict,
    tokens_estimated,
)

REPO = Path(__file__).resolve().parents[2]


def ok_records(n: int) -> list[RequestRecord]:
    return [RequestRecord(index=i, sent_ms=i * 5.0, ttft_ms=10.0, itl_ms=[2.0] * 3, e2e_ms=16.0,
                          prompt_tokens=8, output_tokens=4, output_tokens_source="usage",
                          content_chunks=4, finish_reason="stop", ok=True) for i in range(n)]


def dist(**stats: float) -> dict[str, Any]:
    return {"count": 10, **stats}


def metrics(**keys: Any) -> dict[str, Any]:
    """A clean job's metrics in the contract's shapes (issue 10), changed by `keys`."""
    clean: dict[str, Any] = {
        "requests": {"total": 20, "ok": 20, "failed": 0, "cancelled": 0, "warmup": 0},
        "itl_ms": dist(p50=9.5), "tpot_ms": dist(p50=10.0),
        "client": {"client_bound": False, "reason": None, "threshold_ms": 10.0},
        "output_tokens_source": {"usage": 20, "chunks": 0, "usage_inconsistent": 0},
        "tokens_per_chunk": dist(p50=1.0),
        "lengths": {"output": {"requested": 64, "fixed": True, "achieved_mean": 64.0,
                               "ratio": 1.0},
                    "input": {"target": 512, "achieved_mean": 530.0, "ratio": 530 / 512}},
        "rate": {"target_per_s": 10.0, "achieved_per_s": 9.8, "ratio": 0.98},
        "model_limits": {"max_input_tokens": 4096, "max_output_tokens": None,
                         "exceeded": False, "detail": None},
    }
    return {**clean, **keys}


def codes(verdict: dict[str, Any]) -> list[str]:
    return [r["code"] for r in verdict["reasons"]]


def test_a_clean_job_is_valid_without_reasons() -> None:
    assert judge_validity(metrics()) == {"verdict": "valid", "reasons": []}


CLIENT_BOUND = {"client_bound": True, "threshold_ms": 10.0,
                "reason": "event-loop delay p99 23.4 ms > 10 ms"}
SHORT = {"requested": 64, "fixed": True, "achieved_mean": 12.0, "ratio": 12 / 64}
# Each seen case of issue 10 (sections 3, 4, 5, 7) as the keys its summary carries: the code it
# raises, and the figure it quotes.
FIRING = {
    "client_bound": ({"client": CLIENT_BOUND}, "event-loop delay p99 23.4 ms > 10 ms"),
    "model_limit_exceeded": (
        {"model_limits": {"max_input_tokens": 4096, "max_output_tokens": None, "exceeded": True,
                          "detail": "input_tokens 4000 + max_tokens 200 > 4096"}},
        "input_tokens 4000 + max_tokens 200 > 4096"),
    "tokens_from_chunks": ({"output_tokens_source": {"usage": 0, "chunks": 20,
                                                     "usage_inconsistent": 0}},
                           "20 of 20 ok requests counted by content chunks (no usage)"),
    "usage_inconsistent": ({"output_tokens_source": {"usage": 18, "chunks": 2,
                                                     "usage_inconsistent": 2}},
                           "2 of 20 ok requests had usage below their content chunks"),
    "short_outputs": ({"lengths": {**metrics()["lengths"], "output": SHORT}},
                      "outputs 12 tokens on average of 64 asked (ratio 0.19 < 0.9)"),
    "prompts_off_target": (
        {"lengths": {**metrics()["lengths"],
                     "input": {"target": 512, "achieved_mean": 310.0, "ratio": 310 / 512}}},
        "prompts 310 tokens on average vs target 512 (ratio 0.61, outside 0.8-1.25)"),
    "rate_shortfall": ({"rate": {"target_per_s": 10.0, "achieved_per_s": 2.9, "ratio": 0.29}},
                       "achieved 2.9 req/s of 10 target (ratio 0.29 < 0.8)"),
    "bursty_chunks": ({"itl_ms": dist(p50=0.02), "tpot_ms": dist(p50=9.8)},
                      "ITL p50 0.02 ms vs TPOT p50 9.8 ms (below 0.1 x TPOT)"),
    "tokens_per_chunk": ({"tokens_per_chunk": dist(p50=4.0)}, "tokens per chunk p50 4 > 1.5"),
    "server_disagreement": (
        {"server_metrics": {"disagreement": {"server_tokens_per_s": 140.0,
                                             "client_tokens_per_s": 100.0,
                                             "difference": 0.4, "threshold": 0.2}}},
        "server generated 140 tok/s vs client 100 tok/s (ratio 1.40, beyond 1 ± 0.2)"),
    # issue 14 §1: a shared-prefix job whose server's counters found no prefix in its cache
    "prefix_cache_gap": ({"prefix_cache": {"expected": 0.8, "achieved": 0.0}},
                         "prefix-cache hit rate 0.00 achieved vs 0.80 expected from the plan "
                         "(gap -0.80, beyond ±0.1)"),
    # issue 12: what the LiteLLM proxy's headers reported (metrics.gateway)
    "gateway_retries": ({"gateway": {"requests": 20, "retries": {"requests": 3, "total": 4}}},
                        "3 of 20 requests retried by the proxy (4 retries in all)"),
    "gateway_fallbacks": ({"gateway": {"requests": 20, "fallbacks": {"requests": 1,
                                                                     "total": 1}}},
                          "1 of 20 requests answered after a fallback (1 fallbacks in all)"),
    "deployment_mismatch": ({"gateway": {"requests": 20, "mismatched": 20,
                                         "model_groups": {"other-model": 20}}},
                            "20 requests answered by another model group (groups seen: "
                            "other-model)"),
    # issue 13 §3: an open loop stopped early as saturated (the job's early_stop, passed in)
    "saturated": ({"early_stop": {"reason": "saturated", "at_s": 10.2, "completed_per_s": 9.8,
                                  "target_per_s": 40.0, "wait_p50_ms": 2900.0,
                                  "previous_wait_p50_ms": 1100.0}},
                  "completed 9.8 req/s of 40 target while the median wait grew from 1100 to "
                  "2900 ms (at 10.2 s)"),
}


@pytest.mark.parametrize("code", FIRING)
def test_each_reason_fires_with_its_figure_severity_and_remedy(code: str) -> None:
    keys, figure = FIRING[code]
    verdict = judge_validity(metrics(**keys))
    [reason] = verdict["reasons"]
    assert reason["code"] == code and reason["figure"] == figure
    assert reason["severity"] == RULES[code].severity == verdict["verdict"]
    assert reason["explanation"] == RULES[code].explanation and reason["remedy"]


def test_every_code_has_a_seen_case() -> None:
    assert set(FIRING) == set(RULES)


QUIET = {
    "outputs at the threshold": {"lengths": {**metrics()["lengths"], "output": {
        **SHORT, "achieved_mean": 57.6, "ratio": 0.9}}},
    "short outputs without a fixed length": {"lengths": {**metrics()["lengths"], "output": {
        **SHORT, "fixed": False}}},
    "a short prompt within the chat template's slack": {"lengths": {
        **metrics()["lengths"], "input": {"target": 8, "achieved_mean": 30.0, "ratio": 3.75}}},
    "prompts at the band's edge": {"lengths": {
        **metrics()["lengths"], "input": {"target": 512, "achieved_mean": 640.0,
                                          "ratio": 1.25}}},
    "dataset prompts (no target)": {"lengths": {
        **metrics()["lengths"], "input": {"target": None, "achieved_mean": 90.0,
                                          "ratio": None}}},
    "closed loop (no rate)": {"rate": {"target_per_s": None, "achieved_per_s": None,
                                       "ratio": None}},
    "rate at the threshold": {"rate": {"target_per_s": 10.0, "achieved_per_s": 8.0,
                                       "ratio": 0.8}},
    "fast tokens (timer jitter)": {"itl_ms": dist(p50=0.01), "tpot_ms": dist(p50=0.5)},
    "no streaming (no ITL/TPOT)": {"itl_ms": dist(p50=None), "tpot_ms": dist(p50=None)},
    "coalesced chunks make ITL longer, not bursty": {"itl_ms": dist(p50=30.0)},
    "tokens per chunk at the threshold": {"tokens_per_chunk": dist(p50=1.5)},
    "no usage-counted stream": {"tokens_per_chunk": dist(p50=None)},
    "server and client agree (no disagreement fact)": {"server_metrics": {
        "generation_tokens_per_s": 101.0, "client_output_tokens_per_s": 100.0,
        "disagreement": None}},
    "a server that was not scraped": {"server_metrics": {"url": None, "error": "off"}},
    "a disagreement fact at the threshold": {"server_metrics": {"disagreement": {
        "server_tokens_per_s": 80.0, "client_tokens_per_s": 100.0}}},
    "a prefix-cache gap at the threshold": {"prefix_cache": {"expected": 0.8,
                                                             "achieved": 0.7}},
    "a prefix job whose server has no counters": {"prefix_cache": {"expected": 0.8,
                                                                   "achieved": None}},
    "a job without a prefix": {"prefix_cache": None},
    "a client that counted nothing": {"server_metrics": {"disagreement": {
        "server_tokens_per_s": 80.0, "client_tokens_per_s": 0}}},
}


@pytest.mark.parametrize("case", QUIET)
def test_beside_a_threshold_or_without_data_no_reason_fires(case: str) -> None:
    assert judge_validity(metrics(**QUIET[case])) == {"verdict": "valid", "reasons": []}


def test_the_server_block_beside_the_metrics_is_judged_without_changing_them() -> None:
    clean = metrics()
    server = {"generation_tokens_per_s": 12.5, "client_output_tokens_per_s": 50.0,
              "disagreement": {"server_tokens_per_s": 12.5, "client_tokens_per_s": 50.0,
                               "difference": 0.75, "threshold": 0.2}}
    verdict = judge_validity(clean, server_metrics=server)
    assert verdict["verdict"] == "degraded" and codes(verdict) == ["server_disagreement"]
    assert verdict["reasons"][0]["figure"] == (
        "server generated 12.5 tok/s vs client 50 tok/s (ratio 0.25, beyond 1 ± 0.2)")
    assert "server_metrics" not in clean  # pure: the caller's metrics are left as they were
    assert judge_validity(clean, server_metrics=None)["verdict"] == "valid"


def test_the_disagreement_threshold_is_the_one_the_summary_uses() -> None:
    from runner.servermetrics.summary import DISAGREEMENT, disagreement

    assert THRESHOLDS.server_disagreement == DISAGREEMENT
    fact = disagreement(130.0, 100.0, window_s=60, interval_s=1)
    assert codes(judge_validity(metrics(), server_metrics={"disagreement": fact})) == [
        "server_disagreement"]


def test_invalid_reasons_come_first_and_set_the_verdict() -> None:
    keys = {**FIRING["tokens_from_chunks"][0], **FIRING["rate_shortfall"][0],
            **FIRING["client_bound"][0]}
    verdict = judge_validity(metrics(**keys))
    assert verdict["verdict"] == "invalid"
    assert codes(verdict) == ["client_bound", "tokens_from_chunks", "rate_shortfall"]


def test_chunk_counts_of_inconsistent_usage_are_not_also_estimated_tokens() -> None:
    both = {"usage": 10, "chunks": 10, "usage_inconsistent": 4}
    verdict = judge_validity(metrics(output_tokens_source=both))
    assert codes(verdict) == ["tokens_from_chunks", "usage_inconsistent"]
    assert verdict["reasons"][0]["figure"].startswith("6 of 20 ")


def test_a_summary_of_an_older_runner_reads_without_the_new_keys() -> None:
    # Before issue 10: no lengths, rate, tokens_per_chunk, model_limits, usage_inconsistent.
    old = summarize(ok_records(5), health=ClientHealth(loop_delay_ms=[40.0] * 20))
    old["output_tokens_source"] = {"usage": 3, "chunks": 2}
    verdict = judge_validity(old)
    assert codes(verdict) == ["client_bound", "tokens_from_chunks"]
    assert verdict["reasons"][0]["figure"] == "event-loop delay p99 40.0 ms > 10 ms"
    assert judge_validity({})["verdict"] == "valid"


def test_stored_readers_tell_unknown_from_never_run() -> None:
    verdict = judge_validity(metrics(**FIRING["tokens_from_chunks"][0]))
    job = {"metrics": {**metrics(**FIRING["tokens_from_chunks"][0]), "validity": verdict}}
    assert stored_verdict(job) == "degraded" and tokens_estimated(job)
    assert [r["code"] for r in stored_reasons(job)] == ["tokens_from_chunks"]
    old = {"metrics": metrics()}
    assert stored_verdict(old) == "unknown" and stored_reasons(old) == []
    assert not tokens_estimated(old)
    assert stored_verdict({"metrics": None}) is None
    hostile = {"metrics": {"validity": {"verdict": "<b>", "reasons": "nope"}}}
    assert stored_verdict(hostile) == "unknown" and stored_reasons(hostile) == []


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / "schemas/result.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def test_the_schema_mirrors_the_codes_severities_and_thresholds(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    reason = defs["validity_reason"]
    assert reason["properties"]["code"]["enum"] == list(RULES)
    mirrored = {alt["properties"]["code"]["const"]: alt["properties"]["severity"]["const"]
                for alt in reason["oneOf"]}
    assert mirrored == {code: rule.severity for code, rule in RULES.items()}
    documented = {k: v["const"] for k, v in defs["validity_thresholds"]["properties"].items()}
    assert documented == dataclasses.asdict(THRESHOLDS)
    assert "gateway_retries" in defs["validity"]["description"]  # issue 12: now codes


@pytest.mark.parametrize("code", FIRING)
def test_every_verdict_validates_against_the_schema(schema: dict[str, Any], code: str) -> None:
    validator = jsonschema.Draft202012Validator({"$ref": "#/$defs/validity",
                                                 "$defs": schema["$defs"]})
    verdict = judge_validity(metrics(**FIRING[code][0]))
    validator.validate(verdict)
    validator.validate(judge_validity(metrics()))
    other = "invalid" if verdict["verdict"] == "degraded" else "degraded"
    wrong = {**verdict, "reasons": [{**verdict["reasons"][0], "severity": other}]}
    assert not validator.is_valid(wrong)


def test_a_replays_shortfall_quotes_the_rate_its_trace_scheduled_never_a_question_mark() -> None:
    # A replay has no planned rate (target_per_s null): its ratio is against the trace's
    # scheduled rate, which the figure must quote (it printed "of ? target").
    replay = {"rate": {"target_per_s": None, "achieved_per_s": 2781.6,
                       "scheduled_per_s": 10000.0, "ratio": 0.278}}
    reason = judge_validity(metrics(**replay))["reasons"][0]
    assert reason["figure"] == ("achieved 2782 req/s of 10000 scheduled by the trace "
                                "(ratio 0.28 < 0.8)")
