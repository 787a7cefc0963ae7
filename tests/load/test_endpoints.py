"""Request bodies per endpoint (chat, completions, responses, embeddings) and their paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.errors import InputError
from runner.load.endpoints import PATHS, shape_prompt, streams
from runner.load.workload import RequestBodies, prompt_source


def body(params: dict[str, Any], index: int = 0, plan_dir: str = ".") -> dict[str, Any]:
    prompts = prompt_source(params, plan_dir, {})
    parsed: dict[str, Any] = json.loads(RequestBodies(params, "m", prompts).build(index))
    return parsed


def test_a_responses_body() -> None:
    sent = body({"endpoint": "responses", "input_tokens": 3, "max_tokens": 20,
                 "temperature": 0, "seed": 5, "stream": True, "extra_body": {"top_p": 0.5}})
    assert list(sent) == ["model", "input", "max_output_tokens", "temperature", "stream",
                          "top_p"]
    assert sent["input"][0]["role"] == "user" and len(sent["input"][0]["content"].split()) == 3
    assert sent["max_output_tokens"] == 20 and sent["stream"] is True


def test_a_responses_body_from_a_dataset_of_messages(tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    (tmp_path / "d.jsonl").write_text(json.dumps({"messages": messages}) + "\n")
    sent = body({"endpoint": "responses", "dataset": "d.jsonl", "stream": False}, 0,
                str(tmp_path))
    assert sent["input"] == messages and sent["stream"] is False


def test_an_embeddings_body_batches_distinct_prompts() -> None:
    params = {"endpoint": "embeddings", "input_tokens": 4, "batch_size": 3,
              "warmup_requests": 1, "extra_body": {"dimensions": 8}}
    warm, first, second = (body(params, i) for i in range(3))
    assert list(first) == ["model", "input", "encoding_format", "dimensions"]
    assert first["encoding_format"] == "float" and len(first["input"]) == 3
    assert all(len(text.split()) == 4 for text in first["input"])
    texts = [*warm["input"], *first["input"], *second["input"]]
    assert len(set(texts)) == 9  # warm-ups and measured inputs all differ
    assert [t.split()[0] for t in first["input"] + second["input"]] == ["0", "1", "2", "3", "4",
                                                                         "5"]


def test_chat_and_completions_bodies_are_unchanged() -> None:
    sent = body({"input_tokens": 2, "max_tokens": 4, "seed": 1, "stream": True})
    assert list(sent) == ["model", "messages", "max_tokens", "seed", "stream", "stream_options"]
    assert "prompt" in body({"endpoint": "completions", "input_tokens": 2})


def test_paths_streams_and_the_probe_prompt() -> None:
    assert PATHS["embeddings"] == "/v1/embeddings" and PATHS["responses"] == "/v1/responses"
    assert not streams({"endpoint": "embeddings", "stream": True})
    assert streams({"endpoint": "responses"})
    probe = {"prompt": "Say hi"}
    assert shape_prompt({"endpoint": "embeddings", "batch_size": 2}, probe) == {
        "input": ["Say hi", "Say hi"]}
    assert shape_prompt({"endpoint": "responses"}, probe) == {"input": "Say hi"}
    assert shape_prompt({"endpoint": "completions"}, probe) == probe


def test_an_embeddings_dataset_of_messages_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"messages": [{"role": "user", "content": "x"}]}\n')
    with pytest.raises(InputError, match='"messages" needs endpoint chat or responses; use '
                                         '"prompt" for completions and embeddings'):
        prompt_source({"endpoint": "embeddings", "dataset": "d.jsonl"}, str(tmp_path), {})


def test_a_traces_own_output_length_reaches_a_responses_body(tmp_path: Path) -> None:
    # Seen: replaying a trace on endpoint responses, every request asked the plan's max_tokens
    # (12), not its line's output_tokens (4): shaping the prompt for the Responses API
    # dropped the line's max_tokens.
    from runner.load.replay import trace_prompts
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"timestamp_ms": 0, "input_tokens": 3, "output_tokens": 4}) + "\n")
    params = {"endpoint": "responses", "trace": "t.jsonl", "max_tokens": 12, "stream": True,
              "replay": {}}
    sent = json.loads(RequestBodies(params, "m", trace_prompts(params, str(tmp_path))).build(0))
    assert sent["max_output_tokens"] == 4 and "max_tokens" not in sent
