"""The key's limits (`GET /key/info`) against the plan: `plan --probe` warns, `apply` refuses
unless --force. /key/info needs a database-backed LiteLLM proxy, which the tests cannot start:
a small fake server answers /v1/models, /key/info (in LiteLLM 1.106.2's shape, see
runner/run/keylimits.py) and chat completions instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import manifest, run_dirs
from cli_helpers import run_cli
from served import serving_http

from runner.errors import EXIT_INVALID, EXIT_INVENTORY, EXIT_OK
from runner.inventory.config import Server
from runner.load.trace import Trace, TraceRequest
from runner.plan.expand import Job
from runner.run.keylimits import Demand, KeyLimits, exceeded, fetch_key_limits, job_demand

KEY = "sk-fake-key-9d1e"
CHUNKS = [{"choices": [{"index": 0, "delta": {"content": "OK"}}]},
          {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 1}}]


class _Fake(BaseHTTPRequestHandler):
    key_info: tuple[int, Any]
    chats: list[str]

    def log_message(self, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        if self.path.startswith("/key/info"):
            assert self.headers.get("Authorization") == f"Bearer {KEY}"
            self._json(*self.key_info)
        else:
            self._json(200, {"object": "list", "data": [{"id": "m", "object": "model"},
                                                        {"id": "gone", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.chats.append(str(body.get("model")))
        if body.get("model") == "gone":
            self._json(404, {"error": {"message": "The model `gone` does not exist."}})
            return
        data = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in CHUNKS)
        data += b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, value: Any) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _serve(key_info: tuple[int, Any]) -> Iterator[tuple[str, list[str]]]:
    chats: list[str] = []
    handler = type("Handler", (_Fake,), {"key_info": key_info, "chats": chats})
    with serving_http(handler) as url:
        yield url, chats


LIMITED = (200, {"key": "hashed", "info": {"rpm_limit": 30, "tpm_limit": None,
                                           "max_budget": 10.0, "spend": 1.5, "models": []}})


@pytest.fixture
def limited() -> Iterator[tuple[str, list[str]]]:
    yield from _serve(LIMITED)


PLAN = """\
version: 1
name: limited
inventory: {server: fake, fallback: false}
benchmarks:
  - name: open
    models: m
    workload: {synthetic: {input_tokens: 8}, max_tokens: 4}
    load: {rate: 1, requests: 3}
"""


def _workspace(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        f"servers:\n  fake:\n    url: {url}\n    api_key_env: FAKE_KEY\n")
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.setenv("FAKE_KEY", KEY)
    plan = tmp_path / "limited.yaml"
    plan.write_text(PLAN)
    return plan


def test_plan_warns_and_apply_refuses_a_plan_over_the_rpm_limit(
    limited: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _workspace(tmp_path, limited[0], monkeypatch)
    code, out, err = run_cli(capsys, "plan", str(plan), "--probe")
    assert code == EXIT_OK, err
    assert "key limits: rpm_limit 30, max_budget 10, spend 1.5" in out
    assert ("WARNING: server 'fake': job open/m asks about 60 rpm (rate 1/s), above the key's "
            "rpm_limit 30") in err
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(results))
    assert code == EXIT_INVALID
    assert "above the key's rpm_limit 30" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    assert not results.exists()
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(results), "--force",
                             "--no-report")
    assert code == EXIT_OK, out + err
    [run] = run_dirs(results, "limited")
    found = manifest(run)
    assert found["key_limits"]["fake"]["rpm_limit"] == 30
    assert found["probe"]["m"]["status"] == "ok"


def test_a_lock_planned_with_the_probe_holds_only_the_usable_jobs(
    limited: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _workspace(tmp_path, limited[0], monkeypatch)
    plan.write_text(PLAN.replace("models: m", "models: all").replace("rate: 1", "rate: 0.1"))
    lock = tmp_path / "lock.json"
    code, _, err = run_cli(capsys, "plan", str(plan), "--probe", "--out", str(lock))
    assert code == EXIT_OK, err
    assert [job["model"] for job in json.loads(lock.read_text())["jobs"]] == ["m"]
    code, _, err = run_cli(capsys, "validate", str(lock))
    assert code == EXIT_OK, err


def test_a_lock_is_probed_when_applied(
    limited: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _workspace(tmp_path, limited[0], monkeypatch)
    plan.write_text(PLAN.replace("models: m", "models: all").replace("rate: 1", "rate: 0.45"))
    lock = tmp_path / "lock.json"
    code, _, err = run_cli(capsys, "plan", str(plan), "--out", str(lock))  # no probe: 2 jobs
    assert code == EXIT_OK, err
    assert len(json.loads(lock.read_text())["jobs"]) == 2
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", str(lock), "--results", str(results),
                             "--no-report")
    assert code == EXIT_OK, out + err
    assert "probe: gone [chat] dropped, not_found" in err
    [run] = run_dirs(results, "limited")
    found = manifest(run)
    assert [job["model"] for job in found["jobs"]] == ["m"]
    assert found["probe"]["gone"]["status"] == "not_found"


def test_every_model_dropped_is_exit_3_with_the_reasons(
    limited: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _workspace(tmp_path, limited[0], monkeypatch)
    plan.write_text(PLAN.replace("models: m", "models: gone"))
    for command in ("plan", "apply"):
        extra = ["--probe"] if command == "plan" else ["--results", str(tmp_path / "r")]
        code, _, err = run_cli(capsys, command, str(plan), *extra)
        assert code == EXIT_INVENTORY
        assert ("the probe dropped every selected model, nothing left to run: gone: not_found "
                "(HTTP 404: The model `gone` does not exist.; the server does not serve") in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("answer", "reason"), [
    ((404, {"detail": "Not Found"}), "GET /key/info answered HTTP 404"),
    ((401, {"error": {"message": "bad key"}}), "GET /key/info answered HTTP 401"),
    ((200, {"key": "x"}), "GET /key/info answered without an `info` object"),
    ((200, ["not", "an", "object"]), "GET /key/info answered without an `info` object"),
])
def test_key_info_unavailable_skips_the_check(answer: tuple[int, Any], reason: str) -> None:
    for url, _ in _serve(answer):
        limits = fetch_key_limits(Server("fake", url, api_key_env="FAKE_KEY"), {"FAKE_KEY": KEY})
        assert limits.unknown == reason
        assert limits.text() == f"key limits unknown ({reason})"
        assert exceeded(limits, [Demand("j", 1e9, 1e12, "rate")]) == []


def _job(**params: Any) -> Job:
    return Job(id="b/m", slug="b-m", benchmark="b", model="m", point={},
               params={"input_tokens": 100, "max_tokens": 50, **params})


def test_job_demand() -> None:
    open_loop = job_demand(_job(rate=2), None)
    assert open_loop == Demand("b/m", 120.0, 120.0 * 150, "rate 2/s")
    # Closed loop: 4 slots, 10 ms per token x 50 tokens = 0.5 s a request: 480 requests/min.
    closed = job_demand(_job(concurrency=4), 0.01)
    assert closed is not None and closed.rpm == pytest.approx(480.0)
    assert closed.tpm == pytest.approx(480.0 * 150)
    assert job_demand(_job(concurrency=4), None) is None  # no probe latency: no estimate


def test_exceeded_names_the_limit_and_the_figures() -> None:
    limits = KeyLimits("p", rpm_limit=100, tpm_limit=10_000, max_budget=5.0, spend=5.0)
    lines = exceeded(limits, [Demand("a", 60.0, 9_000.0, "rate 1/s"),
                              Demand("b", 50.0, 12_000.0, "concurrency 1")])
    assert lines == [
        "server 'p': the key has spent its budget (spend 5 of max_budget 5)",
        "server 'p': job b asks about 12000 tpm (concurrency 1), above the key's tpm_limit "
        "10000: it would measure 429s, not the model"]


def _trace(offsets_ms: list[float], input_tokens: int = 10, output_tokens: int = 5) -> Trace:
    return Trace("t.jsonl", "runner", tuple(
        TraceRequest(offset, n, input_tokens=input_tokens, output_tokens=output_tokens)
        for n, offset in enumerate(offsets_ms, 1)))


def test_a_replays_demand_is_its_traces_busiest_minute_at_its_speed() -> None:
    # 10 requests in the first 9 s, then 5 more a minute and more later
    trace = _trace([i * 1000.0 for i in range(10)] + [70_000.0 + i * 1000 for i in range(5)])
    once = job_demand(_job(replay={"speed": 1}, trace="t.jsonl"), None, trace)
    assert once == Demand("b/m", 10.0, 10.0 * 15,
                          "the trace's busiest minute at speed 1 (trace lines 1-10)")
    # at speed 10 the whole trace (7.4 s) falls in one minute: 15 requests
    fast = job_demand(_job(replay={"speed": 10}, trace="t.jsonl"), None, trace)
    assert fast is not None and (fast.rpm, fast.tpm) == (15.0, 15.0 * 15)
    # requests: 4 sends only the first 4 lines; a line without an output length counts
    # max_tokens (50), a text prompt its words
    cut = job_demand(_job(replay={}, trace="t.jsonl", requests=4), None, trace)
    assert cut is not None and cut.rpm == 4.0
    texts = Trace("t.jsonl", "runner", (TraceRequest(0, 1, prompt={"prompt": "a b c"}),))
    text = job_demand(_job(replay={}, trace="t.jsonl"), None, texts)
    assert text is not None and (text.rpm, text.tpm) == (1.0, 3.0 + 50)


def test_plan_warns_of_a_replay_over_the_rpm_limit(
    limited: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = _workspace(tmp_path, limited[0], monkeypatch)
    (tmp_path / "t.jsonl").write_text("".join(
        f'{{"timestamp_ms": {i * 250}, "input_tokens": 8, "output_tokens": 2}}\n'
        for i in range(40)))  # 40 requests over 10 s: 40 in a minute, above rpm_limit 30
    plan.write_text(PLAN.replace("{synthetic: {input_tokens: 8}, max_tokens: 4}",
                                 "{trace: t.jsonl, max_tokens: 4}")
                    .replace("{rate: 1, requests: 3}", "{replay: {speed: 1}}"))
    code, out, err = run_cli(capsys, "plan", str(plan), "--probe")
    assert code == EXIT_OK, err
    assert ("WARNING: server 'fake': job open/m asks about 40 rpm (the trace's busiest minute "
            "at speed 1 (trace lines 1-40)), above the key's rpm_limit 30") in err
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "apply", str(plan), "--results", str(results))
    assert code == EXIT_INVALID and "above the key's rpm_limit 30" in err, out + err
    plan.write_text(plan.read_text().replace("speed: 1", "speed: 0.25"))  # 39 s: still 40
    code, out, err = run_cli(capsys, "plan", str(plan), "--probe")
    assert "rpm_limit 30" in err
    plan.write_text(plan.read_text().replace("speed: 0.25", "speed: 0.1"))  # 100 s: 24 a minute
    code, out, err = run_cli(capsys, "plan", str(plan), "--probe")
    assert code == EXIT_OK and "WARNING" not in err, err
