"""Several servers in one plan (issue 15 §3): two embedded simulators with different models,
resolved each against its own inventory, run side by side, locked and drift-checked together."""

from __future__ import annotations

import json
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from apply_helpers import manifest, run_dirs
from cli_helpers import run_cli, run_json

from runner.errors import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_INVENTORY, EXIT_OK, EXIT_STALE

SERVERS = """\
servers:
  eu:
    kind: mock
    models: [Qwen/Qwen3-8B, shared/model]
    ttft_ms: {ttft}
    itl_ms: 3
    output_tokens: 16
  us:
    kind: mock
    models: [{us_models}]
    ttft_ms: {ttft}
    itl_ms: 3
    output_tokens: 16
  down:
    url: http://127.0.0.1:9
    timeout_s: 2
"""
MODELS = """\
models:
  - {id: Qwen/Qwen3-8B, servers: [eu]}
  - {id: shared/model}
  - {id: down/model, servers: [down]}
"""
PLAN = """\
version: 1
name: two
inventory:
  servers: [{servers}]
defaults:
  workload: {{synthetic: {{input_tokens: 16}}, max_tokens: 16}}
  load: {{concurrency: 2, requests: {requests}}}
benchmarks:
  - name: chat
    models: "Qwen/*,shared/*"
  - name: us-only
    server: us
    models: all
"""


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir()
    write_servers(tmp_path)
    (configs / "models.yaml").write_text(MODELS)
    write_plan(tmp_path)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_servers(folder: Path, us_models: str = "meta-llama/Llama-3.1-8B, shared/model",
                  ttft: int = 20) -> None:
    (folder / "configs" / "servers.yaml").write_text(
        SERVERS.format(us_models=us_models, ttft=ttft))


def write_plan(folder: Path, servers: str = "eu, us", requests: int = 4) -> None:
    (folder / "plan.yaml").write_text(PLAN.format(servers=servers, requests=requests))


def apply(capsys: pytest.CaptureFixture[str], plan: str, *extra: str) -> tuple[int, str, str]:
    return run_cli(capsys, "apply", plan, "--results", "results", "--no-probe", *extra)


EU_IDS = ["eu:chat/Qwen/Qwen3-8B", "eu:chat/shared/model"]
US_IDS = ["us:chat/shared/model", "us:us-only/meta-llama/Llama-3.1-8B",
          "us:us-only/shared/model"]


def test_plan_resolves_every_benchmark_against_each_servers_inventory(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "plan", "plan.yaml")
    assert code == EXIT_OK, err
    eu, us = out.index("\nserver: eu\n"), out.index("\nserver: us\n")
    assert eu < out.index("eu:chat/Qwen/Qwen3-8B") < us < out.index("us:us-only/shared/model")
    assert "inventory: live from server 'eu'" in out and "inventory: live from server 'us'" in out
    # a term that matches nothing on one server warns, naming that server
    assert "WARNING: on server 'us': pattern term 'Qwen/*' matched no model" in out
    # a benchmark counts once however many servers run it; a model once per server
    assert "TOTAL: 2 benchmarks (0 skipped), 4 models, 5 jobs, 20 requests" in out
    code, data, err = run_json(capsys, "plan", "plan.yaml", "--json")
    assert code == EXIT_OK, err
    assert [j["id"] for j in data["jobs"]] == EU_IDS + US_IDS
    assert {j["server"] for j in data["jobs"][:2]} == {"eu"}
    assert [(i["server"], i["source"]) for i in data["inventories"]] == [
        ("eu", "live"), ("us", "live")]
    assert len({j["slug"] for j in data["jobs"]}) == 5
    assert all(j["slug"].startswith(j["server"] + "_") for j in data["jobs"])


def test_a_plan_of_one_named_server_keeps_todays_ids(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(work, servers="us")
    code, data, err = run_json(capsys, "plan", "plan.yaml", "--json")
    assert code == EXIT_OK, err
    assert [j["id"] for j in data["jobs"]] == [
        "chat/shared/model", "us-only/meta-llama/Llama-3.1-8B", "us-only/shared/model"]
    assert "inventories" not in data and "server" not in data["jobs"][0]


def test_server_picks_one_of_the_plans_servers_and_keeps_its_ids(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, err = run_json(capsys, "plan", "plan.yaml", "--json", "--server", "us")
    assert code == EXIT_OK, err
    assert [j["id"] for j in data["jobs"]] == US_IDS
    code, _, err = run_cli(capsys, "plan", "plan.yaml", "--server", "use")
    assert code == EXIT_INVALID
    assert "--server 'use' is not one of the plan's servers (did you mean 'us'?)" in err


@pytest.mark.parametrize(("plan", "message"), [
    ("inventory: {servers: [eu, uss]}", "4:27: server 'uss' (from the plan's inventory.servers) "
                                        "is not defined in {path} (did you mean 'us'?)"),
    ("inventory: {server: eu, servers: [us]}", "4:25: `server` and `servers` are exclusive"),
    ("benchmarks:\n  - {name: a, models: all, servers: [eux]}",
     "5:38: server 'eux' (from benchmark 'a') is not defined in {path} (did you mean 'eu'?)"),
])
def test_server_names_are_checked_where_they_are_written(
    work: Path, capsys: pytest.CaptureFixture[str], plan: str, message: str
) -> None:
    body = "version: 1\nname: bad\n\n" + plan + "\n"
    if "benchmarks" not in plan:
        body += "benchmarks:\n  - {name: a, models: all}\n"
    (work / "bad.yaml").write_text(body)
    code, _, err = run_cli(capsys, "plan", "bad.yaml")
    assert code == EXIT_INVALID
    assert f"bad.yaml:{message.format(path=work / 'configs' / 'servers.yaml')}" in err
    assert "Traceback" not in err


def _window(job: dict[str, Any]) -> tuple[datetime, datetime]:
    def at(text: str) -> datetime:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return at(job["started_at"]), at(job["finished_at"])


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_two_servers_run_side_by_side_and_one_servers_jobs_never_overlap(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(work, requests=12)  # 6 rounds of ~70 ms: each job lasts about 0.4 s
    code, out, err = apply(capsys, "plan.yaml", "--forks", "2")
    assert code == EXIT_OK, err
    [run] = run_dirs(Path("results"), "two")
    jobs = {p.name: json.loads(p.read_text()) for p in (run / "jobs").glob("*.json")}
    by_id = {j["id"]: j for j in jobs.values()}
    assert sorted(by_id) == sorted(EU_IDS + US_IDS)
    assert all(name.startswith(j["server"]["name"] + "_") for name, j in jobs.items())
    windows = {i: _window(j) for i, j in by_id.items()}
    assert _overlap(windows[EU_IDS[0]], windows[US_IDS[0]])  # both servers' first jobs
    for ids in (EU_IDS, US_IDS):
        assert not any(_overlap(windows[a], windows[b]) for a in ids for b in ids if a < b)
    data = manifest(run)
    assert [(i["server"], i["source"], len(i["models"])) for i in data["inventories"]] == [
        ("eu", "live", 2), ("us", "live", 2)]
    assert out.index("\nserver: eu\n") < out.index("\nserver: us\n")
    assert "inventory: live from server 'eu'" in out and "inventory: live from server 'us'" in out
    code, md, err = run_cli(capsys, "report", str(run), "--format", "md")
    assert code == EXIT_OK, err
    assert md.index("#### eu · chat") < md.index("#### us · chat") < md.index("#### us · us-only")
    assert "inventory: live from eu, live from us" in md
    html = (run / "report.html").read_text()
    assert html.index("eu · chat") < html.index("us · chat") < html.index("us · us-only")


def test_history_keeps_two_servers_of_one_model_apart(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = apply(capsys, "plan.yaml", "--no-report")
    assert code == EXIT_OK, err
    code, data, err = run_json(capsys, "history", "--results", "results", "--format", "json")
    assert code == EXIT_OK, err
    shared = [s["job_id"] for s in data["series"] if s["model"] == "shared/model"]
    assert sorted(shared) == ["eu:chat/shared/model", "us:chat/shared/model",
                              "us:us-only/shared/model"]


def test_a_lock_covers_both_servers_and_drift_on_one_is_exit_5(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "plan", "plan.yaml", "--out", "lock.json")
    assert code == EXIT_OK, err
    lock = json.loads((work / "lock.json").read_text())
    assert [(s["name"], len(s["inventory_snapshot"]["models"])) for s in lock["servers"]] == [
        ("eu", 2), ("us", 2)]
    code, _, err = apply(capsys, "lock.json", "--no-report")
    assert code == EXIT_OK, err
    [run] = run_dirs(Path("results"), "two")
    assert sorted(j["id"] for j in manifest(run)["jobs"]) == sorted(EU_IDS + US_IDS)
    write_servers(work, us_models="meta-llama/Llama-3.1-8B")  # us stops serving shared/model
    code, _, err = apply(capsys, "lock.json", "--no-report")
    assert code == EXIT_STALE
    assert "locked models no longer served: shared/model on server 'us'" in err
    code, _, err = apply(capsys, "lock.json", "--no-report", "--allow-drift")
    assert code == EXIT_OK, err
    newest = max(run_dirs(Path("results"), "two"), key=lambda p: p.name)
    ran = [j["id"] for j in manifest(newest)["jobs"]]
    assert "eu:chat/shared/model" in ran and "us:chat/shared/model" not in ran


def test_an_unreachable_server_falls_back_alone_with_a_warning_naming_it(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(work, servers="eu, down")
    (work / "plan.yaml").write_text((work / "plan.yaml").read_text().replace(
        "server: us", "server: eu"))
    code, data, err = run_json(capsys, "plan", "plan.yaml", "--json")
    assert code == EXIT_OK, err
    assert [(i["server"], i["source"]) for i in data["inventories"]] == [
        ("eu", "live"), ("down", "fallback")]
    assert "WARNING: inventory from the fallback file" in err and "server 'down'" in err
    assert "server 'eu'" not in err
    assert [j["id"] for j in data["jobs"] if j["server"] == "down"] == ["down:chat/shared/model"]


def test_resume_runs_the_rest_of_a_two_server_run(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.results.store import RunStore

    write_job = RunStore.write_job

    def write_then_interrupt(self: RunStore, summary: Any) -> None:
        write_job(self, summary)
        signal.raise_signal(signal.SIGINT)

    with monkeypatch.context() as patch:
        patch.setattr(RunStore, "write_job", write_then_interrupt)
        code, _, err = apply(capsys, "plan.yaml", "--no-report")
    assert code == EXIT_INTERRUPTED, err
    [run] = run_dirs(Path("results"), "two")
    assert [j["status"] for j in manifest(run)["jobs"]].count("ok") == 1
    code, out, err = apply(capsys, "plan.yaml", "--no-report", "--resume", str(run))
    assert code == EXIT_OK, err
    assert [j["status"] for j in manifest(run)["jobs"]] == ["ok"] * 5
    assert out.count("(resumed)") == 1


def test_compare_never_pairs_one_servers_job_with_anothers(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for server in ("eu", "us"):
        code, _, err = apply(capsys, "plan.yaml", "--no-report", "--server", server)
        assert code == EXIT_OK, err
    code, out, err = run_cli(capsys, "compare", "previous", "latest", "--plan", "two",
                             "--results", "results", "--allow-missing", "--format", "json")
    assert code == EXIT_OK, err
    data = json.loads(out)
    assert data["jobs"] == []  # shared/model of eu and of us: two series, never one pair
    assert data["only_in_base"] == EU_IDS and data["only_in_new"] == US_IDS


def test_validate_checks_the_servers_a_plan_names(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "bad.yaml").write_text((work / "plan.yaml").read_text().replace(
        "server: us", "servers: [us, eu, usa]"))
    code, out, _ = run_cli(capsys, "validate", "plan.yaml", "bad.yaml")
    assert code == EXIT_INVALID
    assert "ok: plan.yaml" in out
    assert "bad.yaml:12:23: server 'usa' (from benchmark 'us-only') is not defined in " in out
    assert "(did you mean 'us'?)" in out


def test_a_limit_or_a_benchmark_that_matches_nothing_on_one_server_names_it(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "plan", "plan.yaml", "--limit", "meta-llama/*")
    assert code == EXIT_OK, err
    assert "--limit 'meta-llama/*' matches no model of server 'eu': none of its jobs run" in out
    assert "us:us-only/meta-llama/Llama-3.1-8B" in out and "eu:chat" not in out
    code, _, err = run_cli(capsys, "plan", "plan.yaml", "--limit", "nothing/*")
    assert (code, err.count("\n")) == (EXIT_INVENTORY, 1), err
    assert "--limit 'nothing/*' matches no model on any of the plan's servers" in err
    (work / "plan.yaml").write_text((work / "plan.yaml").read_text().replace(
        '"Qwen/*,shared/*"', "Qwen/*"))
    code, _, err = run_cli(capsys, "plan", "plan.yaml")
    assert code == EXIT_INVENTORY
    assert "error: plan.yaml:10:13: server 'us': benchmark 'chat' matches no model" in err


def test_a_capacity_search_on_two_servers_keeps_each_servers_trials_apart(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "cap.yaml").write_text("""\
version: 1
name: cap
inventory: {servers: [eu, us]}
benchmarks:
  - name: knee
    models: shared/model
    workload: {synthetic: {input_tokens: 16}, max_tokens: 8}
    load: {search: {over: concurrency, from: 1, to: 2}, requests: 4}
    slo: {ttft_ms: {p95: 10000}}
""")
    code, out, err = apply(capsys, "cap.yaml", "--no-report", "--forks", "2")
    assert code == EXIT_OK, err
    [run] = run_dirs(Path("results"), "cap")
    data = manifest(run)
    trials = [j["id"] for j in data["jobs"]]
    # each server's search starts at 1 stream (a trial judged invalid on a busy machine ends
    # its search there): never a trial without its server, never one file for two servers
    for server in ("eu", "us"):
        assert f"{server}:knee/shared/model/concurrency=1" in trials
    assert all(t.split(":")[0] in ("eu", "us") for t in trials)
    assert {j["search"] for j in data["jobs"]} == {"eu:knee/shared/model",
                                                    "us:knee/shared/model"}
    assert len(list((run / "jobs").glob("*.requests.jsonl"))) == len(trials)
    assert sorted(r["id"] for r in data["capacity"]) == ["eu:knee/shared/model",
                                                         "us:knee/shared/model"]
    assert "[eu:knee]" in out and "[us:knee]" in out


def test_a_lock_of_one_server_of_several_runs_with_its_ids(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "plan", "plan.yaml", "--server", "us", "--out", "us.json")
    assert code == EXIT_OK, err
    assert "servers" not in json.loads((work / "us.json").read_text())
    code, _, err = apply(capsys, "us.json", "--no-report")
    assert code == EXIT_OK, err
    [run] = run_dirs(Path("results"), "two")
    assert [j["id"] for j in manifest(run)["jobs"]] == US_IDS


def test_each_servers_metrics_are_scraped_from_that_server(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    servers = work / "configs" / "servers.yaml"
    servers.write_text(servers.read_text().replace(
        "    output_tokens: 16\n",
        "    output_tokens: 16\n    metrics_url: true\n    prefix_cache_blocks: 64\n"))
    code, _, err = apply(capsys, "plan.yaml", "--no-report", "--forks", "2")
    assert code == EXIT_OK, err
    [run] = run_dirs(Path("results"), "two")
    jobs = [json.loads(p.read_text()) for p in (run / "jobs").glob("*.json")]
    assert len(jobs) == 5 and len({j["server"]["url"] for j in jobs}) == 2
    for job in jobs:
        scraped = job["server_metrics"]
        assert scraped["url"] == job["server"]["url"] + "/metrics", (job["id"], scraped)
        assert scraped["scrapes"] >= 1


def test_max_jobs_bounds_every_servers_jobs_together(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "plan", "plan.yaml", "--max-jobs", "4")  # 2 + 3 jobs
    assert code == EXIT_INVALID
    assert "plan expands to 5 jobs, more than --max-jobs 4" in err
    code, _, err = run_cli(capsys, "plan", "plan.yaml", "--max-jobs", "5")
    assert code == EXIT_OK, err


def test_validate_checks_every_server_of_a_lock(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "plan", "plan.yaml", "--out", "lock.json")
    assert code == EXIT_OK, err
    servers = work / "configs" / "servers.yaml"
    servers.write_text(servers.read_text().replace("  us:\n", "  usa:\n"))
    code, out, _ = run_cli(capsys, "validate", "lock.json")
    assert code == EXIT_INVALID
    assert "server 'us' (from the lock's servers[1].name) is not defined in" in out
