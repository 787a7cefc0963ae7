"""Shared prompt prefixes (issue 14 §1): `workload.synthetic.prefix` puts one of `count` shared
prefixes of `tokens` words before each synthetic prompt, and primes a server's prefix cache with
them before the measured window."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.defaults import PREFIX
from runner.load.sizing import Sizer
from runner.load.synthetic import VOCABULARY, SyntheticPrompts, wrap
from runner.load.tokenizer import TokenizerSizer

CACHED_WORDS = 4_000_000  # prefix texts kept built, at most (words over all prefixes)


@dataclass(frozen=True)
class Prefix:
    """A job's `prefix` param: `count` distinct prefixes of `tokens` words (one token each as
    runner's prompt builder sizes them, see workload.VOCABULARY), which one a request uses
    (`pick`), and whether each is sent once before the measured window (`prime`)."""

    count: int
    tokens: int
    pick: str = PREFIX["pick"]
    prime: bool = PREFIX["prime"]

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Prefix | None:
        """The job's prefix, None when it has none (or its prompts are not synthetic)."""
        spec = params.get("prefix")
        if not isinstance(spec, Mapping) or params.get("dataset") or params.get("template"):
            return None
        return cls(int(spec["count"]), int(spec["tokens"]), str(spec.get("pick", PREFIX["pick"])),
                   bool(spec.get("prime", PREFIX["prime"])))


def prefix_tokens(params: Mapping[str, Any]) -> int:
    """The shared prefix's length in tokens of every measured prompt of the job (0: none)."""
    prefix = Prefix.of(params)
    return prefix.tokens if prefix else 0


def priming_requests(params: Mapping[str, Any]) -> int:
    """How many priming requests the job sends before its warm-ups: one per prefix, or 0."""
    prefix = Prefix.of(params)
    return prefix.count if prefix and prefix.prime else 0


def with_priming(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """`params` whose warmup_requests count the priming requests too (they go first, are
    recorded as warm-ups, and end before the measured window opens, as every warm-up does)."""
    priming = priming_requests(params)
    if not priming:
        return params
    return {**params, "warmup_requests": int(params.get("warmup_requests") or 0) + priming}


class PrefixedPrompts:
    """Synthetic prompts behind a shared prefix: measured prompt i is prefix `which(i)`, a
    space, then `own`'s prompt i (input_tokens words, starting with i). Warm-up i < count is
    the priming request of prefix i (the prefix, then `prime i`), when priming; later warm-ups
    are `own`'s, with no prefix, so that they never fill the cache with a prefix.

    Prefix k's words are seeded by (seed, salt, k): `prompt_reuse` decides, as for the rest of
    the prompt, whether another job or run sends the same prefixes (and hits its cache)."""

    def __init__(self, own: SyntheticPrompts, prefix: Prefix) -> None:
        self.own, self.prefix = own, prefix
        self.priming = prefix.count if prefix.prime else 0
        self._texts: dict[int, str] = {}

    def salted(self, salt: str) -> PrefixedPrompts:
        return PrefixedPrompts(self.own.salted(salt), self.prefix)

    @property
    def sizer(self) -> Sizer:
        """The own part's sizer (runner.load.sizing): the job's prompt_calibration."""
        return self.own.sizer

    def sized(self, sizer: Sizer) -> PrefixedPrompts:
        """These prompts, sized by `sizer` (a model's calibration): the own part as
        SyntheticPrompts sizes it, the prefix `tokens` of the server's tokens (see
        prefix_words)."""
        return PrefixedPrompts(self.own.sized(sizer), self.prefix)

    def prefix_words(self) -> int:
        """Words of a prefix: as many as its tokens uncalibrated, else tokens x the
        calibration's words per token; no template overhead, which the own part's length
        already holds. (A local tokenizer sizes a prefix to exactly its tokens.)"""
        fit = getattr(self.own.sizer, "fit", None)
        per = getattr(fit, "words_per_token", None)
        if getattr(fit, "method", "none") == "none" or not per:
            return self.prefix.tokens
        return max(1, round(self.prefix.tokens * float(per)))

    def which(self, index: int) -> int:
        """The prefix (0..count-1) of measured request `index`."""
        if self.prefix.pick == "random":
            return random.Random(self._key(f"pick:{index}")).randrange(self.prefix.count)
        return index % self.prefix.count

    def prefix_text(self, which: int) -> str:
        text = self._texts.get(which)
        if text is None:
            rng = random.Random(self._key(f"prefix:{which}"))
            sizer = self.own.sizer
            if isinstance(sizer, TokenizerSizer):  # exactly `tokens` of it, no overhead
                text = TokenizerSizer(sizer.tokenizer).text(
                    rng.choice(VOCABULARY), self.prefix.tokens, rng, VOCABULARY)
            else:
                text = " ".join(rng.choices(VOCABULARY, k=self.prefix_words()))
            if self.prefix.count * self.prefix.tokens <= CACHED_WORDS:
                self._texts[which] = text
        return text

    def prompt(self, index: int) -> dict[str, Any]:
        return wrap(f"{self.prefix_text(self.which(index))} {self.own.text(index)}",
                     self.own.chat)

    def warmup(self, index: int) -> dict[str, Any]:
        if index < self.priming:
            return wrap(f"{self.prefix_text(index)} prime {index}", self.own.chat)
        return self.own.warmup(index)

    def _key(self, kind: str) -> str:
        salt = f"{self.own.salt}:" if self.own.salt else ""
        return f"{self.own.seed}:{salt}{kind}"
