"""What a replayed trace sends and when (issue 14 §5): its prompts (a line's text, or seeded
synthetic words of its input length, Mooncake's hash ids as shared 512-token blocks), each
request's max_tokens, and its send offsets at the replay's speed."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from runner import defaults
from runner.load.sizing import Sizer, WordSizer
from runner.load.synthetic import VOCABULARY, SyntheticPrompts
from runner.load.trace import BLOCK_TOKENS, Trace, TraceRequest, load_trace
from runner.load.workload import PromptSource, _warmup_variant, prompt_source

BLOCK_CACHE = 4096  # block texts kept (each ~3 KB): a trace's common prefixes are built once


class TracePrompts:
    """The prompts of a trace, request `index` being its line `index` (cycled for warm-ups).

    A line's text is sent as written (the salt does not change it). A runner line with
    `input_tokens` gets that many synthetic words, as `synthetic` would build request `index`
    (seed, salt). A Mooncake line gets, for each hash id in order, that id's block: 512 words
    seeded by (seed, salt, id), so lines that share ids share their text as far as the ids
    agree; the last block is cut to input_length, and words past the hash ids are the
    request's own. A line's output length becomes its request's `max_tokens` (added to the
    prompt mapping; runner.load.workload.RequestBodies sends it over the plan's)."""

    def __init__(self, trace: Trace, seed: int, chat: bool, salt: str = "",
                 sizer: Sizer | None = None) -> None:
        self.trace, self.seed, self.chat, self.salt = trace, seed, chat, salt
        self.sizer: Sizer = sizer or WordSizer()
        self.blocks: OrderedDict[int, list[str]] = OrderedDict()

    def salted(self, salt: str) -> TracePrompts:
        return TracePrompts(self.trace, self.seed, self.chat, salt, self.sizer)

    def sized(self, sizer: Sizer) -> TracePrompts:
        """These prompts, the lines that give a length sized by `sizer` (a model's calibration:
        runner.load.sizing), so that the server counts the tokens the trace recorded."""
        return TracePrompts(self.trace, self.seed, self.chat, self.salt, sizer)

    @property
    def synthetic(self) -> bool:
        """Some line gives a length, not its text: calibration can size it."""
        return any(r.prompt is None for r in self.trace.requests)

    def prompt(self, index: int) -> dict[str, Any]:
        request = self.trace.requests[index % len(self.trace.requests)]
        prompt = dict(request.prompt) if request.prompt is not None else self._wrap(
            self.text(index, request))
        if request.output_tokens is not None:
            prompt["max_tokens"] = request.output_tokens
        return prompt

    def warmup(self, index: int) -> dict[str, Any]:
        return _warmup_variant(self.prompt(index), index)

    def offsets_s(self, speed: float) -> list[float]:
        """Each request's send offset from the window's start, in seconds: its recorded
        offset divided by `speed`."""
        return [r.offset_ms / 1000 / speed for r in self.trace.requests]

    def text(self, index: int, request: TraceRequest) -> str:
        """The synthetic text of a line that gives a length (input_tokens or input_length)."""
        length = int(request.input_tokens or 1)
        if self.trace.format != "mooncake":
            return SyntheticPrompts(length, 0, self.seed, self.chat, self.salt,
                                    self.sizer).text(index)
        fitted = self._fitted()
        length = length if fitted is None else fitted.words(length)
        block_words = BLOCK_TOKENS if fitted is None else max(1, round(
            BLOCK_TOKENS * float(fitted.fit.words_per_token or 1)))
        words: list[str] = []
        for block in request.hash_ids:
            words += self._block(block)[:min(block_words, length - len(words))]
        if len(words) < length:
            rng = random.Random(f"{self.seed}:{self.salt}:own:{index}")
            words += [f"r{index}", *rng.choices(VOCABULARY, k=length - len(words) - 1)]
        return " ".join(words)

    def _fitted(self) -> WordSizer | None:
        """The sizer when it is a calibration's fit; None uncalibrated, or sized by a local
        tokenizer, which sizes whole texts only: Mooncake blocks then stay 512 words."""
        sizer = self.sizer
        if isinstance(sizer, WordSizer) and sizer.fit.method != "none" and \
                sizer.fit.words_per_token:
            return sizer
        return None

    def _block(self, block: int) -> list[str]:
        words = self.blocks.get(block)
        if words is None:
            words = random.Random(f"{self.seed}:{self.salt}:block:{block}").choices(
                VOCABULARY, k=BLOCK_TOKENS)
            self.blocks[block] = words
            if len(self.blocks) > BLOCK_CACHE:
                self.blocks.popitem(last=False)
        return words

    def _wrap(self, text: str) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": text}]} if self.chat \
            else {"prompt": text}


def replay_speed(params: Mapping[str, Any]) -> float:
    """The job's replay speed (load.replay.speed, default 1.0)."""
    replay = params.get("replay")
    speed = replay.get("speed") if isinstance(replay, Mapping) else None
    return float(speed) if speed is not None else defaults.REPLAY_SPEED


def replay_offsets(params: Mapping[str, Any], prompts: Any) -> list[float] | None:
    """A replay job's send offsets (seconds from the window's start, see
    TracePrompts.offsets_s); None when the job is not a replay. ValueError when it is one
    without a trace (validation refuses that plan)."""
    if params.get("replay") is None:
        return None
    if not isinstance(prompts, TracePrompts):
        raise ValueError("load.replay needs workload.trace")
    return prompts.offsets_s(replay_speed(params))


def job_prompts(params: Mapping[str, Any], plan_dir: str, variables: Mapping[str, Any],
                salt: str = "") -> PromptSource:
    """A job's prompt source: its trace's (TracePrompts) when it has `trace`, else
    runner.load.workload.prompt_source's (same arguments and errors)."""
    if not params.get("trace"):
        return prompt_source(params, plan_dir, variables, salt)
    return trace_prompts(params, plan_dir, salt)


def trace_prompts(params: Mapping[str, Any], plan_dir: str, salt: str = "") -> TracePrompts:
    """The prompt source of a job with `trace`; InputError (exit 2) for a bad trace."""
    trace = load_trace(params, plan_dir)
    assert trace is not None  # params hold a trace
    return TracePrompts(trace, int(params.get("seed", 0)), params.get("endpoint", "chat") == "chat",
                        salt)
