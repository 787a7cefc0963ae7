"""`runner validate` and `runner plan` of trace replays (issue 14 §5): a bad trace or a replay
set up wrong is one line with its place and exit 2; `plan` shows what the trace will send and
holds its longest request against the model's limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_configs, write_plan

from runner.errors import EXIT_INVALID, EXIT_OK

TRACE = """\
{"timestamp_ms": 1000, "input_tokens": 20, "output_tokens": 5}
{"timestamp_ms": 1500, "prompt": "hello there"}
{"timestamp_ms": 3000, "input_tokens": 90}
"""


def plan(workload: str, load: str, extra: str = "") -> str:
    return ("version: 1\nname: t\nbenchmarks:\n  - name: b\n    models: all\n"
            f"    workload: {workload}\n    load: {load}\n{extra}")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_url: str) -> Path:
    write_configs(tmp_path / "configs", dead_url)
    (tmp_path / "configs" / "models.yaml").write_text(
        "models:\n  - {id: small, mode: chat, max_input_tokens: 100}\n  - {id: big, mode: chat}\n")
    (tmp_path / "t.jsonl").write_text(TRACE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    return tmp_path


@pytest.mark.parametrize(("trace", "line"), [
    ('{"timestamp_ms": 1, "input_tokens": 4}\n{"timestamp_ms": 2, "input_tokens": -4}\n',
     "bad.jsonl:2: input_tokens: expected a whole number of tokens from 1 to 10,000,000, got -4"),
    ('{"timestamp_ms": 9, "input_tokens": 4}\n{"timestamp_ms": 2, "input_tokens": 4}\n',
     "bad.jsonl:2: timestamp_ms 2 is before line 1's 9: a trace lists requests in send order; "
     "sort it (e.g. jq -c -s 'sort_by(.timestamp_ms)[]')"),
    ('{"timestamp_ms": 1, "output_tokens": 4}\n',
     'bad.jsonl:1: expected one of "prompt", "messages" (the text) or "input_tokens" '
     "(synthetic words), got none"),
    ("", "bad.jsonl: the trace has no requests; add one JSON object per line (runner format: "
         "README, Trace replay)"),
])
def test_a_bad_trace_is_one_line_from_validate_and_plan(
        project: Path, capsys: pytest.CaptureFixture[str], trace: str, line: str) -> None:
    (project / "bad.jsonl").write_text(trace)
    write_plan(project, plan("{trace: bad.jsonl}", "{replay: {speed: 1}}"), "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "p.yaml")
    assert (code, out.splitlines()) == (EXIT_INVALID, [line])
    code, _, err = run_cli(capsys, "plan", "p.yaml")
    assert code == EXIT_INVALID and "Traceback" not in err
    assert line.split(" (at ")[0] in err


@pytest.mark.parametrize(("workload", "load", "says"), [
    ("{trace: t.jsonl}", "{concurrency: 2}",
     "6:23: workload.trace is replayed at its own times: add load: {replay: {speed: 1.0}}"),
    ("{synthetic: {input_tokens: 8}}", "{replay: {speed: 1}}",
     "7:20: load.replay replays a trace: set workload.trace (and trace_format), or use "
     "concurrency or rate"),
    ("{trace: t.jsonl}", "{replay: {speed: 1}, rate: 3}",
     "7:32: rate has no meaning beside replay, which sends each request at the trace's own "
     "time: remove rate (max_concurrency may cap a replay), or replace replay with "
     "concurrency or rate"),
    ("{trace: t.jsonl}", "{replay: {speed: 1}, arrival: constant}",
     "7:32: arrival has no meaning beside replay"),
    ("{trace: t.jsonl}", "{replay: {speed: 1}, ramp_up: {duration_s: 5}}",
     "7:32: ramp_up has no meaning beside replay"),
    ("{trace: t.jsonl}", "{replay: {speed: 1}, concurrency: 4}",
     "7:32: concurrency has no meaning beside replay"),
    ("{trace: t.jsonl}", "{replay: {speed: 1}, sweep: {rates: 3}}",
     "7:32: sweep has no meaning beside replay"),
    # validate took it and apply crashed (internal error: load.replay needs workload.trace)
    ("{trace: t.jsonl, session: {turns: 3}}", "{replay: {speed: 1}}",
     "6:32: workload.session runs conversations of its own prompts, and a trace replays single "
     "requests at their recorded times: remove session, or give the conversations as "
     "workload.dataset"),
    ("{trace: t.jsonl}", "{replay: {speed: 0}}", "must be greater than 0, got 0"),
    ("{trace: t.jsonl}", "{replay: {sped: 2}}", "unknown key 'sped'"),
    ("{trace: t.jsonl, dataset: t.jsonl}", "{replay: {}}",
     "give only one prompt source: synthetic, dataset, template or trace"),
    ("{synthetic: {input_tokens: 8}, trace_format: mooncake}", "{concurrency: 1}",
     "trace_format says how workload.trace is written: set trace beside it"),
    ("{trace: t.jsonl, trace_format: csv}", "{replay: {}}", "csv"),
    ("{trace: nope.jsonl}", "{replay: {}}", "p.yaml:6:23: trace file not found: nope.jsonl"),
    ("{trace: t.jsonl, trace_format: mooncake}", "{replay: {}}",
     "t.jsonl:1: timestamp: expected the request's send time"),
])
def test_a_replay_set_up_wrong_is_refused_in_place(
        project: Path, capsys: pytest.CaptureFixture[str], workload: str, load: str,
        says: str) -> None:
    write_plan(project, plan(workload, load), "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "p.yaml")
    assert code == EXIT_INVALID
    assert says in out and "Traceback" not in out, out


def test_a_matrix_may_replay_one_trace_at_several_speeds(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_plan(project, plan("{trace: t.jsonl, max_tokens: 8}", "{max_concurrency: 4}",
                             "    matrix: {replay: [{speed: 1}, {speed: 4}]}\n"), "p.yaml")
    assert run_cli(capsys, "validate", "p.yaml")[:2] == (EXIT_OK, "ok: p.yaml\n")
    code, out, err = run_cli(capsys, "plan", "p.yaml", "--limit", "big")
    assert code == EXIT_OK, err
    assert ("replay t.jsonl (runner) at speed 4: 3 requests over 0.5 s (2 s recorded), "
            "110 input tokens (+1 text prompt), at most 21 output tokens (at most 4 in flight)"
            in out)
    assert "replay t.jsonl (runner) at speed 1: 3 requests over 2 s, 110 input" in out
    assert "TOTAL: 1 benchmark (0 skipped), 1 model, 2 jobs, 2 traces replayed to the end" in out


def test_the_longest_trace_request_is_held_against_the_model_limit(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_plan(project, plan("{trace: t.jsonl, max_tokens: 8}", "{replay: {speed: 1}}"), "p.yaml")
    code, _, err = run_cli(capsys, "plan", "p.yaml")
    assert code == EXIT_OK, err
    assert ("model small takes less than asked (trace line 3: input_tokens 90 + max_tokens 8 = "
            "98" not in err)  # 98 fits in 100
    (project / "t.jsonl").write_text(TRACE.replace('"input_tokens": 90', '"input_tokens": 95'))
    code, out, err = run_cli(capsys, "plan", "p.yaml")
    assert code == EXIT_OK, err
    assert ("model small takes less than asked (trace line 3: input_tokens 95 + max_tokens 8 = "
            "103 > max_input_tokens 100, as the inventory says)") in out + err


def test_defaults_may_hold_a_trace_format_and_a_load_that_benchmarks_replace(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_plan(project, "version: 1\nname: t\ndefaults:\n"
               "  workload: {synthetic: {input_tokens: 8}, trace_format: runner}\n"
               "  load: {concurrency: 2, requests: 3}\nbenchmarks:\n"
               "  - {name: replayed, models: all, workload: {trace: t.jsonl},\n"
               "     load: {replay: {speed: 2}}}\n"
               "  - {name: closed, models: all, workload: {synthetic: {input_tokens: 4}}}\n",
               "p.yaml")
    assert run_cli(capsys, "validate", "p.yaml")[:2] == (EXIT_OK, "ok: p.yaml\n")
    code, out, err = run_cli(capsys, "plan", "p.yaml", "--limit", "big")
    assert code == EXIT_OK, err
    assert "replay t.jsonl (runner) at speed 2: 3 requests over 1 s (2 s recorded), 110 input " \
           "tokens (+1 text prompt), at most 517 output tokens, 3 requests" in out
    assert "closed/big  concurrency 2, 3 requests" in out


def test_each_format_of_a_matrix_reads_the_trace_its_way(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_plan(project, plan("{trace: t.jsonl}", "{replay: {}}",
                             "    matrix: {trace_format: [runner, mooncake]}\n"), "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "p.yaml")
    assert (code, out) == (EXIT_INVALID, "t.jsonl:1: timestamp: expected the request's send time "
                                         "in milliseconds (a number at least 0), got nothing\n")
    code, _, err = run_cli(capsys, "plan", "p.yaml", "--limit", "big")
    assert code == EXIT_INVALID and "t.jsonl:1: timestamp: expected" in err


def test_plan_json_has_each_replays_trace_figures_and_its_sending_time(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # t.jsonl: 3 lines over 2 s as recorded; input lengths 20 and 90 (one text prompt); output
    # lengths 5, then the plan's max_tokens 8 twice
    write_plan(project, plan("{trace: t.jsonl, max_tokens: 8}", "{max_concurrency: 4}",
                             "    matrix: {replay: [{speed: 1}, {speed: 4}]}\n"), "p.yaml")
    code, out, err = run_cli(capsys, "plan", "p.yaml", "--limit", "big", "--json")
    assert code == EXIT_OK, err
    view = json.loads(out)
    figures = [job["replay"] for job in view["jobs"]]
    assert figures == [
        {"trace": "t.jsonl", "format": "runner", "speed": speed, "requests": 3,
         "recorded_s": 2.0, "duration_s": 2.0 / speed, "sending_s": 2.0 / speed,
         "input_tokens_mean": 55.0, "text_prompts": 1, "output_tokens_mean": 7.0}
        for speed in (1.0, 4.0)]
    # the replays' time is in the totals now: 2 s + 0.5 s
    assert view["totals"]["sending_s"] == pytest.approx(2.5)
    assert view["totals"]["latency_bound_jobs"] == 0
    code, text, _ = run_cli(capsys, "plan", "p.yaml", "--limit", "big")
    assert "2 traces replayed to the end; sending takes 3 s" in text
    # the lock holds the plan view: it stays valid, and apply reads its jobs as before
    code, _, err = run_cli(capsys, "plan", "p.yaml", "--limit", "big", "--out", "p.lock.json")
    assert code == EXIT_OK, err
    assert run_cli(capsys, "validate", "p.lock.json")[0] == EXIT_OK


def test_a_replay_cut_by_requests_or_duration_sends_for_less_time(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_plan(project, plan("{trace: t.jsonl, max_tokens: 8}", "{replay: {speed: 1}}",
                             "    matrix: {include: [{requests: 2}, {duration_s: 1}]}\n"),
               "p.yaml")
    code, out, err = run_cli(capsys, "plan", "p.yaml", "--limit", "big", "--json")
    assert code == EXIT_OK, err
    view = json.loads(out)
    # 2 requests: the second line is sent at 0.5 s; duration_s 1 stops sending at 1 s
    assert [job["replay"]["sending_s"] for job in view["jobs"]] == [0.5, 1.0]
    assert view["totals"]["sending_s"] == pytest.approx(1.5)


@pytest.mark.parametrize("axis", ["concurrency: [1, 2]", "rate: [1, 2]"])
def test_a_matrix_load_mode_beside_a_replay_says_it_replaces_the_replay(
        project: Path, capsys: pytest.CaptureFixture[str], axis: str) -> None:
    write_plan(project, plan("{trace: t.jsonl}", "{replay: {speed: 1}}",
                             f"    matrix: {{{axis}}}\n"), "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "p.yaml")
    mode = axis.split(":")[0]
    assert code == EXIT_INVALID
    assert out.startswith(f"p.yaml:8:13: a matrix point sets {mode}, which replaces "
                          "load.replay, and a trace is sent at its own times: remove "
                          f"{mode} from the matrix"), out
    assert len(out.splitlines()) == 1
