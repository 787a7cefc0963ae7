"""`apply --resume RUN` runs only what belongs to RUN: its own plan, the jobs it recorded."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import manifest, run_dirs, simulator
from cli_helpers import run_cli

from runner.errors import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_INVENTORY, EXIT_OK

PLAN = """\
version: 1
name: {name}
inventory: {{server: sim, fallback: false}}
vars: {{tokens: 4}}
benchmarks:
  - name: {bench}
    models: all
    workload: {{synthetic: {{input_tokens: 8}}, max_tokens: "{{{{ tokens }}}}"}}
    load: {{concurrency: 2, requests: 4}}
"""
MODELS = ["Qwen/a", "Qwen/b", "other/c"]


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with simulator("--models", ",".join(MODELS), "--itl-ms", "2", "--ttft-ms", "5") as (url, _):
        yield url


@pytest.fixture
def work(tmp_path: Path, sim_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(f"servers:\n  sim:\n    url: {sim_url}\n")
    for name in ("hosted", "nightly"):
        (tmp_path / f"{name}.yaml").write_text(PLAN.format(name=name, bench=name[0]))
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def apply(capsys: pytest.CaptureFixture[str], plan: str, *extra: str) -> tuple[int, str, str]:
    return run_cli(capsys, "apply", plan, "--results", "results", "--no-report", *extra)


def interrupted_run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                    plan: str = "hosted.yaml") -> Path:
    """A run whose first job is done and the others not: a real SIGINT as it is written."""
    from runner.results.store import RunStore

    write_job = RunStore.write_job

    def write_then_interrupt(self: RunStore, summary: Any) -> None:
        write_job(self, summary)
        signal.raise_signal(signal.SIGINT)  # handled before write_job returns

    with monkeypatch.context() as patch:
        patch.setattr(RunStore, "write_job", write_then_interrupt)
        code, _, err = apply(capsys, plan)
    assert code == EXIT_INTERRUPTED, err
    [run] = run_dirs(Path("results"), plan.removesuffix(".yaml"))
    statuses = [j["status"] for j in manifest(run)["jobs"]]
    assert statuses[0] == "ok" and "ok" not in statuses[1:], statuses
    return run


def index_jobs(run: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(Path("results") / "index.sqlite") as db:
        rows = db.execute("SELECT job_id, status FROM jobs WHERE run_id = ? ORDER BY job_id",
                          (run.name,)).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def test_resume_refuses_a_run_of_another_plan_even_with_force(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = interrupted_run(capsys, monkeypatch)
    before, rows = (run / "manifest.json").read_text(), index_jobs(run)
    for extra in ([], ["--force"]):
        code, out, err = apply(capsys, "nightly.yaml", "--resume", str(run), *extra)
        assert code == EXIT_INVALID and not out, err
        assert err == (f"error: {run} is a run of plan 'hosted', not of plan 'nightly' "
                       "(nightly.yaml); resume it with its own plan (hosted.yaml); --force "
                       "cannot change this: a run directory belongs to one plan "
                       "(results/hosted/)\n")
    assert (run / "manifest.json").read_text() == before and index_jobs(run) == rows
    assert run_dirs(work / "results", "nightly") == []
    code, out, _ = run_cli(capsys, "history", "--plan", "hosted", "--results", "results",
                           "--format", "json")
    assert code == EXIT_OK
    assert [s["job_id"] for s in json.loads(out)["series"]] == ["h/Qwen/a"]  # no nightly rows


def test_resume_refuses_an_edited_plan_unless_forced(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = interrupted_run(capsys, monkeypatch)
    plan = work / "hosted.yaml"
    plan.write_text(plan.read_text() + "# edited\n")
    code, _, err = apply(capsys, "hosted.yaml", "--resume", str(run))
    assert code == EXIT_INVALID, err
    assert f"error: hosted.yaml changed since run {run} started (sha256 " in err
    assert "pass --force" in err and manifest(run)["status"] == "interrupted"
    code, _, err = apply(capsys, "hosted.yaml", "--resume", str(run), "--force")
    assert code == EXIT_OK, err
    assert "WARNING: --force:" in err and manifest(run)["status"] == "ok"


def test_a_narrower_resume_runs_only_those_and_keeps_every_job_in_the_record(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = interrupted_run(capsys, monkeypatch)
    undone = manifest(run)["jobs"][1]["status"]
    code, out, err = apply(capsys, "hosted.yaml", "--resume", str(run), "--limit", "other/*")
    assert code == EXIT_OK, err
    data = manifest(run)
    assert [(j["model"], j["status"]) for j in data["jobs"]] == [
        ("Qwen/a", "ok"), ("Qwen/b", undone), ("other/c", "ok")]
    assert data["status"] == "partial"
    assert f"NOTE: run {run} is partial: 1 of its 3 jobs have not run" in err
    assert index_jobs(run) == [("h/Qwen/a", "ok"), ("h/Qwen/b", undone), ("h/other/c", "ok")]
    [note] = data["resumes"]
    assert (note["limit"], note["inventory"]["source"]) == ("other/*", "live")
    assert "jobs: ok=1 slo_missed=0 failed=0" in out and "Qwen/b" not in out

    code, out, err = apply(capsys, "hosted.yaml", "--resume", str(run))
    assert code == EXIT_OK, err
    assert manifest(run)["status"] == "ok" and out.count("(resumed)") == 2
    assert [j["status"] for j in manifest(run)["jobs"]] == ["ok"] * 3


def test_resume_never_adds_jobs_the_run_did_not_plan(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = apply(capsys, "hosted.yaml", "--limit", "Qwen/a")
    assert code == EXIT_OK, err
    [run] = run_dirs(work / "results", "hosted")
    code, out, err = apply(capsys, "hosted.yaml", "--resume", str(run))
    assert code == EXIT_OK, err
    assert (f"WARNING: 2 selected job(s) are not part of run {run} and are not run "
            "(e.g. h/Qwen/b); start a new run for them") in err
    assert [j["model"] for j in manifest(run)["jobs"]] == ["Qwen/a"]
    assert manifest(run)["status"] == "ok" and "(resumed)" in out


def test_a_resume_that_selects_no_job_of_the_run_is_exit_3_and_changes_nothing(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = apply(capsys, "hosted.yaml", "--limit", "Qwen/a")
    assert code == EXIT_OK, err
    [run] = run_dirs(work / "results", "hosted")
    before = (run / "manifest.json").read_text()
    code, out, err = apply(capsys, "hosted.yaml", "--resume", str(run), "--limit", "other/c")
    assert code == EXIT_INVENTORY and "RECAP" not in out
    assert err == (f"error: none of the 1 selected job(s) belong to run {run} (e.g. "
                   "h/other/c): resume it with the server, --limit and --tags it ran with, or "
                   "start a new run\n")
    assert (run / "manifest.json").read_text() == before


def test_resume_with_other_parameters_is_refused_unless_forced(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = interrupted_run(capsys, monkeypatch)
    code, _, err = apply(capsys, "hosted.yaml", "--resume", str(run), "-e", "tokens=5")
    assert code == EXIT_INVALID, err
    assert ("job h/Qwen/b was recorded with other parameters than the plan gives now "
            "(max_tokens: 4 -> 5; 2 job(s) differ)") in err
    code, _, err = apply(capsys, "hosted.yaml", "--resume", str(run), "-e", "tokens=5",
                         "--force")
    assert code == EXIT_OK, err
    params = [j["params"]["max_tokens"] for j in manifest(run)["jobs"]]
    assert params == [4, 5, 5]  # the finished job keeps what it ran with
