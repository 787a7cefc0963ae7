from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli
from disk_helpers import read_only_view
from fakeclock import StepClock
from stored_runs import grid, store_run

from runner.errors import InputError
from runner.load.records import RequestRecord
from runner.results.runs import load_run, resolve_run, run_dirs
from runner.results.store import RunStore

JOBS = [{"id": f"chat/m{n}", "slug": f"chat_m{n}", "benchmark": "chat", "model": f"m{n}",
         "params": {"n": n}} for n in (1, 2, 3)]



def Clock() -> StepClock:
    return StepClock()


def new_run(results: Path, plan: str = "nightly", clock: StepClock | None = None) -> RunStore:
    manifest = {"plan": {"name": plan, "path": f"plans/{plan}.yaml", "sha256": "ab" * 32}}
    store = RunStore.create(str(results), plan, manifest, now=clock or Clock())
    store.set_jobs(JOBS)
    return store


def summary(job: dict[str, Any], status: str = "ok") -> dict[str, Any]:
    return {**job, "status": status, "metrics": {"error_rate": 0.0}}


@pytest.fixture
def runs(tmp_path: Path) -> list[str]:
    """Three finished runs of plan nightly, oldest first."""
    clock = Clock()
    dirs = []
    for _ in range(3):
        store = new_run(tmp_path / "results", clock=clock)
        store.finish("ok")
        dirs.append(store.run_dir)
    return dirs


def test_load_run_reads_summaries_in_manifest_order_and_skips_pending(tmp_path: Path) -> None:
    store = new_run(tmp_path / "results")
    store.write_job(summary(JOBS[2], "failed"))
    store.write_job(summary(JOBS[0]))
    with store.request_log("chat_m1") as log:
        log.write(RequestRecord(index=0, ttft_ms=5.0, ok=True))
    run = load_run(store.run_dir)
    assert [(j["id"], j["status"]) for j in run.jobs] == [("chat/m1", "ok"),
                                                          ("chat/m3", "failed")]
    assert run.run_id == store.run_id and run.plan_name == "nightly"
    assert run.run_dir == store.run_dir and run.manifest["status"] == "running"
    assert [r.ttft_ms for r in run.requests("chat_m1")] == [5.0]
    assert run.requests("chat_m3") == []


def test_load_run_errors(tmp_path: Path) -> None:
    store = new_run(tmp_path / "results")
    (Path(store.run_dir) / "jobs" / "chat_m2.json").write_text("{torn")
    with pytest.raises(InputError, match=r"chat_m2\.json: unreadable job summary"):
        load_run(store.run_dir)
    with pytest.raises(InputError, match="no run manifest"):
        load_run(str(tmp_path))


def test_run_dirs_oldest_first(runs: list[str], tmp_path: Path) -> None:
    results = str(tmp_path / "results")
    (tmp_path / "results" / "nightly" / "99999999T000000Z-junk").mkdir()  # no manifest
    assert run_dirs(results, "nightly") == runs
    assert run_dirs(results, "missing") == []


def test_resolve_a_path(runs: list[str], tmp_path: Path) -> None:
    assert resolve_run(runs[1], str(tmp_path / "elsewhere")) == runs[1]


def test_resolve_a_run_id(runs: list[str], tmp_path: Path) -> None:
    assert resolve_run(Path(runs[0]).name, str(tmp_path / "results")) == runs[0]


@pytest.mark.parametrize(("ref", "index"), [("latest", 2), ("previous", 1)])
def test_resolve_latest_and_previous(
    runs: list[str], tmp_path: Path, ref: str, index: int
) -> None:
    results = str(tmp_path / "results")
    assert resolve_run(ref, results, "nightly") == runs[index]
    assert resolve_run(ref, results) == runs[index]  # the only plan needs no --plan


def test_resolve_needs_plan_when_there_are_several(runs: list[str], tmp_path: Path) -> None:
    results = tmp_path / "results"
    other = new_run(results, "other")
    assert resolve_run("latest", str(results), "other") == other.run_dir
    with pytest.raises(InputError, match=r"'latest' needs --plan NAME \(plans under .*: "
                                         r"nightly, other\)"):
        resolve_run("latest", str(results))


def test_resolve_ambiguous_run_id(runs: list[str], tmp_path: Path) -> None:
    name = Path(runs[0]).name
    copy = tmp_path / "results" / "copy" / name
    shutil.copytree(runs[0], copy)
    with pytest.raises(InputError, match=f"run id '{name}' is ambiguous"):
        resolve_run(name, str(tmp_path / "results"))


@pytest.mark.parametrize(
    ("ref", "plan", "message"),
    [
        ("nope", None, "no run 'nope' under"),
        ("latest", "missing", "plan 'missing' has 0 stored run(s); 'latest' needs 1"),
    ],
)
def test_resolve_errors(runs: list[str], tmp_path: Path, ref: str, plan: str | None,
                        message: str) -> None:
    with pytest.raises(InputError) as info:
        resolve_run(ref, str(tmp_path / "results"), plan)
    assert message in str(info.value)


def test_previous_needs_two_runs(tmp_path: Path) -> None:
    results = tmp_path / "results"
    only = new_run(results)
    assert resolve_run("latest", str(results)) == only.run_dir
    with pytest.raises(InputError, match=r"has 1 stored run\(s\); 'previous' needs 2"):
        resolve_run("previous", str(results), "nightly")


@pytest.mark.parametrize("ref", ["latest", "previous", "20261125T010001Z-0eda"])
def test_no_stored_runs_says_so_as_history_does(tmp_path: Path, ref: str) -> None:
    with pytest.raises(InputError, match=r"no runs are stored yet under .*nothing/; run "
                                         r"`runner apply PLAN` first"):
        resolve_run(ref, str(tmp_path / "nothing"))


def test_a_plan_folder_is_not_a_run_and_its_runs_are_listed(tmp_path: Path) -> None:
    results = tmp_path / "results"
    clock = Clock()
    first, second = new_run(results, clock=clock), new_run(results, clock=clock)
    with pytest.raises(InputError) as info:
        resolve_run(str(results / "nightly"), str(results))
    message = str(info.value)
    assert "is a plan's folder, not a run; its runs: " in message
    assert os.path.basename(first.run_dir) in message and second.run_dir in message
    assert "`latest --plan nightly`" in message
    with pytest.raises(InputError, match="is a results folder, not a run; its plans: nightly"):
        resolve_run(str(results), str(results))


def test_commands_that_read_runs_work_on_a_read_only_results_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """history used to exit 70 there: SQLite's WAL mode wanted to create index.sqlite-shm."""
    tree = tmp_path / "results"
    older, newer = (store_run(tree, grid("latency", ["m"], [1, 2])) for _ in range(2))
    with read_only_view(tree, tmp_path / "ro") as ro:
        code, out, err = run_cli(capsys, "history", "--results", str(ro), "--format", "csv")
        assert code == 0, err
        assert out.count("latency/m/concurrency=") == 4
        for argv in (["report", "latest", "--plan", "nightly", "--format", "md"],
                     ["compare", "previous", "latest", "--plan", "nightly"]):
            code, out, err = run_cli(capsys, *argv, "--results", str(ro))
            assert code == 0 and out and not err, (argv, err)
        code, _, err = run_cli(capsys, "report", str(ro / "nightly"), "--results", str(ro))
        assert code == 2 and os.path.basename(newer) in err and os.path.basename(older) in err
        code, _, err = run_cli(capsys, "report", "latest", "--plan", "nightly", "--results",
                               str(ro), "-o", str(ro / "r.html"))
        assert code == 2 and "r.html: cannot write the report (Read-only file system)" in err


def test_runs_started_within_one_second_are_ordered_by_when_they_were_written(
    tmp_path: Path,
) -> None:
    from runner.results.runs import resolve_run, run_dirs

    # Seen in CI: two applies in one second; `latest` took the one whose random suffix sorted
    # last, the older run, and `compare previous latest` compared them the wrong way round.
    plan = tmp_path / "p"
    for name, written_s in (("20261201T082415Z-ffff", 1_000), ("20261201T082415Z-0000", 2_000),
                            ("20261201T082414Z-9999", 3_000)):
        (plan / name).mkdir(parents=True)
        (plan / name / "manifest.json").write_text("{}")
        os.utime(plan / name / "manifest.json", (written_s, written_s))
    assert [os.path.basename(d) for d in run_dirs(str(tmp_path), "p")] == [
        "20261201T082414Z-9999", "20261201T082415Z-ffff", "20261201T082415Z-0000"]
    assert resolve_run("latest", str(tmp_path), "p").endswith("20261201T082415Z-0000")
    assert resolve_run("previous", str(tmp_path), "p").endswith("20261201T082415Z-ffff")
