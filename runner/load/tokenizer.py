"""A local tokenizer (workload.tokenizer: a `tokenizer.json`, read with the `tokenizers` library
of the optional extra runner[tokenizers], never downloaded) that sizes synthetic prompts to
exactly N tokens of it."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from runner.errors import InputError
from runner.inputfile import read_input
from runner.load.sizing import Calibration, draw_words

MAX_TOKENIZER_BYTES = 256 * 2**20  # the largest tokenizer.json runner reads (Gemma's: 34 MB)
FIX_ROUNDS = 16  # words added or dropped after the first full count, at most
INSTALL = "pip install 'runner[tokenizers]'"


def local_sizer(params: Mapping[str, Any], plan_dir: str) -> TokenizerSizer | None:
    """The sizer of a job's `tokenizer` (a path relative to `plan_dir`), None without one;
    errors as load_tokenizer's."""
    path = params.get("tokenizer")
    return TokenizerSizer(load_tokenizer(os.path.join(plan_dir, path))) if path else None


@lru_cache(maxsize=8)  # validate and apply read each tokenizer once, however many jobs use it
def load_tokenizer(path: str) -> Any:
    """The `tokenizers.Tokenizer` in the file at `path`. InputError (exit 2) naming the path
    (no location: validate gives the plan's) when the library is missing, the file is not
    there or is not a tokenizer.json."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise InputError(f"workload.tokenizer {path} needs the tokenizers library: {INSTALL}"
                         ) from None
    try:
        raw = read_input(path, "workload.tokenizer", MAX_TOKENIZER_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read workload.tokenizer {path}: {exc.strerror or exc}; it is "
                         "the path of a tokenizer.json, relative to the plan's folder") from None
    try:
        return Tokenizer.from_str(raw.decode("utf-8"))
    except Exception as exc:  # the library's errors are plain Exceptions with serde's text
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"workload.tokenizer {path} is not a tokenizer.json the tokenizers "
                         f"library reads ({first[:200]}); give the tokenizer.json of the "
                         "model's Hugging Face repository") from None


class TokenizerSizer:
    """Prompts of exactly N tokens of `tokenizer` (special tokens not counted: the server's
    chat template and BOS come on top, see `overhead_tokens`): words drawn as uncalibrated
    prompts draw them, fewer or more as their counts with a leading space say, then the whole
    text counted and set right by at most FIX_ROUNDS words added (1-token ones) or dropped."""

    def __init__(self, tokenizer: Any, overhead_tokens: float = 0.0, spent: int = 0) -> None:
        self.tokenizer, self.overhead, self.spent = tokenizer, overhead_tokens, spent
        self.costs: dict[str, int] = {}

    def with_overhead(self, overhead_tokens: float, spent: int) -> TokenizerSizer:
        """This tokenizer, its prompts shorter by the server's template overhead."""
        return TokenizerSizer(self.tokenizer, overhead_tokens, spent)

    def count(self, text: str) -> int:
        """Tokens of `text`, special tokens left out."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def text(self, first: str, tokens: int, rng: random.Random,
             vocabulary: Sequence[str]) -> str:
        goal = max(1, round(tokens - self.overhead))
        words, total = [first], self.count(first)
        ones = [w for w in vocabulary if self._cost(w) == 1] or list(vocabulary)
        for word in draw_words(first, goal, rng, vocabulary)[1:]:
            cost = self._cost(word)
            if total + cost > goal:
                break
            words.append(word)
            total += cost
        for _ in range(FIX_ROUNDS):
            total = self.count(" ".join(words))
            if total == goal or (total > goal and len(words) == 1):
                break
            if total > goal:
                words.pop()
            else:
                words.append(rng.choice(ones))
        return " ".join(words)

    def _cost(self, word: str) -> int:
        cost = self.costs.get(word)
        if cost is None:
            cost = self.costs[word] = self.count(" " + word)
        return cost

    def calibration(self) -> dict[str, Any]:
        return Calibration("tokenizer", None, self.overhead, self.spent).to_json()
