"""Calibrating synthetic prompt lengths for a model (issue 14 §6): a few unmeasured requests,
sent as the probe sends its own (runner.run.probewire), learn how many tokens the server makes
of runner's words. vLLM's `POST /tokenize` answers without generating; elsewhere (a LiteLLM
proxy, SGLang, Ollama) probe requests with max_tokens 1 are read for usage.prompt_tokens."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from runner.inventory.config import Server
from runner.load.sizing import Calibration, fit
from runner.load.synthetic import VOCABULARY
from runner.load.tokenizer import TokenizerSizer
from runner.run.probewire import ProbeTarget, probe_exchange, send_prompt

TOKENIZE_PATH = "/tokenize"  # vLLM's (vllm/entrypoints/serve/tokenize/api_router.py), no /v1
# The two probe prompts: 1 and 2 passes over the whole vocabulary (171 and 341 words, about
# 230 and 460 tokens of a small BPE: within any served model's context). Random draws of 200
# words, one probe each, left the fit 5% off on the real engine (a sample's own tokens/word);
# whole passes have the vocabulary's mean, which synthetic prompts have on average.
PASSES = (1, 2)
SALT = "calibration"  # the probes' word order: runner's own, never a job's prompt


@dataclass(frozen=True)
class Subject:
    """A model to calibrate on a server, for an endpoint (the chat template's overhead is the
    chat endpoint's)."""

    server: Server
    model: str
    endpoint: str


def probe_words(passes: int) -> list[str]:
    """A probe prompt's words: "0" (a job's prompt starts with its index), then `passes`
    passes over VOCABULARY, each in its own seeded order."""
    rng, words = random.Random(f"{SALT}:{passes}"), ["0"]
    for _ in range(passes):
        order = list(VOCABULARY)
        rng.shuffle(order)
        words += order
    return words


def probe_prompt(chat: bool, passes: int) -> dict[str, Any]:
    text = " ".join(probe_words(passes))
    return {"messages": [{"role": "user", "content": text}]} if chat else {"prompt": text}


async def calibrate(subject: Subject, env: Mapping[str, str]) -> Calibration:
    """The words/tokens fit of `subject` (method tokenize or usage), or `none` with the reason
    when the server gave no usable counts. Never raises for what a server answers."""
    chat = subject.endpoint == "chat"
    sizes = [len(probe_words(n)) for n in PASSES]
    prompts = [probe_prompt(chat, n) for n in PASSES]
    method, counts, spent, why = await server_counts(subject, env, prompts)
    if why is not None:
        return Calibration(requests_spent=spent, reason=why)
    points = [(w, float(c)) for w, c in zip(sizes, counts, strict=False) if c is not None]
    return fit(points, method, spent)


async def tokenizer_overhead(subject: Subject, env: Mapping[str, str],
                             sizer: TokenizerSizer) -> TokenizerSizer:
    """`sizer` with the server's overhead: its count of one probe prompt minus the local
    tokenizer's count of the text (0 when the server gave none)."""
    prompt = probe_prompt(subject.endpoint == "chat", PASSES[0])
    _, counts, spent, _ = await server_counts(subject, env, [prompt])
    server = counts[0] if counts else None
    local = sizer.count(" ".join(probe_words(PASSES[0])))
    return sizer.with_overhead(0.0 if server is None else server - local, spent)


async def server_counts(subject: Subject, env: Mapping[str, str],
                        prompts: Sequence[Mapping[str, Any]],
                        ) -> tuple[str, list[int | None], int, str | None]:
    """(method, the server's count of each prompt, requests spent, why none counted): every
    prompt through /tokenize when its first answers, else through usage probes."""
    target = ProbeTarget(subject.server, subject.model, _probe_params(subject))
    wire = probe_exchange(target, target.params, env)
    url = subject.server.url.rstrip("/") + TOKENIZE_PATH
    async with wire.client_session(limit=1) as session:
        first = await _tokenize(session, url, subject.model, prompts[0], wire.max_line)
        if first is not None:
            counts = [first] + [await _tokenize(session, url, subject.model, p, wire.max_line)
                                for p in prompts[1:]]
            return "tokenize", counts, len(prompts), None
    spent, counts, why = 1, [], None
    for prompt in prompts:
        record = await send_prompt(target, target.params, env, prompt)
        spent += 1
        counts.append(record.prompt_tokens if record.ok else None)
        if not record.ok:
            why = f"a probe request failed: {record.error or record.error_kind}"
            break
        if record.prompt_tokens is None:
            why = "the server's answer had no usage.prompt_tokens"
            break
    return "usage", counts, spent, why


def _probe_params(subject: Subject) -> dict[str, Any]:
    """A probe request's params: one output token, not streamed (usage always comes in a whole
    answer), the server's timeout."""
    timeout = subject.server.timeout_s
    return {"endpoint": subject.endpoint, "max_tokens": 1, "stream": False,
            "warmup_requests": 0, "request_timeout_s": timeout, "stall_timeout_s": timeout}


async def _tokenize(session: aiohttp.ClientSession, url: str, model: str,
                    prompt: Mapping[str, Any], limit: int) -> int | None:
    """The `count` of vLLM's /tokenize for `prompt`, None when the server does not answer
    one (404 on a proxy, an error, anything but {"count": int})."""
    try:
        async with session.post(url, json={"model": model, **prompt}) as resp:
            body = await resp.content.read(limit)
            if resp.status != 200:
                return None
        count = json.loads(body).get("count")
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError, RecursionError):
        return None
    return count if type(count) is int and count >= 0 else None
