"""The load generator and a gateway, on real sockets (tests/flaky_backend.py): what runner asks
for goes out on every request, and whatever x-litellm-* headers come back, each record keeps
a bounded, credential-free gateway block."""

from __future__ import annotations

import asyncio
from typing import Any

from flaky_backend import Backend, flaky_backend

from runner.load.exchange import Target
from runner.load.loadgen import LoadResult, run_load
from runner.load.workload import prompt_source
from runner.run.gateway import gateway_request

DEFAULTS = {"retries": False, "fallbacks": False}


def load(backend: Backend, allowed: dict[str, bool] = DEFAULTS, **params: Any) -> LoadResult:
    job = {"endpoint": "chat", "input_tokens": 8, "max_tokens": 4, "stream": True,
           "concurrency": 1, "requests": 3, "warmup_requests": 0, **params}
    headers, body = gateway_request("litellm", allowed)
    with flaky_backend(backend) as url:
        target = Target(url.removesuffix("/v1"), headers, "m", {}, body)
        return asyncio.run(run_load(target, job, prompt_source(job, ".", {})))


def test_every_request_asks_for_no_retries_and_no_fallbacks() -> None:
    backend = Backend()
    result = load(backend)
    assert all(r.ok and r.gateway is None for r in result.records)  # not a proxy: no block
    assert [h.get("x-litellm-num-retries") for h in backend.call_headers] == ["0"] * 3
    assert [c.get("disable_fallbacks") for c in backend.calls] == [True] * 3


def test_allowed_they_are_not_asked_for_and_extra_body_has_the_last_word() -> None:
    backend = Backend()
    load(backend, {"retries": True, "fallbacks": True})
    assert not any("x-litellm-num-retries" in h for h in backend.call_headers)
    assert not any("disable_fallbacks" in c for c in backend.calls)
    backend = Backend()
    load(backend, extra_body={"disable_fallbacks": False})
    assert [c["disable_fallbacks"] for c in backend.calls] == [False] * 3


def test_hostile_gateway_headers_give_a_bounded_block_without_credentials() -> None:
    backend = Backend(headers={
        "x-litellm-call-id": "c" * 6000,
        "x-litellm-model-id": "\x1b[2Jdeploy",
        "x-litellm-model-api-base": "https://admin:hunter2@10.1.2.3:8443/v1?api-key=sk-zzz",
        "x-litellm-overhead-duration-ms": "1e308",
        "x-litellm-response-duration-ms": "-4",
        "x-litellm-response-cost": "NaN",
        "x-litellm-attempted-retries": "99999999999999999999999",
        "x-litellm-attempted-fallbacks": "2",
    })
    [first, *_] = load(backend).records
    assert first.ok and first.gateway is not None
    g = first.gateway
    assert g["api_base"] == "10.1.2.3:8443" and "hunter2" not in repr(g) and "sk-zzz" not in repr(g)
    assert g["call_id"] is not None and len(g["call_id"]) <= 160
    assert g["deployment_id"] is None or g["deployment_id"].isprintable()
    assert (g["overhead_ms"], g["duration_ms"], g["cost_usd"]) == (None, None, None)
    assert (g["attempted_retries"], g["attempted_fallbacks"]) == (None, 2)
    assert first.to_json()["gateway"] == g
