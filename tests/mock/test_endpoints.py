"""The simulator's /v1/embeddings and /v1/responses: shapes, determinism, lengths, errors."""

from __future__ import annotations

import base64
import json
import struct

import httpx
import pytest
from mock.test_server import FAST, post

from runner.load.responses import ResponsesState
from runner.main import main
from runner.mock.answers import TOKEN_TEXT
from runner.mock.process import mock_process
from runner.mock.server import MockConfig

EMBED = {"model": "m1", "input": ["one two three", "four"], "encoding_format": "float"}


def test_embeddings_are_deterministic_unit_vectors_with_usage() -> None:
    config = MockConfig(models=("m1",), ttft_ms=0, embedding_dim=16)
    status, raw = post("/v1/embeddings", EMBED, config)
    assert status == 200
    body = json.loads(raw)
    vectors = [item["embedding"] for item in body["data"]]
    assert [item["index"] for item in body["data"]] == [0, 1]
    assert all(len(v) == 16 for v in vectors) and vectors[0] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1) < 1e-4
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert json.loads(post("/v1/embeddings", EMBED, config)[1])["data"] == body["data"]


def test_embeddings_of_one_string_and_in_base64() -> None:
    status, raw = post("/v1/embeddings", {"model": "m1", "input": "solo",
                                          "encoding_format": "base64"})
    [item] = json.loads(raw)["data"]
    floats = struct.unpack("<8f", base64.b64decode(item["embedding"]))
    assert status == 200 and len(floats) == 8


@pytest.mark.parametrize(("body", "status"), [
    ({"model": "m1", "input": []}, 400),
    ({"model": "m1", "input": ["ok", ""]}, 400),
    ({"model": "m1"}, 400),
    ({"model": "m1", "input": "x", "encoding_format": "int8"}, 400),
    ({"model": "nope", "input": "x"}, 404),
])
def test_embeddings_refuse_what_openai_refuses(body: dict[str, object], status: int) -> None:
    assert post("/v1/embeddings", body)[0] == status


def test_a_streamed_response_reads_as_the_tokens_asked_for() -> None:
    status, raw = post("/v1/responses", {"model": "m1", "input": "hi there",
                                         "max_output_tokens": 5, "stream": True})
    state = ResponsesState()
    state.feed(raw, 1)
    state.close(2)
    assert status == 200 and state.outcome() == (None, None)
    assert len(state.chunk_ns) == 5 and state.completion_tokens == 5
    assert state.finish_reason == "length" and state.prompt_tokens == 2
    kinds = [json.loads(line[6:])["type"] for line in raw.split(b"\n") if line[:6] == b"data: "]
    assert kinds[:3] == ["response.created", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-1] == "response.incomplete"  # cut by max_output_tokens


def test_a_whole_response_with_messages_as_input() -> None:
    messages = [{"role": "user", "content": "a b c"}]
    status, raw = post("/v1/responses", {"model": "m1", "input": messages})
    body = json.loads(raw)
    assert status == 200 and body["object"] == "response" and body["status"] == "completed"
    assert body["output"][0]["content"][0]["text"] == TOKEN_TEXT * FAST.output_tokens
    assert body["usage"]["input_tokens"] == 3
    assert body["usage"]["output_tokens"] == FAST.output_tokens


def test_responses_refuse_a_missing_input() -> None:
    assert post("/v1/responses", {"model": "m1"})[0] == 400


def test_the_embedding_dimension_on_the_command_line() -> None:
    config = MockConfig(models=("m1",), ttft_ms=0, embedding_dim=5)
    with mock_process(config) as url:
        answer = httpx.post(f"{url}/v1/embeddings", json={"model": "m1", "input": "x"},
                            timeout=10)
    assert len(answer.json()["data"][0]["embedding"]) == 5


@pytest.mark.parametrize("dim", ["0", "65537"])
def test_a_bad_embedding_dimension_exits_2(capsys: pytest.CaptureFixture[str], dim: str) -> None:
    assert main(["mock-server", "--embedding-dim", dim]) == 2
    assert "embedding_dim must be from 1 to 65536" in capsys.readouterr().err
