"""Synthetic prompts: runner's vocabulary of common words, drawn at random (seeded) to a
target length; sized per model when calibrated (runner.load.sizing)."""

from __future__ import annotations

import random
from typing import Any

from runner.load.sizing import Sizer, WordSizer

# Common English words that most BPE tokenizers (Llama, Qwen, GPT) encode as one token each when
# preceded by a space, so a prompt of N words is about N tokens. It is an approximation: the
# exact count depends on the model's tokenizer and the chat template adds a few tokens.
_WORDS = """
the of and to in is was for on that with as by at from his it an were are which be this has
also had not first one their its new after but who they have her she two been other when there
all during into school time may years more most only over city some world would where later up
such used many can state about national out known university united then made just see team
year part well both life could these between them while name three under house back right
same long still work will each power high because much through early before since water light
music game story line place group member number area point side book river home field word
order form class force paper table voice plan money hand head room door road child woman man
friend night week month party market court front south north east west model system level
price value rate sound color space small large great good old young
"""
VOCABULARY = tuple(_WORDS.split())


def wrap(text: str, chat: bool) -> dict[str, Any]:
    """`text` as a request's prompt: one user message (chat), else the completions prompt."""
    return {"messages": [{"role": "user", "content": text}]} if chat else {"prompt": text}


class SyntheticPrompts:
    """Random words, seeded by (seed, salt, index): the same prompts for the same three.

    A prompt of `input_tokens` tokens (normal with `stddev`, at least 1) is that many words
    when uncalibrated, else as many as its `sizer` says (runner.load.sizing), counting its
    first one, the request index (`w` and the index for a warm-up), so that within a job every
    prompt's start is unique for servers' prefix caches; the salt (`prompt_salt`) makes the
    rest of the words differ between jobs and runs."""

    def __init__(self, input_tokens: int, stddev: float, seed: int, chat: bool,
                 salt: str = "", sizer: Sizer | None = None) -> None:
        self.input_tokens, self.stddev, self.seed, self.chat = input_tokens, stddev, seed, chat
        self.salt, self.sizer = salt, sizer or WordSizer()

    def salted(self, salt: str) -> SyntheticPrompts:
        return SyntheticPrompts(self.input_tokens, self.stddev, self.seed, self.chat, salt,
                                self.sizer)

    def sized(self, sizer: Sizer) -> SyntheticPrompts:
        """These prompts, sized by `sizer` (a model's calibration)."""
        return SyntheticPrompts(self.input_tokens, self.stddev, self.seed, self.chat, self.salt,
                                sizer)

    def length(self, index: int) -> int:
        return self._draw(self._key(index))[0]

    def prompt(self, index: int) -> dict[str, Any]:
        return wrap(self.text(index), self.chat)

    def warmup(self, index: int) -> dict[str, Any]:
        length, rng = self._draw(self._key(index, "warmup:"))
        return wrap(self.sizer.text(f"w{index}", length, rng, VOCABULARY), self.chat)

    def text(self, index: int) -> str:
        length, rng = self._draw(self._key(index))
        return self.sizer.text(str(index), length, rng, VOCABULARY)

    def _key(self, index: int, kind: str = "") -> str:
        # str seeds are stable across processes; no salt: the seeds of runner before salts
        salt = f"{self.salt}:" if self.salt else ""
        return f"{self.seed}:{salt}{kind}{index}"

    def _draw(self, key: str) -> tuple[int, random.Random]:
        rng = random.Random(key)
        if not self.stddev:
            return self.input_tokens, rng
        return max(1, round(rng.gauss(self.input_tokens, self.stddev))), rng
