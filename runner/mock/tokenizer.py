"""The simulator's tokenizer (issue 14 §6): `tokens_per_word` tokens per whitespace-separated
word of a prompt (a token id is one token), and vLLM's `POST /tokenize` to ask for the count
without generating, so calibration of prompt lengths is testable both ways."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from runner.mock.requests import ApiError, json_body, prompt_of

MAX_MODEL_LEN = 1_000_000  # what /tokenize reports as max_model_len


def _parts(prompt: object) -> tuple[int, int]:
    """(words, token ids) of a prompt, a message list or a content part."""
    if isinstance(prompt, str):
        return len(prompt.split()), 0
    if isinstance(prompt, int):
        return 0, 1
    if isinstance(prompt, list):
        found = [_parts(item) for item in prompt]
        return sum(w for w, _ in found), sum(i for _, i in found)
    if isinstance(prompt, dict):  # a chat message, or a content part such as {"type": "text"}
        return _parts(prompt.get("content", prompt.get("text")))
    return 0, 0


def count_tokens(prompt: object, tokens_per_word: float) -> int:
    """The simulated prompt length: round(words * tokens_per_word) + token ids, at least 1 for
    a prompt with any word (1.0: runner.mock.requests.count_prompt_tokens's count)."""
    words, ids = _parts(prompt)
    scaled = round(words * tokens_per_word)
    return ids + (max(scaled, 1) if words else 0)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def tokenize_handler(check: Callable[[web.Request], None], models: tuple[str, ...],
                     tokens_per_word: float) -> Handler:
    """vLLM's POST /tokenize (vllm/entrypoints/serve/tokenize): {model, prompt} or {model,
    messages} -> {count, max_model_len, tokens, token_strs}; `check` refuses a wrong key."""

    async def tokenize(request: web.Request) -> web.StreamResponse:
        try:
            check(request)
            body = await json_body(request)
            model = body.get("model")
            if model is not None and model not in models:
                raise ApiError(404, f"The model `{model}` does not exist.", "model",
                               "model_not_found")
            prompt = prompt_of(body, "messages" in body)
        except ApiError as err:
            return err.response()
        count = count_tokens(prompt, tokens_per_word)
        return web.json_response({"count": count, "max_model_len": MAX_MODEL_LEN,
                                  "tokens": list(range(count)), "token_strs": None})

    return tokenize
