"""SIGINT/SIGTERM at any moment of a real `runner apply` process: exit 130, no traceback, the
manifest `interrupted`, finished jobs intact, the in-flight job `interrupted`, and `--resume`
completes the run. A cancelled CI job sends SIGINT, then SIGTERM a few seconds later."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import apply_process, manifest, requests_sent, run_dirs, simulator, wait_for
from cli_helpers import run_cli

from runner.errors import EXIT_GATE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK

# Two jobs of one round each: 32 streams of `tokens` tokens at 25 ms. LONG (1.5 s) where a
# second signal 1 s after the first must still find the requests in their grace period, SHORT
# (0.6 s) elsewhere, to keep the time down.
PLAN = """\
version: 1
name: p
inventory: {{server: sim, fallback: false}}
benchmarks:
  - name: b
    models: all
    workload: {{synthetic: {{input_tokens: 16}}, max_tokens: {tokens}}}
    load: {{concurrency: 32, requests: 32, request_timeout_s: 20}}
    matrix: {{max_tokens: [{tokens}, {more}]}}
"""
LONG, SHORT = 60, 24
REQUESTS = 32
INT, TERM = signal.SIGINT, signal.SIGTERM


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    """One simulator for the module: these tests run one apply at a time."""
    with simulator("--models", "m1", "--itl-ms", "25") as (url, _):
        yield url


@contextmanager
def setup(tmp_path: Path, url: str, tokens: int = SHORT) -> Iterator[dict[str, str]]:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {url}\n    timeout_s: 5\n")
    (tmp_path / "p.yaml").write_text(PLAN.format(tokens=tokens, more=tokens + 1))
    yield {"RUNNER_CONFIG_DIR": str(configs)}


def start(tmp_path: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return apply_process("p.yaml", "--results", "results", "--no-report", "--no-probe", *extra,
                         cwd=tmp_path, env=env)


def apply_here(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`runner apply p.yaml` in-process, from `tmp_path`, with `env` set."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return run_cli(capsys, "apply", "p.yaml", "--results", "results")


def the_run(tmp_path: Path) -> Path | None:
    found = run_dirs(tmp_path / "results", "p")
    return found[0] if found and (found[0] / "manifest.json").exists() else None


def job_files(tmp_path: Path, pattern: str) -> list[Path]:
    run = the_run(tmp_path)
    return sorted((run / "jobs").glob(pattern)) if run else []


def catches_sigterm(proc: subprocess.Popen[str]) -> bool:
    """runner's own handler is in place (it starts as the process's first statement)."""
    status = Path(f"/proc/{proc.pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:"))
                 .split()[1], 16)
    return bool(caught & (1 << (TERM - 1)))


def started(tmp_path: Path, proc: subprocess.Popen[str]) -> bool:
    return proc.poll() is None and catches_sigterm(proc)


def run_dir_made(tmp_path: Path, proc: subprocess.Popen[str]) -> bool:
    return the_run(tmp_path) is not None


def first_job_sending(tmp_path: Path, proc: subprocess.Popen[str]) -> bool:
    """The simulator has received the first job's requests (their answers take 0.6 s or more)."""
    url, before = BASELINE[tmp_path]
    return requests_sent(url) > before


def first_job_written(tmp_path: Path, proc: subprocess.Popen[str]) -> bool:
    return bool(job_files(tmp_path, "*.json"))


BASELINE: dict[Path, tuple[str, int]] = {}  # per test: the simulator, its count before apply
MOMENTS: dict[str, Callable[[Path, subprocess.Popen[str]], bool]] = {
    "starting up": started,
    "run directory made": run_dir_made,
    "first job sending": first_job_sending,
    "first job's summary written": first_job_written,
}


def interrupt(tmp_path: Path, url: str, env: dict[str, str], moment: str,
              signals: tuple[Any, ...]) -> tuple[int, str, str]:
    """Start apply, wait for `moment`, send `signals` (signal, pause, signal, ...)."""
    BASELINE[tmp_path] = (url, requests_sent(url))
    proc = start(tmp_path, env)
    try:
        wait_for(lambda: MOMENTS[moment](tmp_path, proc) or proc.poll() is not None,
                 timeout_s=60, what=moment)
        for item in signals:
            if isinstance(item, float):
                time.sleep(item)
            elif proc.poll() is None:
                proc.send_signal(item)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def check_interrupted(tmp_path: Path, code: int, err: str) -> dict[str, Any] | None:
    """Exit 130, no traceback; the manifest (if a run was made) interrupted, every job either
    complete with its summary, interrupted with its summary, or pending."""
    assert code == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "CancelledError" not in err, err
    run = the_run(tmp_path)
    if run is None:
        return None
    data = manifest(run)
    assert data["status"] == "interrupted", data["status"]
    for job in data["jobs"]:
        summary_file = run / "jobs" / f"{job['slug']}.json"
        if job["status"] == "pending":
            assert not summary_file.exists()
            continue
        summary = json.loads(summary_file.read_text())
        assert job["status"] == summary["status"] in ("ok", "interrupted")
        if summary["status"] == "ok":
            assert summary["metrics"]["requests"]["ok"] == REQUESTS
    return data


def resume_completes(tmp_path: Path, env: dict[str, str]) -> None:
    run = the_run(tmp_path)
    assert run is not None
    before = manifest(run)
    done = {j["slug"]: (run / "jobs" / f"{j['slug']}.requests.jsonl").read_text()
            for j in before["jobs"] if j["status"] == "ok"}
    proc = start(tmp_path, env, "--resume", str(run))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_OK, err
    assert out.count("(resumed)") == len(done)
    after = manifest(run)
    assert after["status"] == "ok"
    assert [j["status"] for j in after["jobs"]] == ["ok"] * 2
    for slug, text in done.items():  # finished jobs were neither rerun nor touched
        assert (run / "jobs" / f"{slug}.requests.jsonl").read_text() == text
    for job in after["jobs"]:
        lines = (run / "jobs" / f"{job['slug']}.requests.jsonl").read_text().splitlines()
        assert sorted(json.loads(line)["index"] for line in lines) == list(range(REQUESTS))


@pytest.mark.parametrize(("signals", "resume", "tokens"), [
    ((INT, 0.05, INT), True, SHORT), ((INT, 0.2, INT), False, LONG),
    ((INT, 1.0, INT), False, LONG), ((TERM, 0.3, TERM), True, SHORT),
], ids=["int-0.05-int", "int-0.2-int", "int-1-int", "term-0.3-term"])
def test_signals_while_a_job_runs_interrupt_it_and_resume_completes_the_run(
    tmp_path: Path, sim_url: str, signals: tuple[Any, ...], resume: bool, tokens: int
) -> None:
    with setup(tmp_path, sim_url, tokens) as env:
        code, out, err = interrupt(tmp_path, sim_url, env, "first job sending", signals)
        data = check_interrupted(tmp_path, code, err)
        assert data is not None
        assert [j["status"] for j in data["jobs"]] == ["interrupted", "pending"]
        summary = json.loads((the_run(tmp_path) / "jobs"  # type: ignore[operator]
                              / f"{data['jobs'][0]['slug']}.json").read_text())
        assert summary["stopped"] == "interrupted" and summary["finished_at"]
        assert "RECAP" in out and "interrupted=1 pending=1" in out
        if resume:  # the same state in every case: resumed in two, to keep the time down
            resume_completes(tmp_path, env)


@pytest.mark.parametrize(("moment", "signals"), [
    ("starting up", (INT, 0.05, TERM)),
    ("run directory made", (INT, 0.05, TERM)),
    ("first job's summary written", (INT,)),
], ids=["starting-up", "run-dir-made", "between-jobs"])
def test_signals_at_any_moment_end_cleanly_with_exit_130(
    tmp_path: Path, sim_url: str, moment: str, signals: tuple[Any, ...]
) -> None:
    with setup(tmp_path, sim_url) as env:
        code, _, err = interrupt(tmp_path, sim_url, env, moment, signals)
        data = check_interrupted(tmp_path, code, err)
        if data is not None:
            statuses = [j["status"] for j in data["jobs"]]
            assert "pending" in statuses or "interrupted" in statuses
            resume_completes(tmp_path, env)


def signal_self(signum: int, times: int = 1) -> None:
    """A real signal to this process, handled before this returns: raise_signal delivers it to
    the calling thread (os.kill may hand it to another thread, and the main thread then runs
    the handler a few bytecodes later, which under load let the code after the signal run)."""
    for _ in range(times):
        signal.raise_signal(signum)


def test_a_signal_while_a_summary_is_written_keeps_it_and_stops_the_run(
    tmp_path: Path, sim_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from runner.results.store import RunStore

    write_job = RunStore.write_job

    def interrupted_write(self: RunStore, summary: Any) -> None:
        signal_self(INT)  # arrives in the middle of writing: SIGINT, then SIGTERM
        signal_self(TERM)
        write_job(self, summary)

    monkeypatch.setattr(RunStore, "write_job", interrupted_write)
    with setup(tmp_path, sim_url) as env:
        code, out, err = apply_here(tmp_path, env, monkeypatch, capsys)
        data = check_interrupted(tmp_path, code, err)
        assert data is not None
        assert "jobs: ok=1 slo_missed=0 failed=0 skipped=0 interrupted=0 pending=1" in out
        assert [j["status"] for j in data["jobs"]] == ["ok", "pending"]
        monkeypatch.setattr(RunStore, "write_job", write_job)
        resume_completes(tmp_path, env)


def test_a_signal_while_the_report_is_written_marks_the_run_interrupted(
    tmp_path: Path, sim_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import runner.report.render as render

    write_reports = render.write_reports

    def interrupted_reports(run_dir: str) -> list[str]:
        signal_self(INT)
        signal_self(TERM)
        return write_reports(run_dir)

    monkeypatch.setattr(render, "write_reports", interrupted_reports)
    with setup(tmp_path, sim_url) as env:
        code, out, err = apply_here(tmp_path, env, monkeypatch, capsys)
        data = check_interrupted(tmp_path, code, err)
        assert data is not None and [j["status"] for j in data["jobs"]] == ["ok"] * 2
        assert out.splitlines()[-1].startswith("resume with: runner apply p.yaml --resume ")
        monkeypatch.setattr(render, "write_reports", write_reports)
        code, out, err = run_cli(capsys, "apply", "p.yaml", "--results", "results",
                                 "--resume", str(the_run(tmp_path)))
        assert code == EXIT_OK, err
        assert out.count("(resumed)") == 2
        run = the_run(tmp_path)
        assert run is not None and manifest(run)["status"] == "ok"
        assert (run / "report.html").exists()


def test_a_signal_before_any_run_directory_exists_is_exit_130_without_a_traceback(
    tmp_path: Path, sim_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import runner.commands.apply as apply

    def interrupted_prompts(prepared: Any) -> Any:
        signal_self(TERM)
        signal_self(INT)
        raise AssertionError("the first signal raises KeyboardInterrupt before this line")

    monkeypatch.setattr(apply, "prompt_sources", interrupted_prompts)
    before = signal.getsignal(INT)  # default_int_handler, or SIG_IGN in a background job
    with setup(tmp_path, sim_url) as env:
        code, out, err = apply_here(tmp_path, env, monkeypatch, capsys)
    assert code == EXIT_INTERRUPTED and err.strip().endswith("interrupted"), err
    assert "RECAP" not in out
    assert the_run(tmp_path) is None
    assert signal.getsignal(INT) is before  # main put back the handler it found


def test_a_reader_that_goes_away_never_turns_the_outcome_green(
    tmp_path: Path, sim_url: str
) -> None:
    """A cancelled CI job's log reader is gone: progress and RECAP meet closed pipes, and the
    run still ends as decided (here: a missed SLO with --gate is exit 4, never 0)."""
    with setup(tmp_path, sim_url) as env:
        plan = tmp_path / "p.yaml"
        plan.write_text(plan.read_text() + "    slo: {ttft_ms: {p50: 0.001}}\n")
        proc = start(tmp_path, env, "--gate")
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
        assert proc.wait(60) == EXIT_GATE
    run = the_run(tmp_path)
    assert run is not None and manifest(run)["status"] == "ok"
    assert [j["status"] for j in manifest(run)["jobs"]] == ["ok", "ok"]


EMBEDDED = """\
servers:
  sim: {kind: mock, models: [m1], ttft_ms: 20, itl_ms: 25, output_tokens: 64}
"""


def test_ctrl_c_to_the_process_group_leaves_the_embedded_simulator_serving_the_grace(
    tmp_path: Path,
) -> None:
    """Ctrl-C in a terminal signals the whole group, the runner's simulator child too: the
    requests in flight still finish in their grace period instead of failing to connect."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(EMBEDDED)
    (tmp_path / "p.yaml").write_text(PLAN.format(tokens=LONG, more=LONG + 1))
    argv = [sys.executable, "-m", "runner", "apply", "p.yaml", "--no-report"]
    proc = subprocess.Popen(argv, cwd=tmp_path, start_new_session=True, text=True,
                            env={**os.environ, "RUNNER_CONFIG_DIR": str(configs)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: proc.poll() is not None or bool(job_files(tmp_path, "*.requests.jsonl")),
                 what="the first job")
        time.sleep(0.3)  # its requests are on their way; they take 1.5 s
        os.killpg(proc.pid, INT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    data = check_interrupted(tmp_path, proc.returncode, err)
    assert data is not None and data["jobs"][0]["status"] == "interrupted"
    run = the_run(tmp_path)
    assert run is not None
    summary = json.loads((run / "jobs" / f"{data['jobs'][0]['slug']}.json").read_text())
    assert summary["metrics"]["requests"]["ok"] >= 1
    assert "connection" not in summary["metrics"]["errors"]


def test_a_crash_mid_run_leaves_the_run_interrupted_and_resumable(
    tmp_path: Path, sim_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import runner.load.loadgen as loadgen

    run_load = loadgen.run_load
    calls = 0

    async def crashing_second_job(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("a bug")
        return await run_load(*args, **kwargs)

    monkeypatch.setattr(loadgen, "run_load", crashing_second_job)
    with setup(tmp_path, sim_url) as env:
        code, _, err = apply_here(tmp_path, env, monkeypatch, capsys)
        assert code == EXIT_INTERNAL and "internal error: RuntimeError: a bug" in err
        run = the_run(tmp_path)
        assert run is not None and manifest(run)["status"] == "interrupted"  # not "running"
        assert [j["status"] for j in manifest(run)["jobs"]] == ["ok", "pending"]
        monkeypatch.setattr(loadgen, "run_load", run_load)
        resume_completes(tmp_path, env)
