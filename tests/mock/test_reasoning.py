"""The simulator as a reasoning model (`--reasoning-tokens N`): reasoning_content chunks before
the answer, counted in usage completion_tokens_details.reasoning_tokens and in max_tokens."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from runner.main import main
from runner.mock import clock as mockclock
from runner.mock.process import mock_process_argv
from runner.mock.reasoning import REASONING_TEXT
from runner.mock.server import MockConfig, serving

THINKING = MockConfig(models=("m1",), ttft_ms=0, itl_ms=0, output_tokens=2, reasoning_tokens=3)
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "say hi"}]}


def post(path: str, body: dict[str, Any], config: MockConfig = THINKING) -> Any:
    """The answer to `body`: its SSE events (JSON, and "[DONE]") when streamed, else its JSON."""

    async def run() -> bytes:
        async with serving(config) as url, aiohttp.ClientSession() as session, \
                session.post(url + path, json=body) as resp:
            assert resp.status == 200
            return await resp.read()

    with asyncio.Runner(loop_factory=mockclock.new_event_loop) as runner:
        raw = runner.run(run())
    if not body.get("stream"):
        return json.loads(raw)
    return [data if data == "[DONE]" else json.loads(data)
            for block in raw.decode().split("\n\n")[:-1]
            if (data := block.removeprefix("data: "))]


def deltas(events: list[Any]) -> list[dict[str, Any]]:
    return [e["choices"][0]["delta"] for e in events if e != "[DONE]" and e["choices"]]


def test_a_chat_stream_reasons_before_it_answers() -> None:
    events = post("/v1/chat/completions", {**CHAT, "stream": True,
                                           "stream_options": {"include_usage": True}})
    assert deltas(events) == [{"role": "assistant", "content": ""},
                              *[{"reasoning_content": REASONING_TEXT}] * 3,
                              {"content": "tok "}, {"content": "tok "}, {}]
    assert events[-2]["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7,
                                   "completion_tokens_details": {"reasoning_tokens": 3}}
    assert events[-1] == "[DONE]"


@pytest.mark.parametrize(("max_tokens", "reasoning", "answer", "finish"),
                         [(4, 3, 1, "length"), (2, 2, 0, "length"), (None, 3, 2, "stop")])
def test_max_tokens_bounds_reasoning_and_answer_together(
        max_tokens: int | None, reasoning: int, answer: int, finish: str) -> None:
    body = {**CHAT, "max_tokens": max_tokens, "stream": True,
            "stream_options": {"include_usage": True}}
    sent = deltas(post("/v1/chat/completions", body))
    assert sum("reasoning_content" in d for d in sent) == reasoning
    assert sum(bool(d.get("content")) for d in sent) == answer
    whole = post("/v1/chat/completions", {**body, "stream": False})
    message = whole["choices"][0]["message"]
    assert message["reasoning_content"] == REASONING_TEXT * reasoning
    assert message["content"] == ("tok " * answer or None)
    assert whole["choices"][0]["finish_reason"] == finish
    assert whole["usage"]["completion_tokens_details"] == {"reasoning_tokens": reasoning}
    assert whole["usage"]["completion_tokens"] == reasoning + answer


def test_completions_do_not_reason() -> None:
    events = post("/v1/completions", {"model": "m1", "prompt": "hi", "stream": True,
                                      "stream_options": {"include_usage": True}})
    assert [e["choices"][0]["text"] for e in events[:-2]] == ["tok ", "tok ", ""]
    assert "completion_tokens_details" not in events[-2]["usage"]


def test_the_process_and_the_command_take_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    argv = mock_process_argv(THINKING, "127.0.0.1")
    assert argv[argv.index("--reasoning-tokens") + 1] == "3"
    assert "--reasoning-tokens" not in mock_process_argv(MockConfig(), "127.0.0.1")
    assert main(["mock-server", "--reasoning-tokens", "-1"]) == 2
    out, err = capsys.readouterr()
    assert (out, err.count("\n")) == ("", 1) and "reasoning_tokens must be >= 0" in err
