"""Calibrating synthetic prompt lengths for a model (issue 14 §6): a few unmeasured requests,
sent as the probe sends its own (runner.run.probewire), learn how many tokens the server makes
of runner's words. vLLM's `POST /tokenize` answers without generating; elsewhere (a LiteLLM
proxy, SGLang, Ollama) probe requests with max_tokens 1 are read for usage.prompt_tokens."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from runner.inventory.config import Server
from runner.load.sizing import Calibration, fit
from runner.load.tokenizer import TokenizerSizer
from runner.load.workload import SyntheticPrompts
from runner.run.probewire import ProbeTarget, probe_exchange, send_prompt

TOKENIZE_PATH = "/tokenize"  # vLLM's (vllm/entrypoints/serve/tokenize/api_router.py), no /v1
PROBE_WORDS_MAX = 1024  # the longest probe prompt: within any served model's context
PROBE_WORDS_MIN = 64
TOKENIZE_SAMPLES = 2  # prompts per size through /tokenize (free); usage probes send one each
SALT = "calibration"  # probe prompts are runner's own words, never a job's


@dataclass(frozen=True)
class Subject:
    """A model to calibrate on a server, for an endpoint (the chat template's overhead is the
    chat endpoint's), with the longest synthetic target (tokens) among its jobs."""

    server: Server
    model: str
    endpoint: str
    target_tokens: int


def probe_sizes(target_tokens: int) -> tuple[int, int]:
    """(short, long) probe prompt sizes in words: the long one the target, within
    PROBE_WORDS_MIN..PROBE_WORDS_MAX, the short one a sixteenth of it (at least 8)."""
    long = min(max(target_tokens, PROBE_WORDS_MIN), PROBE_WORDS_MAX)
    return max(8, long // 16), long


def probe_texts(chat: bool, sizes: Sequence[int]) -> list[dict[str, Any]]:
    """A probe prompt of each size in words, drawn as uncalibrated synthetic prompts are."""
    return [SyntheticPrompts(words, 0, 0, chat, f"{SALT}:{i}").prompt(i)
            for i, words in enumerate(sizes)]


async def calibrate(subject: Subject, env: Mapping[str, str]) -> Calibration:
    """The words/tokens fit of `subject` (method tokenize or usage), or `none` with the reason
    when the server gave no usable counts. Never raises for what a server answers."""
    short, long = probe_sizes(subject.target_tokens)
    sizes = [short, long] * TOKENIZE_SAMPLES
    prompts = probe_texts(subject.endpoint == "chat", sizes)
    method, counts, spent, why = await server_counts(subject, env, prompts)
    if why is not None:
        return Calibration(requests_spent=spent, reason=why)
    points = [(w, float(c)) for w, c in zip(sizes, counts, strict=False) if c is not None]
    return fit(points, method, spent)


async def tokenizer_overhead(subject: Subject, env: Mapping[str, str],
                             sizer: TokenizerSizer) -> TokenizerSizer:
    """`sizer` with the server's overhead: its count of one probe prompt minus the local
    tokenizer's count of the text (0 when the server gave none)."""
    [prompt] = probe_texts(subject.endpoint == "chat", [PROBE_WORDS_MIN])
    _, counts, spent, _ = await server_counts(subject, env, [prompt])
    text = prompt["messages"][0]["content"] if "messages" in prompt else prompt["prompt"]
    server = counts[0] if counts else None
    return sizer.with_overhead(0.0 if server is None else server - sizer.count(text), spent)


async def server_counts(subject: Subject, env: Mapping[str, str],
                        prompts: Sequence[Mapping[str, Any]],
                        ) -> tuple[str, list[int | None], int, str | None]:
    """(method, the server's count of each prompt, requests spent, why none counted): every
    prompt through /tokenize when its first answers, else through usage probes (one of each
    size: the first two prompts)."""
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
    for prompt in prompts[:2]:
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
