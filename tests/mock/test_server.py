"""The simulated OpenAI-compatible endpoint: shapes, lengths, errors, timing, stats and CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import pytest

from runner.main import main
from runner.mock import clock as mockclock
from runner.mock import process as mockprocess
from runner.mock.answers import TOKEN_TEXT
from runner.mock.process import mock_process
from runner.mock.requests import count_prompt_tokens
from runner.mock.server import MockConfig, serving

T = TypeVar("T")
FAST = MockConfig(models=("m1", "org/m2"), ttft_ms=0, itl_ms=0, output_tokens=8)
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "say hi to me"}]}
PROMPT = {"model": "m1", "prompt": "one two three"}


def with_server(config: MockConfig,
                scenario: Callable[[aiohttp.ClientSession, str], Awaitable[T]]) -> T:
    """Serve `config` on a free loopback port, run `scenario(session, url)`, stop the server."""

    async def run() -> T:
        async with serving(config) as url, aiohttp.ClientSession() as session:
            return await scenario(session, url)

    with asyncio.Runner(loop_factory=mockclock.new_event_loop) as runner:
        return runner.run(run())


def post(path: str, body: Any, config: MockConfig = FAST,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async def scenario(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with session.post(url + path, data=data, headers=headers) as resp:
            return resp.status, await resp.read()

    return with_server(config, scenario)


def events(raw: bytes) -> list[Any]:
    """The SSE events of a stream: parsed JSON, and the final "[DONE]" as a string."""
    assert raw.endswith(b"\n\n")
    out: list[Any] = []
    for block in raw.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: ")
        data = block.removeprefix(b"data: ")
        out.append("[DONE]" if data == b"[DONE]" else json.loads(data))
    return out


def stream(path: str, body: dict[str, Any], config: MockConfig = FAST) -> list[Any]:
    status, raw = post(path, {**body, "stream": True}, config)
    assert status == 200
    return events(raw)


def test_models_list() -> None:
    async def scenario(session: aiohttp.ClientSession, url: str) -> Any:
        async with session.get(url + "/v1/models") as resp:
            return await resp.json()

    listed = with_server(FAST, scenario)
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["m1", "org/m2"]
    assert {m["object"] for m in listed["data"]} == {"model"}
    assert {m["owned_by"] for m in listed["data"]} == {"runner-mock"}
    assert all(isinstance(m["created"], int) for m in listed["data"])


def test_chat_stream_starts_role_only_then_one_chunk_per_token() -> None:
    got = stream("/v1/chat/completions", CHAT)
    role, *tokens, final, done = got
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(tokens) == 8
    assert {t["object"] for t in got[:-1]} == {"chat.completion.chunk"}
    assert {t["choices"][0]["delta"]["content"] for t in tokens} == {TOKEN_TEXT}
    assert all(t["choices"][0]["finish_reason"] is None for t in tokens)
    assert final["choices"][0]["delta"] == {}
    assert final["choices"][0]["finish_reason"] == "stop"
    assert done == "[DONE]"
    assert len({e["id"] for e in got[:-1]}) == 1
    assert all("usage" not in e for e in got[:-1])


def test_usage_chunk_only_with_include_usage() -> None:
    body = {**CHAT, "stream_options": {"include_usage": True}}
    *_, final, usage, done = stream("/v1/chat/completions", body)
    assert final["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}
    assert done == "[DONE]"
    no_usage = stream("/v1/chat/completions", {**CHAT, "stream_options": {}})
    assert not any(e != "[DONE]" and e.get("usage") for e in no_usage)


def test_completions_stream() -> None:
    body = {**PROMPT, "max_tokens": 3, "stream_options": {"include_usage": True}}
    *tokens, final, usage, done = stream("/v1/completions", body)
    assert [t["choices"][0]["text"] for t in tokens] == [TOKEN_TEXT] * 3
    assert {t["object"] for t in tokens} == {"text_completion"}
    assert final["choices"][0] == {"index": 0, "text": "", "logprobs": None,
                                   "finish_reason": "length"}
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert done == "[DONE]"


def test_non_streaming_answers_carry_usage() -> None:
    status, raw = post("/v1/chat/completions", CHAT)
    answer = json.loads(raw)
    assert status == 200
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant",
                                               "content": TOKEN_TEXT * 8}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}
    status, raw = post("/v1/completions", PROMPT)
    answer = json.loads(raw)
    assert answer["object"] == "text_completion"
    assert answer["choices"][0]["text"] == TOKEN_TEXT * 8
    assert answer["usage"]["prompt_tokens"] == 3


@pytest.mark.parametrize(("extra", "tokens", "finish"), [
    ({}, 8, "stop"),  # the natural answer (output_tokens=8)
    ({"max_tokens": 5}, 5, "length"),
    ({"max_tokens": 8}, 8, "length"),  # the limit is reached before EOS could come
    ({"max_tokens": 20}, 8, "stop"),
    ({"max_tokens": 20, "ignore_eos": True}, 20, "length"),
    ({"max_tokens": 5, "ignore_eos": True}, 5, "length"),
    ({"max_tokens": 20, "min_tokens": 12}, 12, "stop"),
    ({"max_tokens": 10, "min_tokens": 12}, 10, "length"),
    ({"min_tokens": 3}, 8, "stop"),
    ({"min_tokens": 12}, 12, "stop"),
    ({"max_completion_tokens": 4, "max_tokens": 6}, 4, "length"),
    ({"max_tokens": None}, 8, "stop"),
])
def test_answer_length(extra: dict[str, Any], tokens: int, finish: str) -> None:
    _, raw = post("/v1/chat/completions", {**CHAT, **extra})
    answer = json.loads(raw)
    assert answer["usage"]["completion_tokens"] == tokens
    assert answer["choices"][0]["finish_reason"] == finish
    chunks = stream("/v1/chat/completions", {**CHAT, **extra})
    assert sum(1 for e in chunks[1:-1] if e["choices"][0]["delta"].get("content")) == tokens
    assert chunks[-2]["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(("body", "status", "param", "code"), [
    ({**CHAT, "model": "nope"}, 404, "model", "model_not_found"),
    (b"{not json", 400, None, None),
    ([1, 2], 400, None, None),
    ({"messages": CHAT["messages"]}, 400, "model", None),
    ({"model": "m1"}, 400, "messages", None),
    ({"model": "m1", "messages": []}, 400, "messages", None),
    ({**CHAT, "max_tokens": 0}, 400, "max_tokens", None),
    ({**CHAT, "max_tokens": "5"}, 400, "max_tokens", None),
    ({**CHAT, "stream": "yes"}, 400, "stream", None),
    ({**CHAT, "min_tokens": -1}, 400, "min_tokens", None),
])
def test_errors_have_openai_shape(body: Any, status: int, param: str | None,
                                  code: str | None) -> None:
    got_status, raw = post("/v1/chat/completions", body)
    error = json.loads(raw)["error"]
    assert got_status == status
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["param"], error["code"]) == (param, code)
    assert error["message"]


def test_completions_need_a_prompt() -> None:
    status, raw = post("/v1/completions", {"model": "m1"})
    assert status == 400
    assert json.loads(raw)["error"]["param"] == "prompt"


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "secret"}])
def test_wrong_or_missing_key_is_401(headers: dict[str, str] | None) -> None:
    config = MockConfig(api_key="secret", ttft_ms=0, itl_ms=0)
    status, raw = post("/v1/chat/completions", {**CHAT, "model": "mock-model"}, config, headers)
    assert status == 401
    assert json.loads(raw)["error"]["code"] == "invalid_api_key"
    good = {"Authorization": "Bearer secret"}
    assert post("/v1/chat/completions", {**CHAT, "model": "mock-model"}, config, good)[0] == 200


def test_tokens_never_come_before_their_schedule() -> None:
    """Whatever the machine's load: content chunk k arrives no earlier than TTFT + k * ITL after
    the request was sent, and every write is at or after its time (a lag is never negative).
    The exact schedule is tested on a fake loop (test_clock.py); how close to it a real loop
    gets is measured by benchmarks/loadgen.py ("sim lag"), not asserted: a busy machine is late."""
    config = MockConfig(ttft_ms=50, itl_ms=10, output_tokens=10)

    async def scenario(session: aiohttp.ClientSession, url: str) -> tuple[list[float], Any]:
        body = {"model": "mock-model", "messages": CHAT["messages"], "stream": True}
        start = time.perf_counter()
        arrivals = []
        async with session.post(url + "/v1/chat/completions", json=body) as resp:
            async for line in resp.content:
                if line.startswith(b"data: {") and b'"content":"tok ' in line:
                    arrivals.append(time.perf_counter() - start)
        async with session.get(url + "/mock/stats") as resp:
            return arrivals, await resp.json()

    arrivals, stats = with_server(config, scenario)
    due = [0.050 + k * 0.010 for k in range(10)]
    assert len(arrivals) == 10
    assert all(got >= want - 1e-6 for got, want in zip(arrivals, due, strict=True)), arrivals
    assert arrivals[-1] < 10  # a sanity bound, many times the 0.14 s due: ms are not seconds
    lag = stats["write_lag_ms"]
    assert lag["count"] == 10
    assert 0 <= lag["p50"] <= lag["p99"] <= lag["max"]


def test_the_role_chunk_comes_at_arrival_not_at_ttft() -> None:
    config = MockConfig(ttft_ms=600_000, itl_ms=10, output_tokens=10)  # first token in 10 min

    async def scenario(session: aiohttp.ClientSession, url: str) -> bytes:
        body = {"model": "mock-model", "messages": CHAT["messages"], "stream": True}
        async with asyncio.timeout(60), \
                session.post(url + "/v1/chat/completions", json=body) as resp:
            return await resp.content.readline()

    role = json.loads(with_server(config, scenario).removeprefix(b"data: "))
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_stats_count_requests_and_reset() -> None:
    async def scenario(session: aiohttp.ClientSession, url: str) -> tuple[Any, Any]:
        chat = url + "/v1/chat/completions"
        for body in ({**CHAT, "stream": True}, CHAT, {**CHAT, "model": "x"}, {"model": 1}):
            async with session.post(chat, json=body) as resp:
                await resp.read()
        async with session.get(url + "/mock/stats") as resp:
            before = await resp.json()
        async with session.post(url + "/mock/stats/reset") as resp:
            return before, await resp.json()

    before, after = with_server(FAST, scenario)
    assert before["requests"]["total"] == 4
    assert before["requests"]["streaming"] == 1
    assert before["requests"]["by_status"] == {"200": 2, "400": 1, "404": 1}
    assert before["tokens"] == 16
    assert before["write_lag_ms"]["count"] == 9  # 8 streamed tokens + 1 non-streaming answer
    assert after["requests"]["total"] == 0
    assert after["write_lag_ms"] == {"count": 0, "p50": None, "p99": None, "max": None}


def test_client_disconnect_mid_stream_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    config = MockConfig(ttft_ms=0, itl_ms=5, output_tokens=200)

    async def scenario(session: aiohttp.ClientSession, url: str) -> Any:
        body = {**CHAT, "model": "mock-model", "stream": True}
        async with session.post(url + "/v1/chat/completions", json=body) as resp:
            await resp.content.readline()
        # The response was released unread: its connection closed. The server notices at its
        # next write; wait for that (not for a fixed time, which a busy machine can outlast).
        async with asyncio.timeout(30):
            while True:
                async with session.get(url + "/mock/stats") as resp:
                    stats = await resp.json()
                if stats["requests"]["in_flight"] == 0:
                    return stats
                await asyncio.sleep(0.01)

    with caplog.at_level(logging.DEBUG):
        stats = with_server(config, scenario)
    assert stats["requests"]["disconnected"] == 1
    assert stats["requests"]["in_flight"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_lag_sample_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mockclock, "LAG_SAMPLE_SIZE", 4)
    lags = mockclock.LagStats()
    for k in range(100):
        lags.add_schedule(1.0 + k * 1e-3, 1.0, 0.0, 0, 1)  # lag k ms
    assert lags.count == 100
    assert 4 <= len(lags.sample) < 8
    assert lags.to_json()["max"] == pytest.approx(99)
    lags.add_schedule(2.0, 1.0, 0.25, 0, 4)  # lags 1000, 750, 500, 250 ms
    assert lags.count == 104
    assert lags.to_json()["max"] == pytest.approx(1000)


@pytest.mark.parametrize(("prompt", "count"), [
    ("one two  three\nfour", 4),
    ("", 0),
    (["a b", "c"], 3),
    ([1, 2, 3], 3),
    ([{"role": "user", "content": "a b"}, {"role": "assistant", "content": None}], 2),
    ([{"role": "user", "content": [{"type": "text", "text": "a b c"},
                                   {"type": "image_url", "image_url": {"url": "x"}}]}], 3),
])
def test_count_prompt_tokens(prompt: object, count: int) -> None:
    assert count_prompt_tokens(prompt) == count


def test_mock_process_serves_and_stops() -> None:
    config = MockConfig(models=("m1",), ttft_ms=0, itl_ms=0, output_tokens=3, api_key="k3y")
    assert "k3y" not in " ".join(mockprocess.mock_process_argv(config, "127.0.0.1"))

    async def get(url: str, headers: dict[str, str]) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, \
                session.get(url + "/v1/models", headers=headers) as resp:
            return resp.status, await resp.json()

    with mock_process(config) as url:
        assert url.startswith("http://127.0.0.1:")
        status, listed = asyncio.run(get(url, {"Authorization": "Bearer k3y"}))
        assert (status, [m["id"] for m in listed["data"]]) == (200, ["m1"])
        assert asyncio.run(get(url, {}))[0] == 401
    with pytest.raises(aiohttp.ClientConnectionError):
        asyncio.run(get(url, {}))


def test_mock_process_reports_a_failed_start() -> None:
    with pytest.raises(RuntimeError, match=r"cannot listen on 256\.0\.0\.1"), \
            mock_process(MockConfig(), host="256.0.0.1"):
        pass


def test_command_prints_url_and_exits_0_on_sigint() -> None:
    argv = [sys.executable, "-m", "runner", "mock-server", "--port", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("mock-server listening on http://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, err) == (0, b"", b"")


@pytest.mark.parametrize(("argv", "message"), [
    (["--ttft-ms", "-1"], "ttft_ms and itl_ms must be finite and >= 0"),
    (["--itl-ms", "-0.5"], "ttft_ms and itl_ms must be finite and >= 0"),
    (["--itl-ms", "nan"], "ttft_ms and itl_ms must be finite and >= 0"),
    (["--output-tokens", "0"], "output_tokens must be >= 1"),
    (["--models", " , "], "models must be non-empty"),
    (["--port", "70000"], "--port must be from 0 to 65535"),
    (["--api-key-env", "RUNNER_TEST_UNSET_KEY"], "$RUNNER_TEST_UNSET_KEY is not set"),
    (["--api-key-env", "RUNNER_TEST_EMPTY_KEY"], "$RUNNER_TEST_EMPTY_KEY is empty"),
])
def test_invalid_options_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNNER_TEST_UNSET_KEY", raising=False)
    monkeypatch.setenv("RUNNER_TEST_EMPTY_KEY", "")
    assert main(["mock-server", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert message in err


def test_api_key_env_reads_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.commands.mock_server import build_config
    from runner.main import build_parser

    monkeypatch.setenv("RUNNER_TEST_KEY", "s3cret")
    args = build_parser().parse_args(["mock-server", "--api-key-env", "RUNNER_TEST_KEY"])
    assert build_config(args, dict(os.environ)).api_key == "s3cret"
