"""The probe's pure parts: classification, what it learned, duplicates, the report's banner."""

from __future__ import annotations

import pytest

from runner.load.records import RequestRecord
from runner.report.probed import probe_notes
from runner.run.probe import (
    ProbeReport,
    ProbeResult,
    classify,
    cooldown_wait_s,
    duplicates,
    text_lines,
)
from runner.run.probewire import PROBE_TOKENS, has_reasoning, honoured

LITELLM_COOLDOWN = ("HTTP 429: No deployments available for selected model, Try again in 5 "
                    "seconds. All deployments for selected model are in cooldown.")


def _failed(status: int | None, message: str, kind: str = "http") -> RequestRecord:
    return RequestRecord(index=0, http_status=status, error=message, error_kind=kind)


@pytest.mark.parametrize(("record", "mode", "expected"), [
    (RequestRecord(index=0, ok=True), None, "ok"),
    (_failed(401, "HTTP 401: Incorrect API key"), None, "unauthorized"),
    (_failed(400, "HTTP 400: No connected db."), None, "unauthorized"),
    (_failed(403, "HTTP 403: key not allowed to access model"), None, "forbidden"),
    (_failed(404, "HTTP 404: The model `x` does not exist"), None, "not_found"),
    (_failed(404, "HTTP 404: litellm.NotFoundError: OpenAIException - This is not a chat model "
                  "and thus not supported in the v1/chat/completions endpoint"), None,
     "wrong_mode"),
    (_failed(400, 'HTTP 400: "nomic-embed-text" does not support chat'), None, "wrong_mode"),
    (_failed(404, "HTTP 404: Not Found"), "embedding", "wrong_mode"),
    (_failed(404, "HTTP 404: Not Found"), "chat", "not_found"),
    (_failed(429, "HTTP 429: rpm limit reached", "rate_limited"), None, "rate_limited"),
    (_failed(429, LITELLM_COOLDOWN, "rate_limited"), None, "cooldown"),
    (_failed(503, "HTTP 503: overloaded"), None, "server_error"),
    (_failed(None, "no complete answer", "timeout"), None, "timeout"),
    (_failed(None, "no byte from the server", "stalled"), None, "timeout"),
    (_failed(None, "ClientConnectorError: refused", "connection"), None, "connection"),
    (_failed(None, "the answer is not JSON", "invalid_response"), None, "other"),
    (_failed(400, "HTTP 400: bad temperature"), None, "other"),
])
def test_classify(record: RequestRecord, mode: str | None, expected: str) -> None:
    status, reason = classify(record, "chat", mode)
    assert status == expected
    if expected == "unauthorized":
        assert "check the key" in reason


@pytest.mark.parametrize(("endpoint", "mode", "message", "expected"), [
    ("embeddings", "chat", "HTTP 404: Not Found", "wrong_mode"),
    ("embeddings", "embedding", "HTTP 404: Not Found", "not_found"),
    ("embeddings", None, "HTTP 400: The model does not support Embeddings API", "wrong_mode"),
    ("responses", "embedding", "HTTP 400: bad request", "wrong_mode"),
    ("responses", "chat", "HTTP 404: Not Found", "not_found"),
    ("responses", None, "HTTP 404: The model does not support Responses API", "wrong_mode"),
])
def test_embeddings_and_responses_probes_know_their_modes(
    endpoint: str, mode: str | None, message: str, expected: str,
) -> None:
    status = int(message.split()[1].rstrip(":"))
    assert classify(_failed(status, message), endpoint, mode)[0] == expected


def test_the_completions_endpoint_fits_chat_and_completion_modes() -> None:
    record = _failed(404, "HTTP 404: Not Found")
    assert classify(record, "completions", "completion")[0] == "not_found"
    assert classify(record, "completions", "rerank")[0] == "wrong_mode"


def test_cooldown_wait() -> None:
    assert cooldown_wait_s(LITELLM_COOLDOWN) == 5.0
    assert cooldown_wait_s("cooldown, no figure", 3.0) == 3.0


@pytest.mark.parametrize(("data", "expected"), [
    (b'{"choices":[{"delta":{"reasoning_content":"Let me"}}]}', True),
    (b'{"choices":[{"delta":{"reasoning":"think"}}]}', True),
    (b'{"choices":[{"message":{"reasoning_content":"x","content":"OK"}}]}', True),
    (b'{"choices":[{"delta":{"reasoning_content":""}}]}', False),
    (b'{"choices":[{"delta":{"content":"reasoning about it"}}]}', False),
    (b'{"choices":[{"delta":{"content":"OK"}}]}', False),
    (b'{"reasoning', False),
])
def test_has_reasoning(data: bytes, expected: bool) -> None:
    assert has_reasoning(data) is expected


def _tokens(n: int | None, ok: bool = True) -> RequestRecord:
    return RequestRecord(index=0, ok=ok, output_tokens=n)


@pytest.mark.parametrize(("plain", "forced", "expected"), [
    (_tokens(2), _tokens(PROBE_TOKENS), True),  # stopped early, forced to all: honoured
    (_tokens(2), _tokens(2), False),  # stopped early both times: ignored
    (_tokens(2), _tokens(None, ok=False), False),  # refused (e.g. 400 on ignore_eos)
    (_tokens(PROBE_TOKENS), _tokens(PROBE_TOKENS), None),  # never stopped early: can't tell
])
def test_honoured(plain: RequestRecord, forced: RequestRecord, expected: bool | None) -> None:
    assert honoured(plain, forced) is expected


def _result(model: str, status: str = "ok", deployment: str | None = None) -> ProbeResult:
    return ProbeResult("proxy", model, "chat", status, "" if status == "ok" else "why",
                       deployment=deployment)


def test_two_ids_answered_by_one_deployment_are_duplicates() -> None:
    results = [_result("alias", deployment="d1"), _result("real", deployment="d1"),
               _result("other", deployment="d2"), _result("gone", "not_found")]
    assert duplicates(results) == [{"server": "proxy", "deployment": "d1",
                                    "models": ["alias", "real"]}]
    report = ProbeReport(tuple(results))
    block = report.to_json()
    assert block["alias"]["same_deployment_as"] == ["real"]
    assert "same_deployment_as" not in block["other"]
    assert block["gone"]["dropped"] is True
    lines = text_lines(report)
    assert "  DUPLICATE: alias, real answered by one deployment (d1)" in lines
    assert lines[-1] == "  dropped before the run (1): gone"
    notes = probe_notes({"probe": block})
    assert notes[0] == ("1 model(s) dropped by the probe before the run, their jobs not run: "
                        "gone: not_found (why)")
    assert notes[1].startswith("one deployment answered for alias, real")


def test_a_model_probed_for_two_endpoints_shows_the_verdict_that_dropped_it() -> None:
    ok = ProbeResult("proxy", "m", "chat", "ok")
    gone = ProbeResult("proxy", "m", "completions", "wrong_mode", "no completions")
    report = ProbeReport((ok, gone))
    assert report.to_json()["m"]["endpoint"] == "completions"
    assert report.drops("proxy", "m", "chat") is None
    assert report.drops("proxy", "m", "completions") is gone


def test_no_probe_no_notes() -> None:
    assert probe_notes({}) == []
    assert probe_notes({"probe": {"m": {"status": "ok", "dropped": False}}}) == []


def test_a_probe_timeout_names_the_servers_timeout_not_the_plans() -> None:
    # The probe waits the server's timeout_s (servers.yaml); a reason naming the plan's
    # request_timeout_s sent users to the wrong setting.
    record = RequestRecord(index=0, ok=False, error_kind="timeout",
                           error="no complete answer within request_timeout_s (3 s)")
    status, reason = classify(record, "chat", None)
    assert status == "timeout" and "timeout_s (servers.yaml)" in reason
    assert "request_timeout_s" not in reason
