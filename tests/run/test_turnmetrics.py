"""The by-turn summary of a session job (workload.session): per turn index, and how sessions
ended."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from runner.load.records import RequestRecord
from runner.run.metrics import Expectation, summarize


def record(session: int, turn: int, ttft: float, prompt: int, ok: bool = True,
           kind: str | None = None) -> RequestRecord:
    return RequestRecord(index=session * 3 + turn - 1, ttft_ms=ttft, e2e_ms=ttft + 40,
                         prompt_tokens=prompt, output_tokens=5, content_chunks=5, ok=ok,
                         error_kind=None if ok else kind, session=session, turn=turn)


def test_by_turn_gives_each_turn_its_distributions_and_how_sessions_ended() -> None:
    records = [record(0, 1, 100, 10), record(0, 2, 30, 25), record(0, 3, 32, 40),
               record(1, 1, 120, 10), record(1, 2, 0, 0, ok=False, kind="http"),
               record(2, 1, 110, 10), record(2, 2, 0, 0, ok=False, kind="cancelled")]
    found = summarize(records)["by_turn"]
    assert found["sessions"] == {"count": 3, "ended_by_failure": 1, "ended_by_cancel": 1,
                                 "max_turn": 3}
    assert [(t["turn"], t["requests"], t["ok"], t["failed"], t["cancelled"])
            for t in found["turns"]] == [(1, 3, 3, 0, 0), (2, 3, 1, 1, 1), (3, 1, 1, 0, 0)]
    assert found["turns"][0]["ttft_ms"]["p50"] == 110
    assert found["turns"][1]["prompt_tokens"]["max"] == 25
    assert found["ttft_p50"] == {"first": 110, "last": 32, "last_turn": 3,
                                 "last_over_first": 32 / 110}
    schema = json.loads((Path(__file__).parents[2] / "schemas/result.schema.json").read_text())
    metrics = {"$ref": "#/$defs/metrics", "$defs": schema["$defs"]}
    jsonschema.Draft202012Validator(metrics).validate(summarize(records))
    request = {"$ref": "#/$defs/request", "$defs": schema["$defs"]}
    jsonschema.Draft202012Validator(request).validate(records[1].to_json())


def test_prompt_lengths_against_the_target_count_turn_1_only() -> None:
    """The later turns hold the conversation: their prompts are not the synthetic target's
    (a session job was flagged prompts_off_target for them)."""
    records = [record(0, 1, 100, 10), record(0, 2, 30, 90), record(0, 3, 32, 170)]
    found = summarize(records, expect=Expectation(input_tokens=10))["lengths"]["input"]
    assert found["achieved_mean"] == 10 and found["ratio"] == 1


def test_a_job_without_sessions_has_no_by_turn() -> None:
    assert summarize([RequestRecord(index=0, ttft_ms=5, e2e_ms=9, ok=True)])["by_turn"] is None
