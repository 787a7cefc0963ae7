"""What a plan may not say beyond its schema: a name that collides in results/, a key named like
a credential, an extra_body key that runner sends itself. Each passed `validate`, then `apply`
exited 70 (the store refused it) or sent something else than the job said."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli, write_plan

from runner.errors import EXIT_INVALID, InputError
from runner.plan.planfile import load_plan, parse_extra_vars

SERVERS = "servers:\n  sim:\n    kind: mock\n    models: [m]\n"


def plan_text(name: str = "p", workload: str = "{max_tokens: 4}", head: str = "") -> str:
    return (f"version: 1\nname: {name}\n{head}benchmarks:\n  - name: b\n    models: all\n"
            f"    workload: {workload}\n    load: {{requests: 1}}\n")


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "servers.yaml").write_text(SERVERS)
    return folder


def problems_of(tmp_path: Path, text: str) -> list[str]:
    plan = write_plan(tmp_path, text).as_posix()
    with pytest.raises(InputError) as caught:
        load_plan(plan)
    return [p.render().removeprefix(f"{plan}:") for p in caught.value.problems]


@pytest.mark.parametrize(("name", "why"), [
    ("index.sqlite", "collides with results/index.sqlite"),
    ("index.sqlite-wal", "collides with results/index.sqlite"),
    ("index.sqlite-journal", "collides with results/index.sqlite"),
    ("INDEX.SQLITE-shm", "collides with results/index.sqlite"),  # macOS folds case
    ("latest", "is a word of `runner report`"),
    ("Previous", "is a word of `runner report`"),
    ("nul", "is a device name on Windows"),
    ("COM1.x", "is a device name on Windows"),
    ("a.", "must not end with '.'"),
])
def test_a_plan_name_that_collides_in_results_is_exit_2_before_any_run(
    name: str, why: str, tmp_path: Path, configs: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    plan = write_plan(tmp_path, plan_text(name))
    for command in ("validate", "plan", "apply"):
        code, out, err = run_cli(capsys, command, str(plan), "--config-dir", str(configs))
        assert code == EXIT_INVALID, out + err
        assert f'{plan}:2:7: plan name "{name}" {why}' in out + err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(("workload", "col", "key"), [
    ("{extra_body: {api_key: sk-1}}", 29, "api_key"),
    ("{extra_body: {X-Api-Key: sk-1}}", 29, "X-Api-Key"),
    ("{extra_body: {headers: {Authorization: Bearer x}}}", 39, "Authorization"),
    ("{extra_body: {master_key: x, litellm_params: {}}}", 29, "master_key"),
])
def test_a_credential_in_extra_body_is_exit_2_at_its_key(
    workload: str, col: int, key: str, tmp_path: Path, configs: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = write_plan(tmp_path, plan_text(workload=workload))
    for command in ("validate", "apply"):
        code, out, err = run_cli(capsys, command, str(plan), "--config-dir", str(configs))
        assert code == EXIT_INVALID, out + err
        assert f"{plan}:6:{col}: key '{key}' is named like a credential; secrets never live" \
            in out + err
        assert "sk-1" not in out + err


def test_a_credential_named_var_is_refused_in_the_plan_and_with_e(tmp_path: Path) -> None:
    """Variables are stored in plan locks."""
    assert problems_of(tmp_path, plan_text(head="vars: {openai_api_key: x}\n")) == [
        "3:8: key 'openai_api_key' is named like a credential; secrets never live in plans or "
        "locks: a server's key comes from the environment variable that its api_key_env names "
        "in servers.yaml (at $.vars.openai_api_key)"]
    with pytest.raises(InputError, match=r"^-e api_key=\.\.\.: api_key is named like a cred"):
        parse_extra_vars(["api_key=sk-live-1"])


@pytest.mark.parametrize("key", ["model", "messages", "prompt", "stream", "stream_options",
                                 "max_tokens", "temperature", "seed"])
def test_an_extra_body_key_runner_sends_itself_is_refused(key: str, tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, plan_text(workload=f"{{extra_body: {{{key}: 1}}}}"))
    assert problem.startswith(f"6:29: extra_body.{key}: runner sets {key} itself; ")
    assert problem.endswith(f"(at $.benchmarks[0].workload.extra_body.{key})")


def test_defaults_extra_body_is_checked_too_and_other_keys_pass(tmp_path: Path) -> None:
    head = "defaults: {workload: {extra_body: {model: x}}}\n"
    [problem] = problems_of(tmp_path, plan_text(head=head, workload="{extra_body: {n: 1}}"))
    assert problem.startswith("3:36: extra_body.model: runner sets model itself; ")
    text = plan_text(workload="{extra_body: {ignore_eos: true, min_tokens: 4, top_k: 5, "
                              "nested: {model: kept}}}")
    plan = load_plan(write_plan(tmp_path, text).as_posix())
    assert plan.benchmarks[0].params["extra_body"]["nested"] == {"model": "kept"}
