"""Calibration against servers that cannot give counts (issue 14 §6): a scripted server (any
path answers the script: /tokenize is not vLLM's there) whose usage lacks prompt_tokens or that
fails, and a refused connection. Each is `none` with the reason, never an exception; and the
probe prompts are whole passes over the vocabulary."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from scripted_server import Script, scripted_server

from runner.inventory.config import Server
from runner.load.sizing import Calibration
from runner.load.synthetic import VOCABULARY
from runner.run.calibration import PASSES, Subject, calibrate, probe_words

ANSWER = {"id": "x", "object": "chat.completion", "model": "m",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                       "finish_reason": "stop"}]}


def run(url: str) -> Calibration:
    return asyncio.run(calibrate(Subject(Server("s", url, timeout_s=5), "m", "chat"), {}))


def test_probe_prompts_hold_every_word_once_per_pass() -> None:
    for passes in PASSES:
        words = probe_words(passes)
        assert words[0] == "0" and len(words) == 1 + passes * len(VOCABULARY)
        assert set(Counter(words[1:]).values()) == {passes}
    assert probe_words(1)[1:] != probe_words(2)[1:len(VOCABULARY) + 1]  # orders of their own


@pytest.mark.parametrize(("usage", "reason"), [
    (None, "the server's answer had no usage.prompt_tokens"),
    ({"completion_tokens": 1}, "the server's answer had no usage.prompt_tokens"),
])
def test_answers_without_prompt_tokens_leave_prompts_uncalibrated(usage: object,
                                                                   reason: str) -> None:
    script = Script([], body={**ANSWER, **({"usage": usage} if usage else {})})
    with scripted_server(script) as url:
        found = run(url)
    assert found == Calibration(requests_spent=2, reason=reason)
    paths = [body.get("max_tokens") for body in script.received]
    assert paths == [None, 1]  # the /tokenize body, then one probe request (max_tokens 1)


def test_usage_that_does_not_grow_with_the_prompt_is_not_a_fit() -> None:
    body = {**ANSWER, "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}
    with scripted_server(Script([], body=body)) as url:
        found = run(url)
    assert found.method == "none" and found.requests_spent == 3
    assert found.reason == ("the server's prompt length did not grow with the words "
                            "(171 words: 7, 341 words: 7)")


def test_a_failing_server_leaves_prompts_uncalibrated_with_its_error() -> None:
    with scripted_server(Script([], body=ANSWER, fail_after=0)) as url:
        found = run(url)
    assert found.method == "none" and found.requests_spent == 2
    assert found.reason is not None and found.reason.startswith("a probe request failed: ")
    assert "engine died" in found.reason


def test_a_refused_connection_leaves_prompts_uncalibrated(dead_url: str) -> None:
    found = run(dead_url)
    assert found.method == "none" and found.requests_spent == 2
    assert found.reason is not None and "a probe request failed" in found.reason
