"""Multi-turn sessions (workload.session, issue 14 §2) against the simulator and a server that
fails half-way: turns in order, the conversation growing with the model's own answers."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from scripted_server import Script, scripted_server

from runner.errors import InputError
from runner.load.earlystop import EarlyStop
from runner.load.exchange import Target
from runner.load.loadgen import LoadResult, run_load
from runner.load.records import RequestRecord
from runner.load.sessions import split_turns
from runner.load.workload import prompt_source
from runner.mock.server import MockConfig, serving


def params(**overrides: Any) -> dict[str, Any]:
    base = {"endpoint": "chat", "input_tokens": 8, "max_tokens": 6, "temperature": 0, "seed": 0,
            "stream": True, "concurrency": 2, "requests": 3, "warmup_requests": 0,
            "request_timeout_s": 10, "session": {"turns": 4, "user_tokens": 5}}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def simulate(job: dict[str, Any], plan_dir: str = ".") -> LoadResult:
    async def main() -> LoadResult:
        async with serving(MockConfig(models=("m",), ttft_ms=2, itl_ms=1)) as url:
            return await run_load(Target(url, {}, "m"), job, prompt_source(job, plan_dir, {}))

    return asyncio.run(main())


def by_session(records: list[RequestRecord]) -> dict[int, list[RequestRecord]]:
    sessions: dict[int, list[RequestRecord]] = {}
    for r in records:
        if not r.warmup:
            assert r.session is not None
            sessions.setdefault(r.session, []).append(r)
    return sessions


@pytest.mark.parametrize("stream", [True, False])
def test_each_session_sends_its_turns_in_order_with_a_growing_prompt(stream: bool) -> None:
    """3 sessions x 4 turns, 2 at a time: 12 requests; each turn's prompt holds the previous
    one's, its answer (6 tokens: 6 words in the simulator) and 5 new words."""
    result = simulate(params(stream=stream, warmup_requests=1))
    assert [r.warmup for r in result.records].count(True) == 1
    sessions = by_session(result.records)
    assert sorted(sessions) == [0, 1, 2]
    for records in sessions.values():
        assert [r.turn for r in records] == [1, 2, 3, 4]
        assert all(r.ok for r in records)
        tokens = [r.prompt_tokens or 0 for r in records]
        assert [b - a for a, b in itertools.pairwise(tokens)] == [6 + 5] * 3
        sent = [(r.sent_ms, r.sent_ms + (r.e2e_ms or 0)) for r in records]
        assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(sent))
    assert result.records[0].to_json().get("session") is None  # a warm-up is in no session


def test_think_time_falls_between_a_turn_end_and_the_next_send() -> None:
    """think_time_s 0.05: each turn is sent at least 50 ms after the previous one ended (the
    order of the offsets, never a bound on how late)."""
    result = simulate(params(requests=2, session={"turns": 3, "think_time_s": 0.05}))
    for records in by_session(result.records).values():
        for before, after in itertools.pairwise(records):
            assert after.sent_ms >= before.sent_ms + (before.e2e_ms or 0) + 50


def test_a_dataset_line_holds_a_whole_conversation(tmp_path: Path) -> None:
    """The line's user messages are the turns, its assistant messages replaced by the model's
    own answers; a line with fewer user messages than turns goes on with synthetic ones."""
    lines = [{"messages": [{"role": "system", "content": "be brief"},
                           {"role": "user", "content": "one two three"},
                           {"role": "assistant", "content": "not sent"},
                           {"role": "user", "content": "four"}]},
             {"prompt": "alone here"}]
    (tmp_path / "talks.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    job = params(input_tokens=None, dataset="talks.jsonl", requests=2,
                 session={"turns": 3, "user_tokens": 2})
    sent: list[dict[str, Any]] = []
    events = [(0, {"choices": [{"index": 0, "delta": {"content": "ok"}}]}),
              (1, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
              (1, "[DONE]")]
    with scripted_server(Script(events=events, received=sent)) as url:
        result = asyncio.run(run_load(Target(url, {}, "m"), job,
                                      prompt_source(job, str(tmp_path), {})))
    assert all(r.ok for r in result.records) and len(result.records) == 6
    conversation = max((m["messages"] for m in sent), key=len)
    roles = [m["role"] for m in conversation]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in conversation[:5]] == ["be brief", "one two three", "ok",
                                                         "four", "ok"]
    assert conversation[5]["content"].startswith("0.3 ")  # synthetic: session 0, turn 3


def test_a_failed_turn_ends_its_session() -> None:
    """A server failing after 5 answers, one session of 3 turns at a time: session 0 whole,
    session 1 ends at its failed turn 3 (the 6th request), sessions 2 and 3 at their failed
    turn 1: none of their later turns is sent (8 requests, not 12)."""
    events = [(0, {"choices": [{"index": 0, "delta": {"content": "hi"}}]}),
              (1, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
              (1, "[DONE]")]
    script = Script(events=events, fail_after=5)
    job = params(concurrency=1, requests=4, session={"turns": 3})
    with scripted_server(script) as url:
        result = asyncio.run(run_load(Target(url, {}, "m"), job, prompt_source(job, ".", {})))
    sessions = by_session(result.records)
    assert [[(r.turn, r.ok) for r in sessions[s]] for s in range(4)] == [
        [(1, True), (2, True), (3, True)], [(1, True), (2, True), (3, False)],
        [(1, False)], [(1, False)]]
    assert len(script.received) == 8


@pytest.mark.parametrize(("messages", "turns"), [
    ([{"role": "user", "content": "a"}], [["a"]]),
    ([{"role": "system", "content": "s"}, {"role": "user", "content": "a"},
      {"role": "assistant", "content": "x"}, {"role": "tool", "content": "t"},
      {"role": "user", "content": "b"}, {"role": "assistant", "content": "y"}],
     [["s", "a"], ["t", "b"]]),
    ([{"role": "system", "content": "s"}], [["s"]]),
])
def test_split_turns(messages: list[dict[str, Any]], turns: list[list[str]]) -> None:
    assert [[m["content"] for m in turn] for turn in split_turns(messages)] == turns


def test_an_open_loop_starts_sessions_and_max_concurrency_counts_sessions() -> None:
    """rate 50/s, at most 1 session in flight: sessions never overlap (each starts after the
    previous one's last turn ended); only turn 1 has a scheduled time (an arrival)."""
    result = simulate(params(concurrency=None, rate=50, arrival="constant", max_concurrency=1,
                             requests=3, session={"turns": 3}))
    sessions = by_session(result.records)
    assert [[r.turn for r in sessions[s]] for s in range(3)] == [[1, 2, 3]] * 3
    for s in (1, 2):
        last = sessions[s - 1][-1]
        assert sessions[s][0].sent_ms >= last.sent_ms + (last.e2e_ms or 0)
    assert all((r.scheduled_ms is not None) == (r.turn == 1) for r in result.records)


def test_duration_ends_sessions_between_turns() -> None:
    """duration_s 0.3 with 0.1 s of think time: sending stops; every session's records are
    its turns from 1 with none missing, and the job ends as `duration`."""
    result = simulate(params(requests=None, duration_s=0.3, duration_grace_s=5,
                             session={"turns": 50, "think_time_s": 0.1}))
    assert result.stopped == "duration"
    sessions = by_session(result.records)
    assert sessions and all(len(records) < 50 for records in sessions.values())
    for records in sessions.values():
        assert [r.turn for r in records] == list(range(1, len(records) + 1))


def test_the_saturation_watch_looks_at_session_starts_only() -> None:
    """A later turn is no arrival: it must not count as one completed at the target rate."""
    watch = EarlyStop({"rate": 5}, 0.0)
    watch.observe(RequestRecord(index=1, ok=True, ttft_ms=1, e2e_ms=2, session=0, turn=2))
    assert not watch.answers
    watch.observe(RequestRecord(index=0, ok=True, ttft_ms=1, e2e_ms=2, session=0, turn=1))
    assert len(watch.answers) == 1


@pytest.mark.parametrize("line", [
    '{"messages": [{"role": "assistant", "content": "only the model speaks"}]}',
    '{"messages": [{"role": "system", "content": "no user"}, '
    '{"role": "assistant", "content": "x"}]}',
])
def test_a_session_line_without_a_user_message_is_refused_at_its_line(
        tmp_path: Path, line: str) -> None:
    # Seen: validate accepted it, and apply sent turn 1 with no message at all (its assistant
    # messages dropped): HTTP 400 "'messages' must be a non-empty list", the job failed.
    path = tmp_path / "talks.jsonl"
    path.write_text('{"prompt": "fine"}\n' + line + "\n")
    params = {"dataset": "talks.jsonl", "session": {"turns": 2}}
    with pytest.raises(InputError) as caught:
        prompt_source(params, str(tmp_path), {})
    assert caught.value.lines()[0].startswith(f"{path}:2: a session's conversation needs a "
                                              '"user" message')
    assert caught.value.exit_code == 2
    prompt_source({"dataset": "talks.jsonl"}, str(tmp_path), {})  # a plain job sends it as is
