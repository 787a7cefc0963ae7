"""What differs between the endpoints a job may call (`workload.endpoint`): the path, the
request body's fields, how many inputs a request carries, and the reader of its answers.

- `chat`: POST /v1/chat/completions {model, messages, max_tokens, temperature, seed, stream}.
- `completions`: POST /v1/completions {model, prompt, ...}, the same sampling fields.
- `responses`: POST /v1/responses {model, input, max_output_tokens, temperature, stream}
  (OpenAI's Responses API: `input` is the prompt's text or its chat messages; it has no `seed`
  and no `stream_options`, its usage comes in the terminal event), read by load.responses.
- `embeddings`: POST /v1/embeddings {model, input: [batch_size texts], encoding_format: float},
  never streamed, no sampling fields; read by load.embeddings. Request i carries the prompts
  i*batch_size .. i*batch_size + batch_size - 1 of the workload (synthetic, dataset, template).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from runner.defaults import PARAMS
from runner.load.embeddings import EmbeddingsState
from runner.load.responses import ResponsesState
from runner.load.sse import StreamState

PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions",
         "responses": "/v1/responses", "embeddings": "/v1/embeddings"}
CHAT_SHAPED = frozenset({"chat", "responses"})  # prompts may be chat messages



def endpoint(params: Mapping[str, Any]) -> str:
    """The job's endpoint name (chat when unset)."""
    return str(params.get("endpoint", "chat"))


def batch_size(params: Mapping[str, Any]) -> int | None:
    """Inputs per request of an embeddings job; None for the other endpoints."""
    if endpoint(params) != "embeddings":
        return None
    return int(params.get("batch_size") or PARAMS["batch_size"])


def streams(params: Mapping[str, Any]) -> bool:
    """Whether the job's requests ask for a stream (an embeddings request never does)."""
    return endpoint(params) != "embeddings" and bool(params.get("stream", True))


def answer_reader(params: Mapping[str, Any], default: type[StreamState], max_line: int,
                  max_chunks: int) -> Callable[[], StreamState]:
    """A maker of one answer's reader for the job's endpoint (`default` for chat and
    completions: the Exchange's own, which the probe extends)."""
    size = batch_size(params)
    if size is not None:
        return functools.partial(EmbeddingsState, max_line, max_chunks, size)
    kind = ResponsesState if endpoint(params) == "responses" else default
    return functools.partial(kind, max_line, max_chunks)


def endpoint_tail(params: Mapping[str, Any], tail: dict[str, Any]) -> dict[str, Any]:
    """The body's fields after the prompt (workload._body_tail's), renamed or dropped for the
    job's endpoint (see the module's docstring)."""
    name = endpoint(params)
    if name == "embeddings":
        return {"encoding_format": "float"}
    if name == "responses":
        shaped = {"max_output_tokens": tail.get("max_tokens"),
                  "temperature": tail.get("temperature"), "stream": tail.get("stream")}
        return {k: v for k, v in shaped.items() if v is not None}
    return tail


def shape_prompt(params: Mapping[str, Any], prompt: Mapping[str, Any]) -> dict[str, Any]:
    """One prompt's body fields (`{"messages"}` or `{"prompt"}`) for the job's endpoint: the
    Responses API's `input`; an embeddings request's `input` list (the prompt `batch_size`
    times: the probe's; jobs batch distinct prompts, see EndpointPrompts)."""
    size = batch_size(params)
    if size is not None:
        return {"input": [_text(prompt)] * size}
    if endpoint(params) == "responses":
        own = {"max_output_tokens": prompt["max_tokens"]} if "max_tokens" in prompt else {}
        return {"input": prompt.get("messages", prompt.get("prompt")), **own}  # a trace's
    return dict(prompt)


def _text(prompt: Mapping[str, Any]) -> str:
    return str(prompt.get("prompt", ""))


class EndpointPrompts:
    """A job's prompt source (load.workload.PromptSource) shaped for its endpoint."""

    def __init__(self, params: Mapping[str, Any], inner: Any) -> None:
        self.params, self.inner = dict(params), inner
        self.size = batch_size(params)

    def prompt(self, index: int) -> dict[str, Any]:
        if self.size is None:
            return shape_prompt(self.params, self.inner.prompt(index))
        first = index * self.size
        return {"input": [_text(self.inner.prompt(i)) for i in range(first, first + self.size)]}

    def warmup(self, index: int) -> dict[str, Any]:
        if self.size is None:
            return shape_prompt(self.params, self.inner.warmup(index))
        first = index * self.size
        return {"input": [_text(self.inner.warmup(i)) for i in range(first, first + self.size)]}

    def salted(self, salt: str) -> EndpointPrompts:
        return EndpointPrompts(self.params, self.inner.salted(salt))


def shaped(params: Mapping[str, Any], prompts: Any) -> Any:
    """`prompts` as the job's endpoint takes them (unchanged for chat and completions)."""
    if endpoint(params) in ("chat", "completions") or isinstance(prompts, EndpointPrompts):
        return prompts
    return EndpointPrompts(params, prompts)
