"""The probe on the wire: what it learns from real answers of a scripted server, and its
bounds in time (a server that accepts and never answers)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from scripted_server import Script, scripted_server

from runner.inventory.config import Server
from runner.run.probewire import PROBE_TOKENS, ProbeTarget, run_probe


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


REASONING = [(0, _chunk({"reasoning_content": "Hmm"})), (1, _chunk({"content": "OK"})),
             (2, _chunk({}, "stop")), (3, "[DONE]")]  # no usage chunk, 2 text chunks


def test_the_probe_learns_reasoning_and_missing_usage() -> None:
    script = Script(REASONING, models=("r",))
    with scripted_server(script) as url:
        report = run_probe([ProbeTarget(Server("s", url), "r", {"endpoint": "chat"})], {})
    [result] = report.results
    assert (result.status, result.sends_reasoning, result.streams_usage) == ("ok", True, False)
    # It stopped after 2 chunks both times, ignore_eos/min_tokens or not: not honoured.
    assert result.honours_min_tokens is False
    first, second = script.received
    assert first["max_tokens"] == PROBE_TOKENS and first["stream_options"] == {
        "include_usage": True}
    assert "ignore_eos" not in first
    assert second["ignore_eos"] is True and second["min_tokens"] == PROBE_TOKENS


def test_the_probe_keeps_the_benchmarks_settings() -> None:
    script = Script(REASONING, body={"choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"content": "OK"}}]},
                    models=("r",))
    params = {"endpoint": "chat", "stream": False, "extra_body": {"top_k": 5}}
    with scripted_server(script) as url:
        report = run_probe([ProbeTarget(Server("s", url), "r", params)], {})
    [result] = report.results
    assert result.status == "ok"
    assert result.streams_usage is None and result.sends_reasoning is False
    assert script.received[0]["stream"] is False and script.received[0]["top_k"] == 5


def test_a_deployment_header_echoing_the_key_is_neither_printed_nor_stored() -> None:
    key = "sk-live-0123456789abcdef"
    script = Script(REASONING, models=("r",),
                    headers={"x-litellm-model-id": f"dep Bearer {key} \x1b[31m"})
    with scripted_server(script) as url:
        server = Server("s", url, api_key_env="K")
        report = run_probe([ProbeTarget(server, "r", {"endpoint": "chat"})], {"K": key})
    [result] = report.results
    assert result.status == "ok"
    assert result.deployment is None  # a control character: not what LiteLLM sends
    script.headers["x-litellm-model-id"] = f"dep-{key}"
    with scripted_server(script) as url:
        server = Server("s", url, api_key_env="K")
        report = run_probe([ProbeTarget(server, "r", {"endpoint": "chat"})], {"K": key})
    deployment = report.results[0].deployment or ""
    assert deployment.startswith("dep-") and "0123456789" not in deployment, deployment


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and reads, never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def test_a_silent_server_is_a_timeout_within_its_timeout_s() -> None:
    with silent_server() as url:
        server = Server("s", url, timeout_s=0.3)
        report = run_probe([ProbeTarget(server, "m", {})], {})
    [result] = report.results
    assert result.status == "timeout" and not result.dropped
    assert not report.capped


def test_the_overall_cap_ends_the_probe() -> None:
    with silent_server() as url:
        server = Server("s", url, timeout_s=30.0)
        targets = [ProbeTarget(server, f"m{i}", {}) for i in range(6)]
        report = run_probe(targets, {}, concurrency=2, cap_s=0.3)
    assert report.capped
    assert {r.status for r in report.results} == {"timeout"}
    assert "the probe's cap (0.3 s)" in report.results[-1].reason
