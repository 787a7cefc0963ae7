"""`runner init` in a fresh folder, run again, with --force, with --url against a real LiteLLM
proxy and a dead one; and `runner schema --write`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from cli_helpers import run_cli, run_json
from litellm_proxy import SERVED_IDS, LiteLLMProxy

from runner.errors import EXIT_INVALID, EXIT_INVENTORY, EXIT_OK

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = sorted(p.name for p in (REPO / "schemas").glob("*.schema.json"))
TEXT_FILES = ["configs/servers.yaml", "configs/models.yaml", "plans/example.yaml"]
WRITTEN = [*TEXT_FILES, *(f"schemas/{name}" for name in SCHEMAS)]
KEY_VAR = "LITELLM_API_KEY"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that does not exist yet; no config folder or server chosen by the environment."""
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    monkeypatch.delenv(KEY_VAR, raising=False)
    return tmp_path / "project"


def init(capsys: pytest.CaptureFixture[str], project: Path, *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "init", str(project), *argv)


def contents(project: Path) -> dict[str, bytes]:
    return {str(p.relative_to(project)): p.read_bytes() for p in project.rglob("*") if p.is_file()}


def status(out: str, path: str) -> str:
    """The status `runner init` printed for `path`."""
    found = re.search(rf"^  {re.escape(path)} +(.+)$", out, re.MULTILINE)
    assert found, out
    return found.group(1)


def one_line_error(err: str) -> str:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


def test_a_fresh_folder_gets_every_file_and_the_next_steps(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = init(capsys, project)
    assert code == EXIT_OK, err
    assert sorted(contents(project)) == sorted(WRITTEN)
    assert all(status(out, path) == "wrote" for path in WRITTEN)
    steps = out[out.index("Next:"):]
    assert f"cd {project}" in steps and f"export {KEY_VAR}=..." in steps
    commands = ["runner inventory", "runner plan plans/example.yaml",
                "runner apply plans/example.yaml"]
    assert [steps.index(c) for c in commands] == sorted(steps.index(c) for c in commands)
    assert "runner apply plans/example.yaml --server demo" in steps
    assert err == ""


def test_the_servers_are_the_proxy_and_the_demo_simulator(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, project)
    servers = yaml.safe_load((project / "configs/servers.yaml").read_text())
    assert servers["default"] == "litellm"
    assert servers["servers"]["litellm"] == {"url": "http://127.0.0.1:4000",
                                             "api_key_env": KEY_VAR}
    assert servers["servers"]["demo"]["kind"] == "mock"
    models = yaml.safe_load((project / "configs/models.yaml").read_text())
    assert "models" not in models and "#   - id: Qwen/Qwen3-8B" in (
        project / "configs/models.yaml").read_text()


def test_the_written_files_validate(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    init(capsys, project)
    monkeypatch.chdir(project)
    code, out, _ = run_cli(capsys, "validate", *TEXT_FILES)
    assert code == EXIT_OK, out
    assert out.splitlines() == [f"ok: {path}" for path in TEXT_FILES]


def test_the_example_plan_plans_applies_and_reports_on_the_demo_simulator(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    init(capsys, project)
    monkeypatch.chdir(project)
    code, data, err = run_json(capsys, "plan", "plans/example.yaml", "--server", "demo", "--json")
    assert code == EXIT_OK, err
    assert data["inventory"]["source"] == "live" and data["inventory"]["server"] == "demo"
    assert data["totals"]["jobs"] == 4
    code, out, err = run_cli(capsys, "apply", "plans/example.yaml", "--server", "demo", "-q")
    assert code == EXIT_OK, err
    assert "jobs: ok=4 slo_missed=0 failed=0" in out
    assert len(list((project / "results" / "example").iterdir())) == 1
    code, out, err = run_cli(capsys, "report", "latest", "--format", "md")
    assert code == EXIT_OK, err


@pytest.mark.parametrize("path", TEXT_FILES)
def test_every_modeline_resolves_to_the_installed_schema(
    project: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    init(capsys, project)
    first = (project / path).read_text().splitlines()[0]
    found = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert found, first
    target = (project / path).parent / found.group(1)
    assert target.is_file()
    assert target.read_bytes() == (REPO / "schemas" / target.name).read_bytes()
    assert path != "plans/example.yaml" or found.group(1) == "../schemas/plan.schema.json"


def test_the_schemas_are_byte_identical_copies(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, project)
    for name in SCHEMAS:
        assert (project / "schemas" / name).read_bytes() == (REPO / "schemas" / name).read_bytes()


def test_running_again_keeps_everything_and_lists_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, project)
    before = contents(project)
    code, out, _ = init(capsys, project)
    assert code == EXIT_OK
    assert all(status(out, path) == "kept (unchanged)" for path in WRITTEN)
    assert contents(project) == before


def test_a_file_that_differs_is_kept_and_listed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, project)
    plan = project / "plans/example.yaml"
    plan.write_text(plan.read_text() + "# my change\n")
    (project / "schemas/result.schema.json").unlink()
    code, out, _ = init(capsys, project)
    assert code == EXIT_OK
    assert plan.read_text().endswith("# my change\n")
    assert status(out, "plans/example.yaml") == (
        "kept (differs; --force plans/example.yaml replaces it)")
    assert status(out, "schemas/result.schema.json") == "wrote"
    assert status(out, "configs/models.yaml") == "kept (unchanged)"


def test_a_bare_force_is_refused_and_names_the_files(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, project)
    plan = project / "plans/example.yaml"
    plan.write_text("# mine\n")
    (project / "schemas/result.schema.json").unlink()
    code, out, err = init(capsys, project, "--force")
    assert code == EXIT_INVALID and out == ""
    assert "--force plans/example.yaml" in one_line_error(err)
    assert plan.read_text() == "# mine\n"
    assert not (project / "schemas/result.schema.json").exists()  # nothing at all was written


def test_force_file_replaces_exactly_the_named_files(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = init(capsys, project)
    fresh = contents(project)
    for path in ("plans/example.yaml", "configs/models.yaml", "configs/servers.yaml"):
        (project / path).write_text("# mine\n")
    code, out, err = init(capsys, project, "--force", "plans/example.yaml",
                          "--force", "./configs/models.yaml")
    assert code == EXIT_OK, err
    assert status(out, "plans/example.yaml") == "replaced (--force)"
    assert status(out, "configs/models.yaml") == "replaced (--force)"
    assert status(out, "configs/servers.yaml").startswith("kept (differs;")
    now = contents(project)
    assert now["plans/example.yaml"] == fresh["plans/example.yaml"]
    assert now["configs/models.yaml"] == fresh["configs/models.yaml"]
    assert now["configs/servers.yaml"] == b"# mine\n"


def test_force_of_a_file_init_does_not_write_is_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = init(capsys, project, "--force", "plans/nightly.yaml")
    assert code == EXIT_INVALID
    assert "configs/models.yaml" in one_line_error(err)
    assert not project.exists()


@pytest.mark.parametrize(("argv", "says"), [
    (["--server", "demo"], "--server demo"),
    (["--server", "my proxy"], "--server"),
    (["--api-key-env", "sk-not-a-name"], "--api-key-env"),
    (["--url", "ftp://proxy.example"], "--url"),
    (["--url", "http://user:secret@proxy.example"], "--url: put no key in the URL"),
    (["--url", "http://sk-secret@proxy.example"], "--url: \"http://***@proxy.example\""),
    (["--url", "http://[::1"], "--url: not a valid URL"),
])
def test_bad_options_are_exit_2_and_write_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, _, err = init(capsys, project, *argv)
    assert code == EXIT_INVALID
    assert says in one_line_error(err)
    assert "secret" not in err
    assert not project.exists()


def test_a_file_as_the_folder_is_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_text("")
    code, _, err = init(capsys, project)
    assert code == EXIT_INVALID and "not a folder" in one_line_error(err)


def test_an_unreachable_proxy_is_a_warning_and_the_files_are_written(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    dead_url: str
) -> None:
    monkeypatch.setenv("PROD_KEY", "sk-secret-dead-0042")
    code, out, err = init(capsys, project, "--url", dead_url, "--server", "prod",
                          "--api-key-env", "PROD_KEY")
    assert code == EXIT_OK
    assert err.startswith("WARNING: server 'prod'") and "unreachable" in err
    assert f"--url {dead_url} --force configs/models.yaml" in err
    assert sorted(contents(project)) == sorted(WRITTEN)
    servers = yaml.safe_load((project / "configs/servers.yaml").read_text())
    assert servers["default"] == "prod"
    assert servers["servers"]["prod"] == {"url": dead_url, "api_key_env": "PROD_KEY"}
    assert "models" not in yaml.safe_load((project / "configs/models.yaml").read_text())
    assert "export PROD_KEY=..." in out
    written = b"".join(contents(project).values())
    assert b"sk-secret-dead" not in written and "sk-secret-dead" not in out + err


@pytest.mark.litellm
def test_url_writes_the_proxy_models_and_never_the_key(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    litellm_proxy: LiteLLMProxy
) -> None:
    monkeypatch.setenv(KEY_VAR, litellm_proxy.master_key)
    code, out, err = init(capsys, project, "--url", litellm_proxy.url)
    assert code == EXIT_OK, err
    models = yaml.safe_load((project / "configs/models.yaml").read_text())["models"]
    ids = [m["id"] for m in models]
    assert set(SERVED_IDS) <= set(ids) and ids == sorted(ids)
    assert all(m["servers"] == ["litellm"] for m in models)
    assert {"id": "llama3.1:8b", "servers": ["litellm"], "mode": "chat",
            "max_input_tokens": 131072, "max_output_tokens": 8192} in models
    assert f"configs/models.yaml lists the {len(ids)} models" in out
    assert "NOTE: plans/example.yaml benchmarks every model" in out
    written = b"".join(contents(project).values())
    for secret in (litellm_proxy.master_key, litellm_proxy.backend_key):
        assert secret.encode() not in written and secret not in out + err
    monkeypatch.chdir(project)
    assert run_cli(capsys, "validate", *TEXT_FILES)[0] == EXIT_OK
    code, data, err = run_json(capsys, "plan", "plans/example.yaml", "--source", "fallback",
                               "--json")
    assert code == EXIT_OK, err
    assert data["benchmarks"][0]["models"] == ids


@pytest.mark.litellm
def test_url_with_a_refused_key_is_exit_3_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    litellm_proxy: LiteLLMProxy
) -> None:
    wrong = "sk-wrong-" + litellm_proxy.master_key[-6:]
    monkeypatch.setenv(KEY_VAR, wrong)
    code, out, err = init(capsys, project, "--url", litellm_proxy.url)
    assert code == EXIT_INVENTORY and out == ""
    assert f"${KEY_VAR}" in one_line_error(err) and "nothing was written" in err
    assert wrong not in err and litellm_proxy.master_key not in err
    assert not project.exists()


# --- runner schema --write ------------------------------------------------------------------


def test_schema_write_copies_every_schema_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "deep" / "schemas"
    code, out, _ = run_cli(capsys, "schema", "--write", str(folder))
    assert code == EXIT_OK
    assert sorted(p.name for p in folder.iterdir()) == SCHEMAS
    for name in SCHEMAS:
        assert (folder / name).read_bytes() == (REPO / "schemas" / name).read_bytes()
        assert re.search(rf"^  {re.escape(name)} +wrote$", out, re.MULTILINE)


def test_schema_write_replaces_old_copies_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "schema", "--write", str(tmp_path))
    (tmp_path / "plan.schema.json").write_text("{}")
    code, out, _ = run_cli(capsys, "schema", "--write", str(tmp_path))
    assert code == EXIT_OK
    assert (tmp_path / "plan.schema.json").read_bytes() == (
        REPO / "schemas/plan.schema.json").read_bytes()
    assert re.search(r"^  plan\.schema\.json +replaced$", out, re.MULTILINE)
    assert re.search(r"^  result\.schema\.json +unchanged$", out, re.MULTILINE)


@pytest.mark.parametrize("argv", [["schema"], ["schema", "plan", "--write", "x"]])
def test_schema_needs_a_name_or_write_but_not_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert code == EXIT_INVALID and out == ""
    one_line_error(err)
    assert not (tmp_path / "x").exists()
