"""What each request asks: prompts (synthetic, a JSONL dataset or a template) and request bodies."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from runner import defaults
from runner.errors import InputError, Location
from runner.inputfile import read_input, utf8_text
from runner.load.endpoints import CHAT_SHAPED, endpoint, endpoint_tail, shaped
from runner.load.synthetic import SyntheticPrompts, wrap
from runner.load.tokenizer import local_sizer
from runner.plan.templating import checked_text, environment, explain, render_text
from runner.printable import lone_surrogate

PREBUILD_BYTES = 64 * 2**20  # request bodies encoded before the clock starts, at most



class PromptSource(Protocol):
    """The prompt of measured request `index` (0 for the first one after the warm-ups) and of
    warm-up request `index`: `{"messages": [...]}` (chat) or `{"prompt": "..."}`."""

    def prompt(self, index: int) -> dict[str, Any]: ...
    def warmup(self, index: int) -> dict[str, Any]: ...
    def salted(self, salt: str) -> PromptSource: ...


def prompt_source(
    params: Mapping[str, Any], plan_dir: str, variables: Mapping[str, Any], salt: str = ""
) -> PromptSource:
    """The job's prompt source; dataset and template errors raise InputError (exit 2).

    `salt` (see `prompt_salt`) makes synthetic prompts a job's and a run's own; "" gives the
    prompts of `prompt_reuse: always`, which depend on `seed` and the request index only."""
    chat = endpoint(params) in CHAT_SHAPED
    if params.get("dataset"):
        return DatasetPrompts(os.path.join(plan_dir, params["dataset"]), chat,
                              session=isinstance(params.get("session"), Mapping))
    if params.get("template"):
        return TemplatePrompts(params["template"], variables, chat)
    own = SyntheticPrompts(params["input_tokens"], params.get("input_tokens_stddev", 0),
                           params.get("seed", 0), chat, salt, local_sizer(params, plan_dir))
    from runner.load.prefixes import Prefix, PrefixedPrompts
    return PrefixedPrompts(own, prefix) if (prefix := Prefix.of(params)) else own


def prompt_salt(params: Mapping[str, Any], job_id: str, run_nonce: str | None) -> str:
    """What makes a job's synthetic prompts differ from other jobs' and other runs' (so that a
    server's prefix cache cannot answer them), by the job's `prompt_reuse`: `none` mixes in the
    job id and the run's nonce, `across_runs` the job id only, `across_jobs` the nonce only,
    `always` neither (""). `run_nonce` None: a run recorded before runs had nonces, whose
    prompts depended on the seed and the index only (a --resume sends them again)."""
    reuse = params.get("prompt_reuse", defaults.PROMPT_REUSE) if run_nonce is not None \
        else "always"
    parts = [f"job={job_id}"] if reuse in ("none", "across_runs") else []
    parts += [f"run={run_nonce}"] if reuse in ("none", "across_jobs") else []
    return ";".join(parts)


def _warmup_variant(prompt: Mapping[str, Any], index: int) -> dict[str, Any]:
    """`prompt` with `(warm-up N) ` before its text, so that a warm-up never fills a prefix
    cache with a measured prompt: first message's text when chat, else the prompt's."""
    mark = f"(warm-up {index}) "
    if "prompt" in prompt:
        return {**prompt, "prompt": mark + str(prompt["prompt"])}
    messages = [dict(m) for m in prompt["messages"]]
    content = messages[0].get("content")
    if isinstance(content, str):
        messages[0]["content"] = mark + content
    elif isinstance(content, list):
        messages[0]["content"] = [{"type": "text", "text": mark}, *content]
    else:
        messages.insert(0, {"role": "user", "content": mark})
    return {**prompt, "messages": messages}


class DatasetPrompts:
    """A JSONL file of `{"prompt": "..."}` or `{"messages": [...]}` lines, read once and cycled.
    `session`: each line is a session's conversation, whose user messages are its turns (so a
    line of messages must hold one; runner.load.sessions)."""

    session = False  # what a subclass that reads lines its own way (a trace's) keeps

    def __init__(self, path: str, chat: bool, session: bool = False) -> None:
        self.path, self.chat, self.session = path, chat, session
        self.prompts = self._read()

    def prompt(self, index: int) -> dict[str, Any]:
        return self.prompts[index % len(self.prompts)]

    def warmup(self, index: int) -> dict[str, Any]:
        return _warmup_variant(self.prompt(index), index)

    def salted(self, salt: str) -> DatasetPrompts:
        return self  # the user's text, as written: see README, Prompts

    def _read(self) -> list[dict[str, Any]]:
        try:
            raw = read_input(self.path, "the dataset", defaults.MAX_DATASET_BYTES)
        except OSError as exc:
            raise InputError(f"cannot read the dataset: {exc}; workload.dataset is a UTF-8 JSONL "
                             "file, relative to the plan's folder", Location(self.path)) from None
        lines = utf8_text(raw, self.path, "the dataset").splitlines()
        prompts = [self._line(text, n) for n, text in enumerate(lines, 1) if text.strip()]
        if not prompts:
            raise InputError('the dataset has no prompts; add one JSON object per line, with '
                             '"prompt" or "messages"', Location(self.path))
        return prompts

    def _line(self, text: str, lineno: int) -> dict[str, Any]:
        where = Location(self.path, lineno)
        try:
            item = json.loads(text)
        except ValueError as exc:
            raise InputError(f"not JSON: {exc}", where) from None
        except RecursionError:  # `[[[[...` a thousand deep
            raise InputError("not JSON a prompt can be: nested too deeply", where) from None
        if not isinstance(item, dict):
            raise InputError('expected an object with "prompt" or "messages"', where)
        if (bad := lone_surrogate(item)) is not None:
            raise InputError(f"a string holds {bad}, half of a surrogate pair, which no request "
                             "can carry: write the character itself, or both halves", where)
        if isinstance(item.get("prompt"), str) and item["prompt"]:
            return wrap(item["prompt"], self.chat)
        if "messages" in item:
            return self._messages(item["messages"], where)
        raise InputError('expected "prompt" (a non-empty string) or "messages" (a list)', where)

    def _messages(self, messages: Any, where: Location) -> dict[str, Any]:
        if not self.chat:
            raise InputError('"messages" needs endpoint chat or responses; use "prompt" for '
                             'completions and embeddings', where)
        if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
        ):
            raise InputError('"messages" must be a non-empty list of objects with a role', where)
        if self.session and not any(m["role"] == "user" for m in messages):
            raise InputError('a session\'s conversation needs a "user" message (its turn 1; '
                             'the line\'s "assistant" messages are dropped, the model\'s '
                             'answers take their place)', where)
        return {"messages": messages}


class TemplatePrompts:
    """A Jinja2 template rendered per request (sandboxed) with the plan's vars and `i`."""

    def __init__(self, template: str, variables: Mapping[str, Any], chat: bool) -> None:
        self.template, self.variables, self.chat = template, dict(variables), chat
        try:
            render_text(template, {**self.variables, "i": 0})  # syntax, sandbox and names
            self.compiled = environment().from_string(template)
        except Exception as exc:  # any failure inside a user's template is the user's error
            raise InputError(f"workload.template: {explain(exc)}") from None

    def prompt(self, index: int) -> dict[str, Any]:
        try:
            text = checked_text(str(self.compiled.render({**self.variables, "i": index})))
        except Exception as exc:
            raise InputError(f"workload.template (request {index}): {explain(exc)}") from None
        return wrap(text, self.chat)

    def warmup(self, index: int) -> dict[str, Any]:
        return _warmup_variant(self.prompt(index), index)

    def salted(self, salt: str) -> TemplatePrompts:
        return self  # the user's text, as rendered: see README, Prompts

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its text and vars, compiled again where unpickled (a worker process,
        run.workers): the sandbox's compiled template holds functions pickle cannot name."""
        return (TemplatePrompts, (self.template, self.variables, self.chat))


def request_body(
    params: Mapping[str, Any], model: str, prompt: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON body of one request: prompt and sampling params, then `extra_body` on top."""
    return {"model": model, **prompt, **_body_tail(params)}


def _body_tail(params: Mapping[str, Any],
               added: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What follows the prompt in every body of a job: the params, then `added` (what runner
    asks of the server, see runner.run.gateway), then `extra_body`, which can override both (a
    key of `extra_body` that is also an earlier key, such as `model`, keeps its place)."""
    tail: dict[str, Any] = {k: params[k] for k in ("max_tokens", "temperature", "seed")
                            if params.get(k) is not None}
    tail["stream"] = bool(params.get("stream", True))
    if tail["stream"]:
        tail["stream_options"] = {"include_usage": True}
    tail = endpoint_tail(params, tail)
    tail.update(added or {})
    tail.update(params.get("extra_body") or {})
    return tail


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Compact JSON bytes, as sent."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


OWN_LENGTH = ("max_tokens", "max_output_tokens")  # a prompt's own output length (a trace's)


class RequestBodies:
    """Encoded request bodies: the first ones built before the clock starts, others on demand."""

    def __init__(self, params: Mapping[str, Any], model: str, prompts: PromptSource,
                 added: Mapping[str, Any] | None = None) -> None:
        self.model, self.prompts = model, shaped(params, prompts)
        self.tail = _body_tail(params, added)  # the same for every request: built once per job
        self.ready: dict[int, bytes] = {}
        self.warmups = int(params.get("warmup_requests") or 0)

    def build(self, index: int) -> bytes:
        """Request `index` of the job (warm-ups first), its measured prompts counted from 0
        after the warm-ups: the measured prompts do not depend on `warmup_requests`."""
        measured = index - self.warmups
        prompt = self.prompts.prompt(measured) if measured >= 0 else self.prompts.warmup(index)
        own = {k: prompt[k] for k in OWN_LENGTH if k in prompt}  # a trace line's, over the plan's
        return encode_body({"model": self.model, **prompt, **self.tail, **own})

    def prebuild(self, indices: Iterable[int]) -> None:
        """Build the bodies of `indices` ahead, up to PREBUILD_BYTES of them."""
        size = 0
        for index in indices:
            if size >= PREBUILD_BYTES:
                return
            self.ready[index] = body = self.build(index)
            size += len(body)

    def get(self, index: int) -> bytes:
        body = self.ready.pop(index, None)
        return body if body is not None else self.build(index)
