"""Multi-turn sessions (workload.session, issue 14 §2): a measured unit of a job is a session
whose turns are sent one after another, each with the conversation so far.

Turn 1 sends the job's prompt for the session's index (synthetic, a dataset line or a
template), cut before its second user message. Each later turn appends the model's own answer
to the previous turn and the next user message: the line's next one (a dataset line may hold a
whole conversation; its own assistant messages are dropped), else `user_tokens` synthetic words.
A turn that fails ends its session; so do the end of sending (duration_s, an interrupt, a
server the job gives up on). Concurrency counts sessions, and an open loop's arrivals start
sessions: a session keeps its slot from its first turn's send to its last turn's end."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from time import perf_counter_ns
from typing import Any

from runner.load.answertext import AnswerState
from runner.load.exchange import Target
from runner.load.loadjob import LoadJob
from runner.load.records import RequestRecord
from runner.load.sse import StreamState
from runner.load.synthetic import VOCABULARY
from runner.load.workload import PromptSource, encode_body
from runner.plan.sessions import think_time_s, turns_of, user_tokens

Message = dict[str, Any]


class SessionPrompts:
    """A job's prompt source read as sessions: `prompt(s)` is turn 1 of session `s` (what the
    load generator prebuilds), `user(s, turn)` the messages that turn `turn` (from 2) adds
    after the previous answer."""

    def __init__(self, source: PromptSource, params: Mapping[str, Any]) -> None:
        self.source, self.seed = source, params.get("seed", 0)
        self.words = user_tokens(params)

    def prompt(self, index: int) -> dict[str, Any]:
        return {"messages": split_turns(self.source.prompt(index)["messages"])[0]}

    def warmup(self, index: int) -> dict[str, Any]:
        prompt = self.source.warmup(index)
        return {"messages": split_turns(prompt["messages"])[0]}

    def salted(self, salt: str) -> SessionPrompts:
        copy = SessionPrompts.__new__(SessionPrompts)
        copy.source, copy.seed, copy.words = self.source.salted(salt), self.seed, self.words
        return copy

    def user(self, session: int, turn: int) -> list[Message]:
        """Turn `turn`'s new messages: the line's own, else one synthetic user message whose
        first word `<session>.<turn>` makes it unique."""
        turns = split_turns(self.source.prompt(session)["messages"])
        if turn <= len(turns):
            return turns[turn - 1]
        rng = random.Random(f"{self.seed}:session:{session}:{turn}")
        words = [f"{session}.{turn}", *rng.choices(VOCABULARY, k=self.words - 1)]
        return [{"role": "user", "content": " ".join(words)}]


def split_turns(messages: list[Message]) -> list[list[Message]]:
    """A conversation's turns: each ends with a user message and holds what came since the
    previous one, assistant messages left out (the model's own answers take their place).
    Messages after the last user message are dropped; no user message: one turn of all."""
    turns: list[list[Message]] = []
    current: list[Message] = []
    for message in messages:
        if message.get("role") == "assistant":
            continue
        current.append(message)
        if message.get("role") == "user":
            turns.append(current)
            current = []
    return turns or [current]


class SessionJob(LoadJob):
    """A running job of sessions (see the module's docstring). A measured unit's index `i` from
    the closed or open loop is session `i - warmup`; turn `t` of session `s` is request index
    `warmup + s * turns + t - 1`. Warm-ups stay single requests (each session's turn 1 shape)."""

    state_type: type[StreamState] = AnswerState

    def __init__(self, target: Target, params: Mapping[str, Any], prompts: PromptSource,
                 on_record: Callable[[RequestRecord], None], max_error_rate: float) -> None:
        self.sessions = SessionPrompts(prompts, params)
        super().__init__(target, params, self.sessions, on_record, max_error_rate)
        self.per_session, self.think_s = turns_of(params), think_time_s(params)
        self.answers: dict[int, str] = {}  # a turn's answer, until its session takes it

    async def _request(self, index: int, body: bytes, ready: int | None,
                       scheduled: int | None, queue_ms: float | None = None) -> None:
        """A warm-up, or a whole session from its turn 1 (`body`); see Exchange._request."""
        if index < self.warmup:
            await super()._request(index, body, ready, scheduled, queue_ms)
            return
        session = index - self.warmup
        first = self.warmup + session * self.per_session
        history = list(self.sessions.prompt(session)["messages"])
        for turn in range(1, self.per_session + 1):
            await super()._request(first + turn - 1, body, ready, scheduled, queue_ms)
            answer = self.answers.pop(first + turn - 1, None)
            if answer is None or turn == self.per_session or not await self._think():
                return  # a failed turn ends its session, as does the end of sending
            history += [{"role": "assistant", "content": answer},
                        *self.sessions.user(session, turn + 1)]
            body = encode_body({"model": self.bodies.model, "messages": history,
                                **self.bodies.tail})
            # Later turns are no arrivals: no scheduled time (an open loop's achieved rate,
            # queue and from-scheduled latencies are its session starts'), no slot queue.
            ready, scheduled, queue_ms = perf_counter_ns(), None, None

    async def _think(self) -> bool:
        """Wait the think time; False when the session must stop: sending ended, or the
        measured window's duration_s is over."""
        if self.think_s > 0 and self.sending:
            await asyncio.sleep(self.think_s)
        if self.duration_ns is not None and perf_counter_ns() - self.t0 >= self.duration_ns:
            self.duration_hit = True
            return False
        return self.sending

    def _measure(self, record: RequestRecord, state: StreamState, start: int, end: int) -> None:
        super()._measure(record, state, start, end)
        if record.warmup:
            return
        record.session, turn = divmod(record.index - self.warmup, self.per_session)
        record.turn = turn + 1
        if record.ok and isinstance(state, AnswerState) and record.turn < self.per_session:
            self.answers[record.index] = state.text()
