"""The simulator's tokenizer (issue 14 §6): tokens_per_word scales usage.prompt_tokens, and
vLLM's POST /tokenize counts a prompt or chat messages the same way, unless turned off."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from runner.mock import clock as mockclock
from runner.mock.requests import count_prompt_tokens
from runner.mock.server import MockConfig, serving
from runner.mock.tokenizer import count_tokens

FAST = MockConfig(models=("m1",), ttft_ms=0, itl_ms=0, output_tokens=2)
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "say hi to me"}]}
PROMPT = {"model": "m1", "prompt": "one two three"}

WORDY = MockConfig(models=("m1",), ttft_ms=0, itl_ms=0, output_tokens=2, tokens_per_word=1.3)


def post(path: str, body: Any, config: MockConfig) -> tuple[int, bytes]:
    """POST `body` to the simulator serving `config`: (status, answer)."""

    async def run() -> tuple[int, bytes]:
        async with serving(config) as url, aiohttp.ClientSession() as session:
            headers = {"Authorization": "Bearer wrong"}
            async with session.post(url + path, json=body, headers=headers) as resp:
                return resp.status, await resp.read()

    with asyncio.Runner(loop_factory=mockclock.new_event_loop) as runner:
        return runner.run(run())


@pytest.mark.parametrize(("prompt", "ratio", "expected"), [
    ("a b c d e f g h i j", 1.3, 13),
    ("a b c", 1.3, 4),  # 3.9 rounds to 4
    ("a", 0.1, 1),  # a prompt with a word is at least 1 token
    ("", 2.0, 0),
    ([1, 2, 3], 2.0, 3),  # token ids are tokens, whatever the ratio
    ([{"role": "user", "content": [{"type": "text", "text": "a b"}, {"type": "image"}]},
      {"role": "assistant", "content": "c d"}], 1.5, 6),
])
def test_count_tokens_scales_words_only(prompt: Any, ratio: float, expected: int) -> None:
    assert count_tokens(prompt, ratio) == expected


@pytest.mark.parametrize("prompt", ["one two  three", [1, 2], ["a b", "c"],
                                    [{"role": "user", "content": "x y"}], 5, None])
def test_one_token_per_word_is_the_old_count(prompt: Any) -> None:
    assert count_tokens(prompt, 1.0) == count_prompt_tokens(prompt)


def test_usage_counts_prompt_tokens_with_the_ratio() -> None:
    status, raw = post("/v1/chat/completions", CHAT, WORDY)
    assert status == 200
    assert json.loads(raw)["usage"]["prompt_tokens"] == 5  # "say hi to me": 4 words x 1.3


@pytest.mark.parametrize(("body", "count"), [
    ({"model": "m1", "messages": CHAT["messages"]}, 5),
    ({"model": "m1", "prompt": "a b c d e f"}, 8),
    ({"prompt": "a b"}, 3),  # vLLM's model is optional
])
def test_tokenize_answers_as_vllm_does(body: dict[str, Any], count: int) -> None:
    status, raw = post("/tokenize", body, WORDY)
    assert status == 200
    answer = json.loads(raw)
    assert answer["count"] == count and len(answer["tokens"]) == count
    assert set(answer) == {"count", "max_model_len", "tokens", "token_strs"}


@pytest.mark.parametrize(("body", "status", "config"), [
    ({"model": "nope", "prompt": "a"}, 404, FAST),
    ({"model": "m1"}, 400, FAST),
    ({"model": "m1", "messages": []}, 400, FAST),
    (PROMPT, 404, MockConfig(models=("m1",), tokenize=False)),  # turned off: no such route
    (PROMPT, 401, MockConfig(models=("m1",), api_key="k")),
])
def test_tokenize_refuses_as_vllm_does(body: dict[str, Any], status: int,
                                       config: MockConfig) -> None:
    assert post("/tokenize", body, config)[0] == status


@pytest.mark.parametrize("ratio", [0, -1, 101, float("nan"), float("inf")])
def test_a_ratio_out_of_range_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="tokens_per_word"):
        MockConfig(tokens_per_word=ratio)
