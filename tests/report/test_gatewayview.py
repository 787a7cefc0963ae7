"""The Gateway table of the reports: model time beside the proxy's overhead, per job."""

from __future__ import annotations

from typing import Any

from runner.report.gatewayview import gateway_rows, markdown_gateway
from runner.report.html import fmt
from runner.report.render import _md


def job(gateway: Any, job_id: str = "b/m") -> dict[str, Any]:
    return {"id": job_id, "metrics": {"e2e_ms": {"p50": 120.0}, "gateway": gateway}}


GATEWAY = {"requests": 10, "overhead_ms": {"p50": 7.5, "p95": 12.0},
           "model_time_ms": {"p50": 112.5, "p95": 150.0},
           "retries": {"requests": 1, "total": 2}, "fallbacks": {"requests": 0, "total": 0},
           "deployments": {"a" * 64: 7, "b" * 64: 3}, "model_groups": {"m": 10},
           "mismatched": 0, "api_bases": ["10.0.0.5:8000"], "cost_usd": 0.0123,
           "litellm_versions": ["1.106.2"]}


def test_a_row_shows_model_time_beside_overhead_and_what_the_proxy_did() -> None:
    [row] = gateway_rows([job(GATEWAY), job(None, "b/other")], fmt)
    assert row.job == "b/m"
    assert row.cells == ("120", "112", "150", "7.50", "12.0", "1 req (2 in all)", "0",
                         "aaaaaaaaaaaa×7, bbbbbbbbbbbb×3", "10.0.0.5:8000", "0.01", "1.106.2")


def test_no_gateway_no_table() -> None:
    assert markdown_gateway([job(None)], fmt, _md) == []


def test_markdown_escapes_what_the_proxy_sent() -> None:
    hostile = {**GATEWAY, "litellm_versions": ["<script>|x"], "deployments": {"|*_": 1}}
    lines = markdown_gateway([job(hostile)], fmt, _md)
    table = [line for line in lines if line.startswith("| ")]
    assert len({line.count(" | ") for line in table}) == 1  # no extra column from a pipe
    assert "\\<script\\>" in lines[-1]
