"""The template of a plain chunk, and what fits it (the proof is in runner/load/plain.py; the
equality with the full parse is tested on whole streams in test_sse_fastpath.py)."""

from __future__ import annotations

import pytest

from runner.load.plain import fits, learn

VLLM = b'{"id":"c","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}'
HEAD = b'{"id":"c","choices":[{"index":0,"delta":{"content":"'
TAIL = b'"},"finish_reason":null}]}'


@pytest.mark.parametrize(
    ("data", "template"),
    [
        (VLLM, (HEAD, TAIL)),
        (b'{"choices": [{"delta": {"content": "x"}}]}',
         (b'{"choices": [{"delta": {"content": "', b'"}}]}')),
        (b'{"meta":{"text":"m"},"choices":[{"delta":{"content":"x"}}]}',
         (b'{"meta":{"text":"', b'"},"choices":[{"delta":{"content":"x"}}]}')),  # any value
        (b'{"choices":[{"delta":{"content":"","reasoning":"r"}}]}', None),  # empty: unsound
        (b'{"choices":[{"delta":{"content":"a\\"b"}}]}', None),  # an escape
        (b'{"choices":[{"delta":{"content":"a\\\\"}}]}', None),
        (b'{"choices":[{"index":0,"text":"x"}]}', (b'{"choices":[{"index":0,"text":"', b'"}]}')),
        (b'{"choices":[{"delta":{"role":"assistant"}}]}', None),
    ],
)
def test_learn(data: bytes, template: tuple[bytes, bytes] | None) -> None:
    assert learn(data) == template


@pytest.mark.parametrize(
    ("middle", "fit"),
    [
        (b"x", True),
        (b"Hello there", True),
        ("é ✓ 😀 \u2028".encode(), True),
        (b"\x7f", True),
        (b"", False),  # empty: not text
        (b'a"', False),  # would end the string early
        (b'x","finish_reason":"abort', False),
        (b"\\n", False),  # escapes go to the full parse
        (b"\\u0041", False),
        (b"a\x01", False),  # a control character is not JSON
        (b"\xff", False),  # not UTF-8
        (b"\xed\xa0\x80", False),  # an encoded surrogate: not strict UTF-8
        ("é".encode()[:1], False),
    ],
)
def test_fits(middle: bytes, fit: bool) -> None:
    assert fits(HEAD + middle + TAIL, (HEAD, TAIL)) is fit


@pytest.mark.parametrize(
    "data",
    [
        HEAD + b"x" + TAIL[:-1],  # another tail
        HEAD[1:] + b"x" + TAIL,  # another head
        HEAD + b"x" + TAIL + b" ",
        HEAD + TAIL[1:],  # head and tail overlap
        HEAD[:-1] + TAIL,
    ],
)
def test_only_the_same_head_and_tail_fit(data: bytes) -> None:
    assert not fits(data, (HEAD, TAIL))
