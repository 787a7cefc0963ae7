"""The fast path (a template of the last plain chunk, runner.load.plain) gives exactly
what the full parse gives, and neither depends on how the JSON is written: every recorded and
generated stream, compact, spaced, with shuffled keys, one JSON line per data line, or ASCII
escaped, fed event by event and whole, compared field by field."""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sse_streams import DONE, RECORDED, STYLES, chunk, render

from runner.load import sse
from runner.load.sse import StreamState

WORDS = ["", "a", "tok ", '"', "\\", '\\"', "\n", "é", "✓", "😀", "\u2028", "\x7f", "\x01",
         '"content":"x', 'x","finish_reason":"abort', "[DONE]", "{", "}", " ", "usage"]


def word(rng: random.Random) -> str:
    """Mostly plain text; now and then empty, escaped, non-ASCII or shaped like JSON."""
    if rng.random() < 0.6:
        return rng.choice(["tok ", "Hello", " there", "a"])
    return "".join(rng.choice(WORDS) for _ in range(rng.randint(0, 3)))


# Where a generated stream puts its text: (the chunk's delta or choice, the text) -> None.
SLOTS: list[Callable[[dict[str, Any], str], None]] = [
    lambda d, t: d.update(content=t),
    lambda d, t: d.update(reasoning_content=t, content=None),
    lambda d, t: d.update(reasoning=t),
    lambda d, t: d.update(refusal=t),
    lambda d, t: d.update(content=[{"type": "text", "text": t}]),
    lambda d, t: d.update(reasoning_details=[{"type": "reasoning.text", "text": t}]),
    lambda d, t: d.update(reasoning_details=[{"type": "reasoning.summary", "summary": t}]),
    lambda d, t: d.update(tool_calls=[{"index": 0, "function": {"arguments": t}}]),
]


def shape(rng: random.Random) -> dict[str, Any]:
    """A chunk with no text yet, with some of the extra fields servers add."""
    extra: dict[str, Any] = {}
    for key, value in (("usage", None), ("system_fingerprint", "fp"), ("obfuscation", "ab"),
                       ("meta", {"text": "x", "content": "y"}), ("error", None)):
        if rng.random() < 0.3:
            extra[key] = value
    base = chunk({"role": None} if rng.random() < 0.3 else {}, **extra)
    if rng.random() < 0.3:
        base["choices"][0]["stop_reason"] = None
    return base


def generated(seed: int) -> list[Any]:
    """A stream that repeats one shape with changing text (what the template catches), mixed
    with other chunks, changed tails and a random ending."""
    rng = random.Random(seed)
    base, slot = shape(rng), rng.choice(SLOTS)
    answer_slot = rng.choice(SLOTS)  # a reasoning model's answer starts in another slot
    count = rng.randint(3, 25)
    switch = rng.randint(1, count) if rng.random() < 0.3 else count
    events: list[Any] = []
    for n in range(count):
        event = copy.deepcopy(base)
        (slot if n < switch else answer_slot)(event["choices"][0]["delta"], word(rng))
        if rng.random() < 0.1:
            event["obfuscation"] = word(rng)
        if rng.random() < 0.1:
            event = rng.choice([c for events in RECORDED.values() for c in events if c != DONE])
        events.append(event)
    reason = rng.choice(["stop", "length", "abort", "content_filter", "", None])
    events.append(chunk(finish=reason))
    return events + ([DONE] if rng.random() < 0.8 else [])


STREAMS = {**{f"recorded {k}": v for k, v in RECORDED.items()},
           **{f"generated {n}": generated(n) for n in range(300)}}


def fields(state: StreamState) -> tuple[Any, ...]:
    return (state.chunk_ns, state.textless_ns, state.done, state.finish_reason, state.unfinished,
            state.prompt_tokens, state.completion_tokens, state.error, state.invalid,
            state.too_large, state.events, state.outcome(), state.answer_ns,
            state.reasoning_chunks, state.reasoning_tokens)


def parse(pieces: list[bytes]) -> tuple[Any, ...]:
    """Each piece is a read of its own, at time = its index."""
    state = StreamState()
    for n, piece in enumerate(pieces):
        state.feed(piece, n)
    state.close(len(pieces))
    return fields(state)


class Hits:
    """The events the fast path took, by style."""

    def __init__(self) -> None:
        self.style = ""
        self.counts: Counter[str] = Counter()


@pytest.fixture
def hits(monkeypatch: pytest.MonkeyPatch) -> Hits:
    counted = Hits()
    fits = sse.fits

    def counting(data: bytes, template: tuple[bytes, bytes]) -> bool:
        result = fits(data, template)
        counted.counts[counted.style] += result
        return result

    monkeypatch.setattr(sse, "fits", counting)
    return counted


def full_parse(pieces: list[bytes], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    with monkeypatch.context() as patch:
        patch.setattr(sse, "fits", lambda data, template: False)
        return parse(pieces)


def test_the_fast_path_equals_the_full_parse_in_every_style(
    hits: Hits, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, events in STREAMS.items():
        truth = full_parse(render(events, "compact"), monkeypatch)
        for style in STYLES:
            hits.style = style
            pieces = render(events, style, seed=len(name))
            assert parse(pieces) == truth, (name, style)
            assert full_parse(pieces, monkeypatch) == truth, (name, style)
            whole = [b"".join(pieces)]
            assert parse(whole) == full_parse(whole, monkeypatch), (name, style)
    assert all(hits.counts[style] > 1000 for style in STYLES), hits.counts  # and it was taken


def test_the_issue_examples_agree_compact_and_spaced() -> None:
    """Reasoning sent only in reasoning_details, and a role-only chunk with a nested "text":
    once 25 vs 10 content chunks and a different first chunk, compact vs spaced."""
    for name in ("reasoning_details text and summary", "role-only with an unrelated nested text"):
        compact, spaced = (parse(render(RECORDED[name], style)) for style in ("compact", "spaced"))
        assert compact == spaced
    assert parse(render(RECORDED["reasoning_details text and summary"]))[0] == [1, 2, 3, 6]
    assert parse(render(RECORDED["role-only with an unrelated nested text"]))[0] == [2]
