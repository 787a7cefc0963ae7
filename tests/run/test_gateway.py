"""The gateway apart from the model (pure): what runner asks a LiteLLM proxy for, a job's
metrics.gateway from its records, and the manifest's gateway block from the jobs."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from runner.load.records import RequestRecord
from runner.run.gateway import gateway_request, run_gateway, summarize_gateway
from runner.run.validity import judge_validity
from runner.schema import load_schema


def block(**changes: Any) -> dict[str, Any]:
    clean = {"deployment_id": "d1", "model_group": "m", "api_base": "10.0.0.5:8000",
             "call_id": "c", "litellm_version": "1.106.2", "cost_usd": 0.001,
             "duration_ms": 90.0, "overhead_ms": 10.0, "attempted_retries": 0,
             "attempted_fallbacks": 0}
    return {**clean, **changes}


def record(i: int, ok: bool = True, e2e: float = 100.0, warmup: bool = False,
           **changes: Any) -> RequestRecord:
    return RequestRecord(index=i, ok=ok, e2e_ms=e2e, warmup=warmup, gateway=block(**changes),
                         error_kind=None if ok else "http")


@pytest.mark.parametrize(("allowed", "headers", "body"), [
    ({"retries": False, "fallbacks": False}, {"x-litellm-num-retries": "0"},
     {"disable_fallbacks": True}),
    ({"retries": True, "fallbacks": False}, {}, {"disable_fallbacks": True}),
    ({"retries": False, "fallbacks": True}, {"x-litellm-num-retries": "0"}, {}),
    ({"retries": True, "fallbacks": True}, {}, {}),
])
def test_runner_asks_for_no_retries_and_no_fallbacks_unless_allowed(
        allowed: dict[str, bool], headers: dict[str, str], body: dict[str, Any]) -> None:
    assert gateway_request("litellm", allowed) == (headers, body)


def test_the_simulator_is_asked_nothing() -> None:
    assert gateway_request("mock", {"retries": False, "fallbacks": False}) == ({}, {})


def test_no_litellm_headers_give_no_block() -> None:
    plain = [RequestRecord(index=i, ok=True, e2e_ms=5.0) for i in range(3)]
    assert summarize_gateway(plain, "m") is None
    assert summarize_gateway([record(0, warmup=True)], "m") is None  # warm-ups do not count


def test_model_time_is_e2e_minus_overhead_and_the_rest_is_counted() -> None:
    records = [record(0, e2e=100.0, overhead_ms=10.0), record(1, e2e=50.0, overhead_ms=30.0),
               record(2, ok=False, e2e=5.0, overhead_ms=None, deployment_id=None,
                      cost_usd=0.0, attempted_retries=None),
               record(3, e2e=80.0, deployment_id="d2", attempted_retries=2, cost_usd=0.002,
                      api_base="10.0.0.6:8000", litellm_version="1.107.0"),
               record(4, warmup=True, deployment_id="warm")]
    gw = summarize_gateway(records, "m")
    assert gw is not None
    assert gw["requests"] == 4
    assert (gw["overhead_ms"]["count"], gw["overhead_ms"]["p50"]) == (3, 10.0)
    assert (gw["model_time_ms"]["min"], gw["model_time_ms"]["max"]) == (20.0, 90.0)
    assert gw["retries"] == {"requests": 1, "total": 2}
    assert gw["fallbacks"] == {"requests": 0, "total": 0}
    assert gw["deployments"] == {"d1": 2, "d2": 1}
    assert gw["api_bases"] == ["10.0.0.5:8000", "10.0.0.6:8000"]
    assert gw["litellm_versions"] == ["1.106.2", "1.107.0"]
    assert gw["cost_usd"] == pytest.approx(0.004)
    assert gw["mismatched"] == 0
    jsonschema.validate(gw, {"$ref": "#/$defs/gateway", "$defs": load_schema("result")["$defs"]})


def test_another_model_group_is_a_mismatch_unless_a_fallback_or_a_matching_wildcard() -> None:
    records = [record(0, model_group="other"),
               record(1, model_group="spare", attempted_fallbacks=1),
               record(2, model_group="openai/*"), record(3, model_group="openai/gpt-4o")]
    gw = summarize_gateway(records, "openai/gpt-4o")
    assert gw is not None and gw["mismatched"] == 1 and gw["fallbacks"]["requests"] == 1
    reasons = [r["code"] for r in judge_validity({"gateway": gw})["reasons"]]
    assert reasons == ["gateway_fallbacks", "deployment_mismatch"]


def test_an_overhead_larger_than_e2e_gives_zero_model_time() -> None:
    gw = summarize_gateway([record(0, e2e=5.0, overhead_ms=9.0)], "m")
    assert gw is not None and gw["model_time_ms"]["max"] == 0.0


def test_the_manifest_block_gathers_versions_and_deployments_over_jobs() -> None:
    jobs: list[dict[str, Any]] = [
        {"model": "steady", "metrics": {"gateway": {"litellm_versions": ["1.106.2"],
                                                    "deployments": {"d1": 3}}}},
        {"model": "steady-alias", "metrics": {"gateway": {"litellm_versions": ["1.107.0"],
                                                          "deployments": {"d1": 2, "d2": 1}}}},
        {"model": "steady", "metrics": {"gateway": {"deployments": {"d1": 1}}}},
        {"metrics": {"gateway": None}}, {"metrics": None}, {}]
    assert run_gateway(jobs) == {"litellm_versions": ["1.106.2", "1.107.0"],
                                 "deployments": {"d1": 6, "d2": 1},
                                 "shared_deployments": {"d1": ["steady", "steady-alias"]}}
    assert run_gateway(jobs[3:]) is None


def test_a_key_echoed_in_a_gateway_header_is_redacted_before_it_is_stored() -> None:
    from runner.redaction import header_keys
    from runner.run.executor import scrub

    key = "sk-live-0123456789abcdef"
    rec = record(0, call_id=f"id-{key}", model_group=key, attempted_retries=1)
    scrub(rec, header_keys({"Authorization": f"Bearer {key}"}))
    assert rec.gateway is not None and key not in repr(rec.gateway)
    assert rec.gateway["attempted_retries"] == 1


def test_a_proxy_naming_a_new_deployment_per_answer_cannot_grow_the_job_without_bound() -> None:
    # Found by a fresh-eyes pass: one dict entry per request, kept in the job JSON and manifest.
    records = [record(i, deployment_id=f"dep-{i}", model_group=f"group-{i}",
                      api_base=f"h{i}.example:80", litellm_version=f"1.{i}") for i in range(500)]
    summary = summarize_gateway(records, "m")
    assert summary is not None
    for key in ("deployments", "model_groups"):
        assert len(summary[key]) == 33 and summary[key]["(others)"] == 500 - 32, key
        assert sum(summary[key].values()) == 500
    assert len(summary["api_bases"]) == len(summary["litellm_versions"]) == 32
