"""LiteLLM's x-litellm-* response headers read into a request's gateway block: the values
LiteLLM 1.106.2 sends, and hostile ones (not numbers, negative, huge, credentials in a URL)."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from runner.load.gatewayheaders import api_host, read_gateway

# As a real LiteLLM 1.106.2 proxy sent them for a streamed answer (see test_apply_gateway).
SENT = {
    "x-litellm-call-id": "a2ad45fe-f6ce-46d4-81bb-92e514a8e618",
    "x-litellm-model-id": "73e1d5d2ad104a54ab0a3491514539af5d7ded4b2dfa5e43af95368a89fd6a35",
    "x-litellm-model-api-base": "http://127.0.0.1:42563/v1",
    "x-litellm-version": "1.106.2",
    "x-litellm-response-cost": "0.0",
    "x-litellm-response-duration-ms": "13.540983200073242",
    "x-litellm-overhead-duration-ms": "7.6239",
    "x-litellm-model-group": "flaky",
    "x-litellm-attempted-retries": "1",
    "x-litellm-attempted-fallbacks": "0",
    "content-type": "text/event-stream",
}


def headers(**changes: str | None) -> CIMultiDictProxy[str]:
    values = {**SENT, **{k.replace("_", "-"): v for k, v in changes.items()}}
    return CIMultiDictProxy(CIMultiDict({k: v for k, v in values.items() if v is not None}))


def test_what_litellm_sends_is_read_into_the_block() -> None:
    assert read_gateway(headers()) == {
        "deployment_id": SENT["x-litellm-model-id"], "model_group": "flaky",
        "api_base": "127.0.0.1:42563", "call_id": SENT["x-litellm-call-id"],
        "litellm_version": "1.106.2", "cost_usd": 0.0, "duration_ms": 13.540983200073242,
        "overhead_ms": 7.6239, "attempted_retries": 1, "attempted_fallbacks": 0}


def test_names_are_case_insensitive_as_http_headers_are() -> None:
    block = read_gateway(CIMultiDictProxy(CIMultiDict(
        {k.upper(): v for k, v in SENT.items()})))
    assert block is not None and block["overhead_ms"] == 7.6239


def test_an_answer_without_litellm_headers_has_no_block() -> None:
    plain = CIMultiDictProxy(CIMultiDict({"content-type": "text/event-stream",
                                          "x-litellm-version": "1.106.2"}))
    assert read_gateway(plain) is None


def test_an_error_answer_carries_only_its_call_id_and_cost() -> None:
    # What the proxy sent with a 500 (retries asked off): call id, cost 0, nothing else read.
    error = CIMultiDictProxy(CIMultiDict({"x-litellm-call-id": "d1bc0cec",
                                          "x-litellm-response-cost": "0"}))
    block = read_gateway(error)
    assert block is not None and block["call_id"] == "d1bc0cec" and block["cost_usd"] == 0.0
    assert block["deployment_id"] is None and block["attempted_retries"] is None


@pytest.mark.parametrize("value", ["abc", "", "-1", "nan", "inf", "-inf", "1e400", "1e30",
                                   "1" * 41, "0x10", "7,5", "None"])
def test_a_duration_that_is_not_a_sane_number_is_unknown(value: str) -> None:
    block = read_gateway(headers(**{"x-litellm-overhead-duration-ms": value,
                                    "x-litellm-response-duration-ms": value,
                                    "x-litellm-response-cost": value}))
    assert block is not None
    assert (block["overhead_ms"], block["duration_ms"], block["cost_usd"]) == (None,) * 3


@pytest.mark.parametrize("value", ["one", "-1", "1.5", "99999999999999999999", "10001", ""])
def test_an_attempt_count_that_is_not_a_sane_count_is_unknown(value: str) -> None:
    block = read_gateway(headers(**{"x-litellm-attempted-retries": value,
                                    "x-litellm-attempted-fallbacks": value}))
    assert block is not None
    assert (block["attempted_retries"], block["attempted_fallbacks"]) == (None, None)


@pytest.mark.parametrize(("url", "host"), [
    ("http://127.0.0.1:8000/v1", "127.0.0.1:8000"),
    ("https://user:s3cret@api.example.com/openai/deployments/x?api-key=k", "api.example.com"),
    ("https://sk-live-123@Example.COM:8443/v1", "example.com:8443"),
    ("http://[::1]:8000/v1", "[::1]:8000"),
    ("api.example.com:9000/v1", "api.example.com:9000"),
    ("http://host:notaport/v1", None),
    ("http://host:99999/v1", None),
    ("http://exa mple.com/v1", None),
    ("http://%2e%2e/v1", None),
    ("garbage", "garbage"),
    ("", None),
    ("http:///v1", None),
])
def test_the_api_base_is_its_host_and_port_only(url: str, host: str | None) -> None:
    assert api_host(url) == host


def test_credentials_in_the_api_base_never_reach_the_record() -> None:
    block = read_gateway(headers(**{
        "x-litellm-model-api-base": "https://admin:hunter2@10.0.0.5:4000/v1?key=sk-abc"}))
    assert block is not None and block["api_base"] == "10.0.0.5:4000"
    assert "hunter2" not in repr(block) and "sk-abc" not in repr(block)


@pytest.mark.parametrize("value", ["x" * 5000, "a\x07b", "\u202eevil"])
def test_text_is_bounded_and_printable(value: str) -> None:
    block: Any = read_gateway(headers(**{"x-litellm-model-id": value,
                                         "x-litellm-version": value}))
    for key in ("deployment_id", "litellm_version"):
        assert block[key] is None or (len(block[key]) <= 160 and block[key].isprintable())
