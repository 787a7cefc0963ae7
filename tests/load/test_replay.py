"""Replaying a trace (issue 14 §5) against a scripted server that keeps every request body and
its arrival time: requests go at the trace's offsets / speed, in the trace's order, with the
trace's prompts (Mooncake's shared hash ids as shared text) and output lengths."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from scripted_server import Script, scripted_server
from sse_streams import DONE, ROLE, chunk, text, usage_chunk

from runner.load.loadgen import LoadResult, Target, run_load
from runner.load.replay import TracePrompts
from runner.load.replay import job_prompts as prompt_source
from runner.load.workload import RequestBodies
from runner.run.metrics import summarize
from runner.run.replaymetrics import replay_figures

ANSWER = [(0, ROLE), (5, text("tok ")), (10, chunk(finish="stop")),
          (11, usage_chunk(completion_tokens=1)), (12, DONE)]
LAG_BOUND_MS = 1000.0  # a send this late would be a broken schedule, not a busy machine


def _job(tmp_path: Path, lines: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return {"endpoint": "chat", "trace": "t.jsonl", "max_tokens": 16, "temperature": 0,
            "seed": 0, "stream": True, "warmup_requests": 0, "request_timeout_s": 20,
            "replay": {"speed": 1.0}, **params}


def _run(script: Script, job: dict[str, Any], folder: Path) -> LoadResult:
    prompts = prompt_source(job, str(folder), {})
    with scripted_server(script) as url:
        return asyncio.run(run_load(Target(url, {}, "m"), job, prompts))


def _content(body: dict[str, Any]) -> str:
    return str(body["messages"][0]["content"])


def test_requests_go_at_the_trace_offsets_over_the_speed_in_its_order(tmp_path: Path) -> None:
    stamps = [5000, 5040, 5200, 5210, 5600, 6000]
    lines = [{"timestamp_ms": t, "prompt": f"request {i}"} for i, t in enumerate(stamps)]
    job = _job(tmp_path, lines, replay={"speed": 2})
    script = Script(ANSWER)
    result = _run(script, job, tmp_path)
    records = result.records
    assert [r.ok for r in records] == [True] * 6
    assert [r.scheduled_ms for r in records] == [(t - 5000) / 2 for t in stamps]
    lags = [r.sent_ms - (r.scheduled_ms or 0) for r in records]
    assert all(0 <= lag < LAG_BOUND_MS for lag in lags), lags
    by_send = sorted(records, key=lambda r: r.sent_ms)
    assert [r.index for r in by_send] == list(range(6))  # sent in the trace's order
    # The server received each request's own prompt, whatever the order of arrival.
    assert sorted(map(_content, script.received)) == [f"request {i}" for i in range(6)]
    summary = summarize(records, health=result.health,
                        replay=replay_figures(job, prompt_source(job, str(tmp_path), {})))
    assert summary["replay"] == {"speed": 2.0, "format": "runner", "trace_requests": 6,
                                 "trace_duration_s": 1.0, "replay_duration_s": 0.5, "sent": 6,
                                 "cut_short": None}
    assert summary["client"]["scheduling_lag_ms"]["count"] == 6


def test_requests_and_warmups_cut_a_replay_short(tmp_path: Path) -> None:
    lines = [{"timestamp_ms": 10 * i, "input_tokens": 3, "output_tokens": 2 + i}
             for i in range(5)]
    job = _job(tmp_path, lines, requests=2, warmup_requests=1)
    script = Script(ANSWER)
    result = _run(script, job, tmp_path)
    measured = [r for r in result.records if not r.warmup]
    assert len(measured) == 2 and len(result.records) == 3
    assert [r.scheduled_ms for r in measured] == [0.0, 10.0]
    # Each line's output length is its request's max_tokens, over the plan's 16.
    assert sorted(b["max_tokens"] for b in script.received) == [2, 2, 3]
    [warm] = [b for b in script.received if _content(b).startswith("(warm-up")]
    summary = summarize(result.records,
                        replay=replay_figures(job, prompt_source(job, str(tmp_path), {})))
    assert summary["replay"]["sent"] == 2
    assert summary["replay"]["cut_short"].startswith("2 of 5 trace requests sent")
    assert warm["max_tokens"] == 2


def test_mooncake_shared_hash_ids_send_identical_prefixes(tmp_path: Path) -> None:
    lines = [{"timestamp": 0, "input_length": 1300, "output_length": 4, "hash_ids": [1, 2, 3]},
             {"timestamp": 20, "input_length": 1200, "output_length": 5, "hash_ids": [1, 2, 9]},
             {"timestamp": 40, "input_length": 700, "output_length": 6, "hash_ids": [7, 2]},
             {"timestamp": 60, "input_length": 900, "output_length": 7, "hash_ids": [1]}]
    job = _job(tmp_path, lines, trace_format="mooncake")
    script = Script(ANSWER)
    _run(script, job, tmp_path)
    bodies = {b["max_tokens"]: _content(b).split(" ") for b in script.received}
    first, second, third, fourth = (bodies[n] for n in (4, 5, 6, 7))
    assert [len(w) for w in (first, second, third, fourth)] == [1300, 1200, 700, 900]
    assert first[:1024] == second[:1024] and first[1024:1030] != second[1024:1030]
    assert third[512:700] == first[512:700]  # block 2 at the same place, after another block
    assert third[:20] != first[:20]
    assert fourth[:512] == first[:512] and fourth[512:520] != first[512:520]  # its own tail


def test_the_salt_changes_mooncake_blocks_but_keeps_them_shared(tmp_path: Path) -> None:
    lines = [{"timestamp": 0, "input_length": 600, "output_length": 4, "hash_ids": [1, 2]},
             {"timestamp": 1, "input_length": 512, "output_length": 4, "hash_ids": [1]}]
    job = _job(tmp_path, lines, trace_format="mooncake")
    plain = prompt_source(job, str(tmp_path), {})
    salted = plain.salted("job=x;run=y")
    assert isinstance(salted, TracePrompts)
    a, b = (_content(salted.prompt(i)) for i in (0, 1))
    assert a.startswith(b) and a != _content(plain.prompt(0))


def test_a_runner_line_of_input_tokens_gets_that_many_synthetic_words(tmp_path: Path) -> None:
    job = _job(tmp_path, [{"timestamp_ms": 0, "input_tokens": 40},
                          {"timestamp_ms": 1, "prompt": "as written"}], endpoint="completions")
    bodies = RequestBodies(job, "m", prompt_source(job, str(tmp_path), {}))
    first, second = (json.loads(bodies.get(i)) for i in (0, 1))
    assert len(first["prompt"].split(" ")) == 40 and first["max_tokens"] == 16
    assert second["prompt"] == "as written"


def test_duration_s_ends_a_replay_before_a_late_line(tmp_path: Path) -> None:
    lines = [{"timestamp_ms": t, "prompt": f"p{t}"} for t in (0, 50, 60_000)]
    job = _job(tmp_path, lines, duration_s=0.5, duration_grace_s=5)
    script = Script(ANSWER)
    result = _run(script, job, tmp_path)
    assert result.stopped == "duration"
    assert [r.scheduled_ms for r in result.records] == [0.0, 50.0]
    summary = summarize(result.records,
                        replay=replay_figures(job, prompt_source(job, str(tmp_path), {})))
    assert summary["replay"]["cut_short"].startswith("2 of 3 trace requests sent")
    assert summary["replay"]["trace_duration_s"] == 60.0
