"""Table tests for the embeddings reader: an answer counts as ok only with one vector of numbers
per input, and its usage's prompt tokens are kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runner.load.embeddings import EmbeddingsState, read_embeddings


def answer(vectors: list[Any], **extra: Any) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": "e",
            "usage": {"prompt_tokens": 9, "total_tokens": 9}, **extra}


def outcome(body: Any, inputs: int = 2) -> tuple[str | None, str | None]:
    state = EmbeddingsState(inputs=inputs)
    state.body(body if isinstance(body, bytes) else json.dumps(body).encode(), 1)
    return state.outcome()


def test_one_vector_per_input_is_ok_with_its_prompt_tokens() -> None:
    said = read_embeddings(answer([[0.1, -2], [1e-3, 4.0]]), 2)
    assert said.invalid is None and said.prompt_tokens == 9
    assert outcome(answer([[0.1, -2], [1e-3, 4.0]])) == (None, None)


@pytest.mark.parametrize(("body", "expected"), [
    (answer([[0.1]]), "the answer has 1 embeddings for 2 inputs"),
    (answer([[0.1], [0.2], [0.3]]), "the answer has 3 embeddings for 2 inputs"),
    (answer(["AAAA", "AAAA"]), "an embedding is not a list of numbers (base64, or empty)"),
    (answer([[], [1.0]]), "an embedding is not a list of numbers (base64, or empty)"),
    (answer([[1.0], [True]]), "an embedding holds something other than numbers"),
    (answer([[1.0], ["1"]]), "an embedding holds something other than numbers"),
    ({"object": "list"}, "the answer has no `data` list of embeddings"),
    ([1], "the answer is not a JSON object"),
    (b"<html>", "the answer is not JSON: <html>"),
    (answer([[1.0], [2.0]], usage={"prompt_tokens": -4}),
     "a usage token count is out of range: -4"),
])
def test_what_is_not_an_answer_for_the_batch_is_invalid(body: Any, expected: str) -> None:
    assert outcome(body) == ("invalid_response", expected)


def test_an_error_body_is_a_stream_error() -> None:
    assert outcome({"error": {"message": "no such model"}}) == ("stream_error", "no such model")


def test_a_streamed_answer_is_invalid() -> None:
    state = EmbeddingsState(inputs=1)
    state.feed(b'data: {"data": []}\n\n', 1)
    state.close(2)
    assert state.outcome()[0] == "invalid_response"
