"""How many words a synthetic prompt of N tokens gets (issue 14 §6): as many as tokens (no
calibration), as many as a per-model fit of the server's counts says, or exactly N tokens of a
local tokenizer (runner.load.tokenizer)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

METHODS = ("tokenize", "usage", "tokenizer", "none")
# Words per token a fit may find (real tokenizers: about 0.3 for CJK-heavy vocabularies to 1.3
# for English BPE): outside, the server's counts are not a tokenizer's, and a prompt sized by
# them could be 20 times too long.
PLAUSIBLE = (0.05, 20.0)


class Sizer(Protocol):
    """Builds the text of a synthetic prompt of `tokens` tokens that starts with `first` (its
    index), its other words drawn from `vocabulary` with `rng`; `calibration()` is the job's
    prompt_calibration (schemas/result.schema.json)."""

    def text(self, first: str, tokens: int, rng: random.Random,
             vocabulary: Sequence[str]) -> str: ...
    def calibration(self) -> dict[str, Any]: ...


def draw_words(first: str, count: int, rng: random.Random,
               vocabulary: Sequence[str]) -> list[str]:
    """`first` and count - 1 words drawn from `vocabulary` (at least `first`)."""
    return [first, *rng.choices(vocabulary, k=max(count, 1) - 1)]


def draw_passes(first: str, count: int, rng: random.Random,
                vocabulary: Sequence[str]) -> list[str]:
    """`first` and count - 1 words taken in passes over `vocabulary`, each pass in an order
    drawn with `rng`: every word about as often as the others, so a prompt's tokens per word is
    near the vocabulary's mean, which calibration measures. On the real engine's tiny BPE
    (1.35 tokens a word) a 200-word prompt's token count varied by 13.6 (sd) drawn word by
    word, 4.8 in passes."""
    words = [first]
    while len(words) < count:
        order = list(vocabulary)
        rng.shuffle(order)
        words += order[:count - len(words)]
    return words


@dataclass(frozen=True)
class Calibration:
    """A fit of the server's prompt length to the number of words: tokens = words /
    words_per_token + overhead_tokens (the chat template's and special tokens' share), learned
    with `method` (tokenize: the server's /tokenize; usage: usage.prompt_tokens of probe
    requests with max_tokens 1; tokenizer: a local tokenizer sizes the text, words_per_token
    None; none: not calibrated, one word per token) at the cost of `requests_spent` requests;
    `reason`: why it is `none` (None when it is not)."""

    method: str = "none"
    words_per_token: float | None = 1.0
    overhead_tokens: float = 0.0
    requests_spent: int = 0
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The job's `prompt_calibration` (schemas/result.schema.json)."""
        per = self.words_per_token
        return {"method": self.method, "words_per_token": None if per is None else round(per, 6),
                "overhead_tokens": round(self.overhead_tokens, 3),
                "requests_spent": self.requests_spent, "reason": self.reason}


class WordSizer:
    """A prompt of N tokens is N words drawn one by one (uncalibrated: runner's prompts before
    issue 14), or the number of words `calibration` says gives N tokens on the server, drawn in
    passes (draw_passes)."""

    def __init__(self, calibration: Calibration | None = None) -> None:
        self.fit = calibration or Calibration()

    def words(self, tokens: int) -> int:
        """Words for a prompt the server counts as `tokens` tokens (at least 1)."""
        per = self.fit.words_per_token
        if self.fit.method == "none" or per is None:
            return max(tokens, 1)
        return max(1, round((tokens - self.fit.overhead_tokens) * per))

    def text(self, first: str, tokens: int, rng: random.Random,
             vocabulary: Sequence[str]) -> str:
        draw = draw_words if self.fit.method == "none" else draw_passes
        return " ".join(draw(first, self.words(tokens), rng, vocabulary))

    def calibration(self) -> dict[str, Any]:
        return self.fit.to_json()


def fit(points: Sequence[tuple[int, float]], method: str, spent: int) -> Calibration:
    """The least-squares line tokens = a * words + b through `points` (words, tokens), as a
    Calibration (words_per_token 1/a, overhead_tokens b); `none` with the reason when the
    points cannot give one (fewer than two sizes, tokens not growing with words, or 1/a
    outside PLAUSIBLE)."""
    sizes = {w for w, _ in points}
    if len(sizes) < 2:
        return Calibration(requests_spent=spent, reason="fewer than two prompt sizes measured")
    n = len(points)
    mean_w = sum(w for w, _ in points) / n
    mean_t = sum(t for _, t in points) / n
    slope = sum((w - mean_w) * (t - mean_t) for w, t in points) / sum(
        (w - mean_w) ** 2 for w, _ in points)
    if slope <= 0:
        return Calibration(requests_spent=spent,
                           reason=f"the server's prompt length did not grow with the words "
                                  f"({', '.join(f'{w} words: {t:g}' for w, t in points)})")
    if not PLAUSIBLE[0] <= 1 / slope <= PLAUSIBLE[1]:
        return Calibration(requests_spent=spent,
                           reason=f"the server's counts give {1 / slope:.3g} words per token, "
                                  f"outside {PLAUSIBLE[0]:g}-{PLAUSIBLE[1]:g}: not a tokenizer")
    return Calibration(method, 1 / slope, mean_t - slope * mean_w, spent)


def calibration_of(prompts: Any) -> dict[str, Any] | None:
    """A job's `prompt_calibration`: its prompt source's sizer's (SyntheticPrompts), None for
    dataset and template prompts, which are the user's text."""
    sizer = getattr(prompts, "sizer", None)
    return sizer.calibration() if sizer is not None else None
