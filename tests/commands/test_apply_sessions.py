"""Multi-turn sessions through the CLI (workload.session, issue 14 §2), against the simulator:
`plan` counts sessions x turns, `apply` stores each request's session and turn and the job's
by_turn summary, the report shows TTFT by turn, `compare` compares the first and last turns'
TTFT, and `validate` refuses a session on the completions endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from apply_helpers import jsonl_lines, run_dirs
from cli_helpers import run_cli

from runner.errors import EXIT_INVALID, EXIT_OK
from runner.report.render import render_report
from runner.schema import load_schema

PLAN = """\
version: 1
name: talk
inventory: {server: sim, fallback: false}
benchmarks:
  - name: chat
    models: all
    workload:
      synthetic: {input_tokens: 16}
      max_tokens: 8
      session: {turns: 3, user_tokens: 4}
    load: {concurrency: 2, requests: 4, warmup_requests: 1}
"""
SERVERS = "servers:\n  sim: {kind: mock, models: [m1], ttft_ms: 2, itl_ms: 1}\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "servers.yaml").write_text(SERVERS)
    (tmp_path / "talk.yaml").write_text(PLAN)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sessions_run_store_report_and_compare(project: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "plan", "talk.yaml")
    assert code == EXIT_OK, err
    assert "4 sessions x 3 turns = 12 requests" in out and "12 requests (+1 warm-up)" in out
    code, _, err = run_cli(capsys, "apply", "talk.yaml", "--results", "results")
    assert code == EXIT_OK, err
    [run] = run_dirs(project / "results", "talk")
    [summary_file] = (run / "jobs").glob("*[!s].json")
    job = json.loads(summary_file.read_text())
    jsonschema.validate(job, load_schema("result"))
    by_turn = job["metrics"]["by_turn"]
    assert [t["requests"] for t in by_turn["turns"]] == [4, 4, 4]
    prompts = [t["prompt_tokens"]["p50"] for t in by_turn["turns"]]
    assert prompts[0] < prompts[1] < prompts[2]  # each turn: + the answer and 4 new words
    assert by_turn["sessions"] == {"count": 4, "ended_by_failure": 0, "ended_by_cancel": 0,
                                   "max_turn": 3}
    records = jsonl_lines(next((run / "jobs").glob("*.requests.jsonl")))
    measured = [r for r in records if not r["warmup"]]
    assert sorted((r["session"], r["turn"]) for r in measured) == \
        [(s, t) for s in range(4) for t in (1, 2, 3)]
    assert "session" not in next(r for r in records if r["warmup"])
    html = render_report(str(run), "html")
    assert "TTFT by turn" in html and 'class="by-turn"' in html
    assert "by turn: TTFT p50 " in render_report(str(run), "md")
    code, text, err = run_cli(capsys, "compare", str(run), str(run), "--metric",
                              "turn_ttft_first_p50,turn_ttft_last_p50", "--format", "json")
    assert code == EXIT_OK, err
    rows = json.loads(text)["jobs"][0]["rows"]
    assert [row["base"] for row in rows] == [by_turn["ttft_p50"]["first"],
                                             by_turn["ttft_p50"]["last"]]


def test_validate_refuses_a_session_off_the_chat_endpoint(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "talk.yaml").write_text(PLAN.replace("max_tokens: 8", "max_tokens: 8\n"
                                                    "      endpoint: completions"))
    code, out, err = run_cli(capsys, "validate", "talk.yaml")
    err += out
    assert code == EXIT_INVALID
    assert "talk.yaml:11:7: workload.session needs endpoint chat" in err
    assert "Traceback" not in err
    (project / "talk.yaml").write_text(PLAN.replace("turns: 3", "turns: 1"))
    code, out, err = run_cli(capsys, "validate", "talk.yaml")
    err += out
    assert code == EXIT_INVALID and "talk.yaml:10:24: must be at least 2" in err
