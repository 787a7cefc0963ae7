"""The CLI in-process: exit codes, output shapes, errors as single lines (no proxy needed)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli, run_json, write_configs, write_plan

from runner.errors import EXIT_INTERNAL, EXIT_INVALID, EXIT_INVENTORY, EXIT_OK

REPO = Path(__file__).resolve().parent.parent

PLAN = """\
version: 1
name: t
vars: {mt: 32}
benchmarks:
  - name: lat
    models: "Qwen/*, !*-FP8"
    workload: {max_tokens: "{{ mt }}"}
    matrix: {concurrency: [1, 4]}
  - name: coder
    models: "@coder"
    tags: [coder]
    load: {rate: 2, requests: 10}
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_url: str) -> Path:
    """A config folder whose only server is down, so the fallback file is used."""
    configs = write_configs(tmp_path / "configs", dead_url)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_plan_json_from_fallback_has_the_documented_shape(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(env, PLAN)
    code, data, err = run_json(capsys, "plan", str(plan), "--json", "-e", "mt=64")
    assert code == EXIT_OK
    assert "WARNING: inventory from the fallback file" in err
    assert data["plan"]["name"] == "t" and len(data["plan"]["sha256"]) == 64
    inv = data["inventory"]
    assert inv["source"] == "fallback" and inv["server"] == "local"
    assert "connection refused" in inv["fallback_reason"] and inv["model_count"] == 4
    lat = data["benchmarks"][0]
    assert lat["patterns"] == ["Qwen/*", "!*-FP8"]
    assert lat["models"] == ["Qwen/Qwen3-8B", "Qwen/Qwen3-Coder-30B-A3B-Instruct"]
    ids = [job["id"] for job in data["jobs"]]
    assert ids[:2] == ["lat/Qwen/Qwen3-8B/concurrency=1", "lat/Qwen/Qwen3-8B/concurrency=4"]
    assert data["jobs"][0]["params"]["max_tokens"] == 64  # -e wins over vars, typed by schema
    assert data["jobs"][0]["params"]["concurrency"] == 1
    coder = [job for job in data["jobs"] if job["benchmark"] == "coder"]
    # mistralai/Codestral-22B is listed for server `other` only
    assert [job["model"] for job in coder] == ["Qwen/Qwen3-Coder-30B-A3B-Instruct"]
    assert coder[0]["params"]["rate"] == 2 and "concurrency" not in coder[0]["params"]


def test_plan_text_lists_models_jobs_and_totals(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(env, PLAN)
    code, out, _ = run_cli(capsys, "plan", str(plan))
    assert code == EXIT_OK
    assert "WARNING: inventory from the fallback file" in out
    assert "benchmark: lat" in out and "    lat/Qwen/Qwen3-8B/concurrency=4" in out
    [line] = [x for x in out.splitlines() if x.startswith("    lat/Qwen/Qwen3-8B/concurrency=4 ")]
    assert line.endswith("  concurrency 4, 100 requests")
    assert ("    coder/Qwen/Qwen3-Coder-30B-A3B-Instruct  rate 2/s poisson, 10 requests "
            "(about 5 s)\n") in out
    assert out.rstrip().endswith("TOTAL: 2 benchmarks (0 skipped), 2 models, 5 jobs, "
                                 "410 requests; sending takes 5 s, and 4 closed-loop jobs as "
                                 "long as the server's latency makes them")


def test_plan_tags_limit_and_skip(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(env, PLAN)
    code, data, _ = run_json(capsys, "plan", str(plan), "--json", "--tags", "coder")
    assert code == EXIT_OK
    assert [b["skipped"] for b in data["benchmarks"]] == [True, False]
    code, data, _ = run_json(capsys, "plan", str(plan), "--json", "--limit", "*8B")
    assert {job["model"] for job in data["jobs"]} == {"Qwen/Qwen3-8B"}
    assert code == EXIT_OK
    assert data["benchmarks"][1]["skip_reason"] == "no models left after --limit"


def test_limit_matching_nothing_is_exit_3(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(env, PLAN)
    code, out, err = run_cli(capsys, "plan", str(plan), "--limit", "nothing/*")
    assert code == EXIT_INVENTORY and out == ""
    assert "--limit 'nothing/*' matches no model" in err


def test_benchmark_matching_nothing_is_exit_3_unless_skip(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = "version: 1\nname: t\nbenchmarks:\n  - name: a\n    models: 'gpt-*'\n"
    code, _, err = run_cli(capsys, "plan", str(write_plan(env, body)))
    assert code == EXIT_INVENTORY
    assert "plan.yaml:5:13: benchmark 'a' matches no model" in err
    skip = body + "    on_empty: skip\n" + "  - name: b\n    models: 'Qwen/*'\n"
    code, out, _ = run_cli(capsys, "plan", str(write_plan(env, skip)))
    assert code == EXIT_OK and "SKIPPED (no models matched (on_empty: skip))" in out


def test_unmatched_term_warns_with_suggestion(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = "version: 1\nname: t\nbenchmarks:\n  - name: a\n    models: 'Qwen/Qwen3-8b, Qwen/*'\n"
    code, data, _ = run_json(capsys, "plan", str(write_plan(env, body)), "--json")
    assert code == EXIT_OK
    assert data["benchmarks"][0]["unmatched_terms"] == ["Qwen/Qwen3-8b"]
    assert "Qwen/Qwen3-8B" in data["benchmarks"][0]["warnings"][0]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ("'~Qwen(('", "plan.yaml:5:13: "),
        ("'@nope'", "unknown model group '@nope' (known groups: @coder)"),
    ],
)
def test_bad_patterns_are_exit_2_with_location(
    env: Path, capsys: pytest.CaptureFixture[str], models: str, message: str
) -> None:
    body = f"version: 1\nname: t\nbenchmarks:\n  - name: a\n    models: {models}\n"
    code, out, err = run_cli(capsys, "plan", str(write_plan(env, body)))
    assert code == EXIT_INVALID and out == ""
    assert message in err
    assert "Traceback" not in err


def test_invalid_plan_reports_every_problem_once_each(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = ("version: 1\nname: t\nbenchmarks:\n  - name: a\n    models: all\n"
            "    load: {concurency: 0}\n  - name: b\n    models: all\n"
            "    workload: {temperature: 3}\n")
    plan = write_plan(env, body)
    code, _, err = run_cli(capsys, "plan", str(plan))
    assert code == EXIT_INVALID
    lines = err.strip().splitlines()
    assert lines == [
        f"error: {plan}:6:12: unknown key 'concurency' (did you mean 'concurrency'?)"
        " (at $.benchmarks[0].load.concurency)",
        f"error: {plan}:9:29: must be at most 2, got 3 (at $.benchmarks[1].workload.temperature)",
    ]


def test_validate_formats(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_plan(env, PLAN, "good.yaml")
    bad = write_plan(env, "version: 1\nname: t\nbenchmarks:\n  - name: a\n    modles: x\n",
                     "bad.yaml")
    code, out, _ = run_cli(capsys, "validate", str(good))
    assert code == EXIT_OK and out.strip() == f"ok: {good}"
    code, out, _ = run_cli(capsys, "validate", str(good), str(bad), "--format", "github")
    assert code == EXIT_INVALID
    assert out.splitlines() == [
        f"::error file={bad},line=4,col=5::missing required key 'models' (at $.benchmarks[0])",
        f"::error file={bad},line=5,col=5::unknown key 'modles' (did you mean 'models'?)"
        " (at $.benchmarks[0].modles)",
    ]
    code, data, _ = run_json(capsys, "validate", str(good), str(bad), "--format", "json")
    assert code == EXIT_INVALID and data["valid"] is False
    assert [f["valid"] for f in data["files"]] == [True, False]
    assert data["files"][1]["problems"][1]["line"] == 5


def test_validate_config_files(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = env / "other-configs"
    folder.mkdir()
    (folder / "servers.yaml").write_text("servers:\n  a: {url: ftp://x, api_key: sk-secret}\n")
    code, out, _ = run_cli(capsys, "validate", str(folder / "servers.yaml"))
    assert code == EXIT_INVALID
    assert "unknown key 'api_key' (did you mean 'api_key_env'?)" in out
    assert '"ftp://x" must start with http:// or https://' in out


def test_duplicate_keys_name_both_lines(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(env, "version: 1\nname: a\nname: b\nbenchmarks: []\n")
    code, out, _ = run_cli(capsys, "validate", str(plan))
    assert code == EXIT_INVALID
    assert f"{plan}:3:1: duplicate key 'name' (first defined on line 2)" in out


def test_undefined_template_variable_is_exit_2_with_location(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = "version: 1\nname: t\nbenchmarks:\n  - name: a\n    models: '{{ pattern }}'\n"
    plan = write_plan(env, body)
    code, _, err = run_cli(capsys, "plan", str(plan))
    assert code == EXIT_INVALID
    assert f"{plan}:5:13: template error: 'pattern' is undefined" in err
    code, data, _ = run_json(capsys, "plan", str(plan), "--json", "-e", "pattern=Qwen/*")
    assert code == EXIT_OK and data["benchmarks"][0]["patterns"] == ["Qwen/*"]


def test_bad_extra_var_and_unknown_server_are_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(env, PLAN)
    code, _, err = run_cli(capsys, "plan", str(plan), "-e", "no-equals")
    assert code == EXIT_INVALID and "expected KEY=VALUE" in err
    code, _, err = run_cli(capsys, "plan", str(plan), "--server", "locl")
    assert code == EXIT_INVALID and "did you mean 'local'?" in err


def test_an_argument_that_is_not_utf8_is_exit_2(env: Path) -> None:
    """Bytes of another encoding (a file name, an -e value) reached a request, the manifest or
    the index, and crashed the first write with exit 70."""
    plan = write_plan(env, PLAN)
    base = [sys.executable, "-m", "runner"]
    for argv in (["plan", str(plan).encode(), b"-e", b"d=\xff"],
                 ["validate", str(plan.parent).encode() + b"/\xff.yaml"]):
        done = subprocess.run(base + argv, capture_output=True, text=True, timeout=60, cwd=env)
        assert done.returncode == EXIT_INVALID, done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith("error: argument ") and "\\udcff" in line, line
        assert line.endswith("is not UTF-8 text (the escapes are bytes of another encoding): "
                             "rename the file or give the value in UTF-8"), line


def test_max_jobs(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(env, PLAN)
    code, _, err = run_cli(capsys, "plan", str(plan), "--max-jobs", "3")
    assert code == EXIT_INVALID and "more than --max-jobs 3" in err
    code, _, _ = run_cli(capsys, "plan", str(plan), "--max-jobs", "5")
    assert code == EXIT_OK


def test_max_jobs_counts_a_searchs_most_trials(
    env: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A search (here at most 21 trials per model) counted as one job let --max-jobs 2 pass
    a plan that runs up to 42."""
    plan = write_plan(env, PLAN.split("  - name: coder")[0].replace(
        "matrix: {concurrency: [1, 4]}",
        "load: {search: {over: rate, from: 1, to: 1000, precision: 0.001, max_jobs: 50}}\n"
        "    slo: {ttft_ms: {p95: 500}}"))
    code, out, err = run_cli(capsys, "plan", str(plan), "--max-jobs", "41")
    assert code == EXIT_INVALID, out
    assert "plan expands to at most 42 jobs, more than --max-jobs 41" in err
    code, _, _ = run_cli(capsys, "plan", str(plan), "--max-jobs", "42")
    assert code == EXIT_OK


def test_plan_out_writes_a_lock_with_inventory_snapshot(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(env, PLAN)
    lock = env / "locks" / "t.lock.json"
    code, _, err = run_cli(capsys, "plan", str(plan), "--out", str(lock), "-e", "mt=8")
    assert code == EXIT_OK and f"saved plan lock to {lock}" in err
    data = json.loads(lock.read_text())
    assert data["lock_version"] == 1 and data["plan"]["sha256"]
    assert data["inventory_snapshot"]["models"][0]["id"] == "Qwen/Qwen3-8B"
    assert data["variables"] == {"mt": 8}  # plan vars with -e on top
    assert data["benchmarks"][0]["retries"] == 0 and data["benchmarks"][0]["slo"] == {}
    assert len(data["jobs"]) == 5
    assert not list(lock.parent.glob(".tmp-*"))


def test_plan_out_writes_into_a_device_or_a_symlink_never_over_it(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(env, PLAN)
    code, _, err = run_cli(capsys, "plan", str(plan), "--out", os.devnull)
    assert code == EXIT_OK, err
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # as root, it was replaced by a file
    real, link = env / "real.json", env / "link.json"
    real.write_text("{}")
    link.symlink_to(real)
    code, _, err = run_cli(capsys, "plan", str(plan), "--out", str(link))
    assert code == EXIT_OK and link.is_symlink() and json.loads(real.read_text())["jobs"]


def test_plan_out_dash_writes_the_lock_to_stdout_and_the_view_to_stderr(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--out -` wrote a file named `-` (and said "saved plan lock to -")."""
    plan = write_plan(env, PLAN)
    monkeypatch.chdir(env)
    code, out, err = run_cli(capsys, "plan", str(plan), "--out", "-")
    assert code == EXIT_OK, err
    lock = json.loads(out)
    assert lock["lock_version"] and lock["jobs"] and not (env / "-").exists()
    assert lock["plan_from_lock"] == os.path.relpath(plan, env)
    assert err.startswith("plan: ") and "TOTAL: " in err
    (env / "saved.json").write_text(out)
    assert run_cli(capsys, "validate", str(env / "saved.json"))[0] == EXIT_OK


def test_plan_out_on_a_full_disk_is_exit_74(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "plan", str(write_plan(env, PLAN)), "--out", "/dev/full")
    assert code == 74
    assert err.endswith("error: /dev/full: cannot write the plan lock (No space left on device); "
                        "free some space, then run it again\n")


def test_source_fallback_never_calls_and_live_refuses(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, _ = run_json(capsys, "inventory", "--json", "--source", "fallback")
    assert code == EXIT_OK and data["fallback_reason"] == "--source fallback"
    code, _, err = run_cli(capsys, "inventory", "--source", "live")
    assert code == EXIT_INVENTORY and "--source live forbids the fallback" in err


def test_plan_with_fallback_forbidden_is_exit_3(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = PLAN.replace("benchmarks:", "inventory: {fallback: false}\nbenchmarks:")
    code, _, err = run_cli(capsys, "plan", str(write_plan(env, body)))
    assert code == EXIT_INVENTORY and "inventory.fallback: false" in err


def test_inventory_text_and_pattern(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "inventory", "Qwen/*8B*")
    assert code == EXIT_OK and "WARNING" in err
    rows = out.splitlines()
    assert rows[2].split() == ["ID", "MODE", "MAX", "IN", "MAX", "OUT", "CONTEXT", "METADATA",
                               "WILDCARD"]
    assert [r.split()[0] for r in rows[3:]] == ["Qwen/Qwen3-8B", "Qwen/Qwen3-8B-FP8"]


def test_missing_configs_and_plan_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    code, _, err = run_cli(capsys, "inventory")
    assert code == EXIT_INVALID and err.count("\n") == 1
    assert "no servers.yaml found: searched configs, " in err
    code, _, err = run_cli(capsys, "plan", "missing.yaml")
    assert code == EXIT_INVALID and "missing.yaml: plan file not found" in err


def test_internal_error_is_one_line_and_a_log(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(env / "cache" / "runner"))

    def boom(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("runner.commands.plan.load_plan", boom)
    code, _, err = run_cli(capsys, "plan", "x.yaml")
    assert code == EXIT_INTERNAL
    assert err.count("\n") == 1 and "internal error: RuntimeError: boom" in err
    log = env / "cache" / "runner" / "crash.log"
    assert "Traceback" in log.read_text()


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, _ = run_json(capsys, "schema", "plan")
    assert code == EXIT_OK and data["title"] == "runner benchmark plan"


def test_usage_errors_are_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, "plan")
    assert info.value.code == EXIT_INVALID


@pytest.mark.parametrize("command", ["", "validate", "inventory", "plan", "schema", "init"])
def test_every_command_has_help(command: str) -> None:
    argv = [sys.executable, "-m", "runner", *([command] if command else []), "--help"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    assert proc.returncode == 0 and "usage: runner" in proc.stdout


def test_example_plans_plan_against_the_example_fallback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    for plan in ("plans/demo.yaml", "plans/nightly.yaml"):
        code, data, _ = run_json(capsys, "plan", plan, "--json", "--source", "fallback")
        assert code == EXIT_OK and data["jobs"], plan


def test_a_closed_pipe_is_not_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import os

    from runner.main import main

    read_end, write_end = os.pipe()

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            return write_end

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    try:
        assert main(["schema", "plan"]) == EXIT_OK
    finally:
        os.close(read_end)
        os.close(write_end)


def test_plan_with_a_tag_typo_is_exit_3_and_says_it_once(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = ("version: 1\nname: t\nbenchmarks:\n  - name: a\n    models: 'Qwen/*'\n"
            "    tags: [latency]\n")
    code, out, err = run_cli(capsys, "plan", str(write_plan(env, body)), "--tags", "latncy")
    assert (code, out) == (EXIT_INVENTORY, "")
    assert err.count("did you mean latency?") == 1 and "WARNING" not in err
    assert "the selection leaves no job to run (a: not selected by --tags)" in err
    code, out, err = run_cli(capsys, "plan", str(write_plan(env, body)),
                             "--tags", "latency,latncy")
    assert code == EXIT_OK and "TOTAL: 1 benchmark (0 skipped)" in out
    assert err.count("WARNING: --tags 'latncy': no benchmark has this tag") == 1
