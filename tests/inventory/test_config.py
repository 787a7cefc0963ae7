"""Config files: where servers.yaml and models.yaml are found, and what a missing one says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply_helpers import simulator
from cli_helpers import run_cli, write_configs

from runner.errors import EXIT_INVALID, EXIT_OK, InputError
from runner.inventory.config import (
    ConfigDir,
    Server,
    api_key,
    find_config_dir,
    load_models,
    load_servers,
)

PLAN = """\
version: 1
name: nightly
inventory: {server: local}
benchmarks:
  - name: lat
    models: "all, !@quantized"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_url: str) -> Path:
    """proj/ (a repository) with configs/ and plans/nightly.yaml; the current folder is
    elsewhere/, beside it, which has no configs/."""
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    write_configs(proj / "configs", dead_url)
    (proj / "configs" / "models.yaml").write_text(
        "groups:\n  quantized: ['*-FP8']\nmodels:\n  - {id: Qwen/Qwen3-8B}\n"
        "  - {id: Qwen/Qwen3-8B-FP8}\n")
    (proj / "plans").mkdir()
    (proj / "plans" / "nightly.yaml").write_text(PLAN)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    return proj


def test_configs_are_found_beside_the_plans_repository(project: Path) -> None:
    found = find_config_dir(None, {}, "../proj/plans/nightly.yaml")
    assert found.path == "../proj/configs"
    assert found.searched == ("../proj/plans/configs", "../proj/configs")


def test_a_plan_path_that_does_not_exist_is_searched_from_its_folder(project: Path) -> None:
    assert find_config_dir(None, {}, "gone/plan.yaml").searched[:2] == ("gone/configs", "configs")


def test_option_and_variable_win_over_the_search(project: Path) -> None:
    env = {"RUNNER_CONFIG_DIR": "from-env"}
    assert find_config_dir("opt", env, "../proj/plans/nightly.yaml").path == "opt"
    assert find_config_dir(None, env, "../proj/plans/nightly.yaml").searched == ("from-env",)


def test_the_current_folder_and_those_above_it_come_after_the_plan(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "plans")
    assert find_config_dir(None, {}, None).path == "../configs"  # `runner inventory` in plans/
    (project / "plans" / "configs").mkdir()  # a folder named configs without config files
    assert find_config_dir(None, {}, "nightly.yaml").path == "../configs"


def test_the_search_stops_at_the_repository_root(project: Path) -> None:
    write_configs(project.parent / "configs", "http://127.0.0.1:9")  # outside the repository
    found = find_config_dir(None, {}, "../proj/plans/nightly.yaml")
    assert found.path == "../proj/configs"
    (project / "configs" / "servers.yaml").unlink()
    (project / "configs" / "models.yaml").unlink()
    found = find_config_dir(None, {}, "../proj/plans/nightly.yaml")
    assert found.searched[:3] == ("../proj/plans/configs", "../proj/configs", "configs")
    assert found.path == "../configs"  # found from the current folder's side, not the plan's


def test_a_missing_servers_yaml_names_every_folder_searched(project: Path) -> None:
    (project / "configs" / "servers.yaml").unlink()
    (project / "configs" / "models.yaml").unlink()
    found = find_config_dir(None, {}, "../proj/plans/nightly.yaml")
    with pytest.raises(InputError) as info:
        load_servers(found)
    [line] = info.value.lines()
    assert line.startswith("no servers.yaml found: searched ../proj/plans/configs, "
                           "../proj/configs, configs, ")
    assert "pass --config-dir DIR" in line


def test_a_missing_models_yaml_says_where_it_was_looked_for(tmp_path: Path) -> None:
    models = load_models(ConfigDir(str(tmp_path / "c"), ("a/configs", "configs")))
    assert models.groups_source() == ("no models.yaml found: searched a/configs, configs; "
                                      "create configs/models.yaml beside your plans, or pass "
                                      "--config-dir DIR")
    assert load_models(str(tmp_path)).groups_source() == f"no models.yaml in {tmp_path}"


@pytest.mark.parametrize(
    ("option", "env", "message"),
    [
        ("gone", {}, "no servers.yaml in gone (from --config-dir): create it there"),
        (None, {"RUNNER_CONFIG_DIR": "stale"},
         "no servers.yaml in stale (from $RUNNER_CONFIG_DIR): create it there, or change or "
         "unset $RUNNER_CONFIG_DIR"),
    ],
)
def test_a_given_folder_without_servers_yaml_says_where_it_came_from(
    project: Path, option: str | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(InputError) as info:
        load_servers(find_config_dir(option, env, "../proj/plans/nightly.yaml"))
    assert info.value.lines() == [message]


def test_validate_and_plan_from_another_folder_use_the_plans_configs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "validate", "../proj/plans/nightly.yaml")
    assert (code, out, err) == (EXIT_OK, "ok: ../proj/plans/nightly.yaml\n", "")
    code, out, _ = run_cli(capsys, "plan", "../proj/plans/nightly.yaml", "--source", "fallback")
    assert code == EXIT_OK and "lat/Qwen/Qwen3-8B" in out and "FP8" not in out.split("jobs")[-1]


def test_validate_without_configs_says_why_the_group_is_unknown(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "configs" / "models.yaml").unlink()
    code, out, _ = run_cli(capsys, "validate", "../proj/plans/nightly.yaml")
    assert code == EXIT_INVALID
    assert ("../proj/plans/nightly.yaml:6:13: unknown model group '@quantized' (no model groups"
            " are defined); no models.yaml found: searched ../proj/plans/configs, ../proj/configs;"
            " create configs/models.yaml beside your plans, or pass --config-dir DIR") in out


def test_a_server_remembers_the_file_that_defines_it(project: Path) -> None:
    servers = load_servers("../proj/configs")
    assert servers.servers["local"].source == "../proj/configs/servers.yaml"


def test_new_finds_the_configs_above_its_plans_folder(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "new", "--plans-dir", "../proj/plans", "--server", "local",
                           "--source", "fallback", "--yes")
    assert code == EXIT_OK, err
    assert "inventory from the fallback file ../proj/configs/models.yaml" in err
    assert (project / "plans" / "latency.yaml").is_file()


MOCK_SERVERS = """\
servers:
  sim: {kind: mock, models: [m1], ttft_ms: 1, itl_ms: 1, output_tokens: 4}
"""
TINY_PLAN = """\
version: 1
name: tiny
inventory: {server: sim}
benchmarks:
  - {name: b, models: all, load: {requests: 2}, workload: {max_tokens: 4}}
"""


def test_a_lock_applied_from_elsewhere_finds_the_configs_near_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    (proj / "configs").mkdir()
    (proj / "configs" / "servers.yaml").write_text(MOCK_SERVERS)
    (proj / "plans").mkdir()
    (proj / "plans" / "tiny.yaml").write_text(TINY_PLAN)
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    monkeypatch.chdir(proj)
    code, _, err = run_cli(capsys, "plan", "plans/tiny.yaml", "--out", "locks/tiny.json")
    assert code == EXIT_OK, err
    monkeypatch.chdir(tmp_path)  # the plan path as written (plans/tiny.yaml) is not here
    code, out, err = run_cli(capsys, "apply", "proj/locks/tiny.json", "-q", "--no-report")
    assert code == EXIT_OK, err  # found from the lock's folder: neither gone nor stale
    assert "WARNING" not in err
    assert "jobs: ok=1 slo_missed=0 failed=0" in out


@pytest.mark.parametrize("key", ["sk-TOPSECRET\r", "sk-TOPSECRET\n", "  sk-TOPSECRET\r\n",
                                 "\tsk-TOPSECRET "])
def test_surrounding_whitespace_is_not_part_of_the_key(key: str) -> None:
    server = Server("local", "http://127.0.0.1:4000", "LITELLM_API_KEY")
    assert api_key(server, {"LITELLM_API_KEY": key}) == "sk-TOPSECRET"
    assert api_key(server, {"LITELLM_API_KEY": " \n"}) is None


@pytest.mark.parametrize("key", ["sk-TOP\rSECRET", "sk-TOP\nSECRET", "sk TOPSECRET",
                                 "sk-TOPSECRET-ключ", "sk-TOPSECRET\x00", "sk-TOP\x1b[2JSECRET"])
def test_a_key_no_header_can_carry_is_exit_2_without_showing_it(key: str) -> None:
    server = Server("local", "http://127.0.0.1:4000", "LITELLM_API_KEY")
    with pytest.raises(InputError) as caught:
        api_key(server, {"LITELLM_API_KEY": key})
    message = caught.value.lines()[0]
    assert caught.value.exit_code == EXIT_INVALID
    assert "TOP" not in message and "SECRET" not in message and "$LITELLM_API_KEY" in message
    assert api_key(server, {"LITELLM_API_KEY": "sk-TOPSECRET"}) == "sk-TOPSECRET"


@pytest.fixture
def bad_key(tmp_path: Path, dead_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """configs/ with server 'local' whose key variable holds a key with a carriage return
    inside it."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        f"servers:\n  local:\n    url: {dead_url}\n    api_key_env: LITELLM_API_KEY\n")
    monkeypatch.setenv("LITELLM_API_KEY", "sk-TOP\rSECRET")
    return configs


def test_inventory_with_a_cr_inside_the_key_is_exit_2_and_never_prints_it(
    bad_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "inventory", "--config-dir", str(bad_key))
    assert code == EXIT_INVALID and "TOP" not in out + err and "SECRET" not in out + err
    assert err.startswith("error: $LITELLM_API_KEY") and err.count("\n") == 1


def test_apply_on_the_fallback_with_a_bad_key_makes_no_run(
    tmp_path: Path, bad_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bad_key / "models.yaml").write_text("models:\n  - id: m1\n")
    (tmp_path / "p.yaml").write_text(TINY_PLAN.replace("server: sim", "server: local"))
    code, out, err = run_cli(capsys, "apply", str(tmp_path / "p.yaml"), "--config-dir",
                             str(bad_key), "--source", "fallback", "--results",
                             str(tmp_path / "results"))
    assert code == EXIT_INVALID and "SECRET" not in out + err
    assert not (tmp_path / "results").exists()


def test_a_key_read_from_a_file_with_its_newline_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with simulator("--models", "m1", "--api-key", "sk-TOPSECRET") as (url, _):
        write_configs(tmp_path / "configs", url, "LITELLM_API_KEY")
        monkeypatch.setenv("LITELLM_API_KEY", "sk-TOPSECRET\n")  # as $(cat key.txt) leaves it
        code, out, err = run_cli(capsys, "inventory", "--config-dir", str(tmp_path / "configs"))
    assert code == EXIT_OK, err
    assert out.splitlines()[-1].startswith("m1") and "TOPSECRET" not in out + err


@pytest.mark.parametrize("models", [["--help"], ["-x", "m"], ["--models=y"]])
def test_a_simulated_model_named_like_an_option_is_served(
    models: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A `kind: mock` model `--help` passed validate, then the simulator's command line read it
    as its own option and apply exited 70."""
    listed = ", ".join(f'"{m}"' for m in models)
    (tmp_path / "servers.yaml").write_text(f"servers:\n  sim:\n    kind: mock\n"
                                           f"    models: [{listed}]\n")
    code, out, err = run_cli(capsys, "inventory", "--config-dir", str(tmp_path), "--json")
    assert code == EXIT_OK, err
    assert sorted(m["id"] for m in json.loads(out)["models"]) == sorted(models)


@pytest.mark.parametrize(("option", "value"), [("ttft_ms", "1e300"), ("itl_ms", "1e9"),
                                               ("output_tokens", "1000000000000")])
def test_a_simulator_setting_it_cannot_serve_is_exit_2(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """ttft_ms: 1e300 validated, then every request timed out."""
    (tmp_path / "servers.yaml").write_text(
        f"servers:\n  sim:\n    kind: mock\n    models: [m]\n    {option}: {value}\n")
    code, out, _ = run_cli(capsys, "validate", str(tmp_path / "servers.yaml"))
    assert code == EXIT_INVALID and f":5:{len(option) + 7}: must be at most " in out
