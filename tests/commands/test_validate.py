"""`runner validate`: what it checks beside the schema, and how its errors read."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli, write_configs, write_plan

from runner.errors import EXIT_INVALID, EXIT_OK


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_url: str) -> Path:
    write_configs(tmp_path / "configs", dead_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNNER_CONFIG_DIR", raising=False)
    return tmp_path


def plan_with(inventory: str, models: str = "all") -> str:
    return f"version: 1\nname: t\n{inventory}benchmarks:\n  - name: b\n    models: {models}\n"


def test_an_unknown_inventory_server_is_located_with_a_suggestion(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(project, plan_with("inventory: {server: locl}\n"), "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "p.yaml")
    assert code == EXIT_INVALID
    assert out == ("p.yaml:3:21: server 'locl' (from the plan's inventory.server) is not defined "
                   "in configs/servers.yaml (did you mean 'local'?) (at $.inventory.server)\n")


def test_a_known_server_or_none_is_fine(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_plan(project, plan_with("inventory:\n  server: other\n"), "a.yaml")
    write_plan(project, plan_with(""), "b.yaml")
    code, out, _ = run_cli(capsys, "validate", "a.yaml", "b.yaml")
    assert (code, out) == (EXIT_OK, "ok: a.yaml\nok: b.yaml\n")


def test_a_server_without_servers_yaml_says_where_it_looked(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(project, plan_with("inventory: {server: local}\n"), "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "--config-dir", "none", "p.yaml")
    assert code == EXIT_INVALID
    assert out == ("p.yaml:3:21: cannot check inventory.server 'local': no servers.yaml in none "
                   "(from --config-dir): create it there (at $.inventory.server)\n")


def test_problems_of_servers_yaml_keep_their_own_place(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "configs" / "servers.yaml").write_text("servers:\n  local: {url: 4}\n")
    write_plan(project, plan_with("inventory: {server: local}\n"), "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "p.yaml")
    assert code == EXIT_INVALID and out.startswith("configs/servers.yaml:2:16: ")


@pytest.mark.parametrize(
    ("models", "col", "fix"),
    [
        ("*Coder*", 19, 'quote it: models: "*Coder*"'),
        ("[Qwen/*, !*Coder*]", 30, 'quote it: models: [Qwen/*, "!*Coder*"]'),
        ("!*Coder*", 13, 'quote it: models: "!*Coder*"'),
        ("'*Coder*'\n    workload:\n      max_tokens: {{ mt }}", 20,
         'quote it: max_tokens: "{{ mt }}"'),
    ],
)
def test_readme_syntax_written_unquoted_gets_the_fix(
    project: Path, capsys: pytest.CaptureFixture[str], models: str, col: int, fix: str
) -> None:
    write_plan(project, plan_with("", models), "p.yaml")
    code, out, err = run_cli(capsys, "validate", "p.yaml")
    assert code == EXIT_INVALID and err == "" and out.count("\n") == 1
    assert out.startswith(f"p.yaml:{5 if col != 20 else 7}:{col}: ") and fix in out


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ("      concurrency: [1, 4]\n      exclude: [{concurrency: 1}, {concurrency: 4}]\n",
         "p.yaml:7:7: the matrix's exclude removes every combination (at $.benchmarks[0].matrix)"),
        ("      arrival: [poisson]\n",
         "p.yaml:7:7: a matrix point sets arrival, which needs rate; this benchmark's jobs do not "
         "use rate (at $.benchmarks[0].matrix)"),
        ("      concurrency: [1]\n      include: [{rate: 2}]\n",
         "p.yaml:7:7: a matrix point sets both concurrency and rate; choose one "
         "(at $.benchmarks[0].matrix)"),
        ("      concurrency: [1]\n      exclude: [{rate: 2}]\n",
         "p.yaml:7:7: exclude names 'rate', not a matrix key (keys: concurrency) "
         "(at $.benchmarks[0].matrix.exclude[0])"),
    ],
)
def test_matrix_problems_that_plan_refuses_are_found_without_an_inventory(
    project: Path, capsys: pytest.CaptureFixture[str], matrix: str, message: str
) -> None:
    write_plan(project, plan_with("") + "    matrix:\n" + matrix, "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "p.yaml")
    assert (code, out) == (EXIT_INVALID, message + "\n")


def test_a_config_file_named_on_the_command_line_that_is_missing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "validate", "nope/servers.yaml", "configs/models.yaml")
    assert code == EXIT_INVALID
    assert out == "nope/servers.yaml: file not found\nok: configs/models.yaml\n"


@pytest.mark.parametrize(("line", "col"), [
    ("    load: {rate: .inf}\n", 18), ("    load: {duration_s: .inf, concurrency: 1}\n", 24),
    ("    workload: {temperature: .nan}\n", 29), ("    slo: {ttft_ms: {p95: .nan}}\n", 26),
])
def test_nan_and_infinity_are_exit_2_where_they_stand(
    project: Path, capsys: pytest.CaptureFixture[str], line: str, col: int
) -> None:
    write_plan(project, plan_with("") + line, "p.yaml")
    for command in (["validate", "p.yaml"], ["plan", "p.yaml"], ["apply", "p.yaml"]):
        code, out, err = run_cli(capsys, *command)
        assert code == EXIT_INVALID, (command, out, err)
        assert f"p.yaml:6:{col}: " in out + err and "is not a finite number" in out + err
    assert not (project / "results").exists()


def test_an_extra_var_that_is_not_finite_is_a_located_type_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(project, plan_with("") + "    load: {rate: '{{ r }}'}\n", "p.yaml")
    code, _, err = run_cli(capsys, "plan", "p.yaml", "-e", "r=.inf")
    assert code == EXIT_INVALID and "p.yaml:6:" in err and "Traceback" not in err


@pytest.mark.parametrize(("line", "message"), [
    ("    load: {rate: 1e-300}\n", "must be at least 0.001, got 1e-300"),
    ("    load: {rate: 1e300}\n", "must be at most 1000000, got 1e+300"),
    ("    load: {duration_s: 1e300, concurrency: 1}\n", "must be at most 604800, got 1e+300"),
    ("    load: {request_timeout_s: 1e300}\n", "must be at most 86400, got 1e+300"),
])
def test_values_the_load_generator_cannot_schedule_are_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    """Finite but absurd: a rate of 1e-300 req/s overflowed the scheduler (exit 70) or waited
    forever; validate accepted it."""
    write_plan(project, plan_with("") + line, "p.yaml")
    for command in (["validate", "p.yaml"], ["apply", "p.yaml"]):
        code, out, err = run_cli(capsys, *command)
        assert code == EXIT_INVALID and message in out + err, (command, out, err)
    assert not (project / "results").exists()


# --- every check apply makes before running, validate makes too (issue 9) ------------------


def prompt_plan(workload: str) -> str:
    return (f"version: 1\nname: t\nbenchmarks:\n  - name: b\n    models: all\n"
            f"    workload: {workload}\n    load: {{requests: 1}}\n")


@pytest.mark.parametrize(("dataset", "line", "message"), [
    ('{"prompt": "a"}\nnot json\n', 2, "not JSON: Expecting value"),
    ('{"prompt": "a"}\n' + "[" * 100_000 + "\n", 2, "nested too deeply"),  # was exit 70
    ('{"messages": []}\n', 1, '"messages" must be a non-empty list'),
    ("\n\n", None, "the dataset has no prompts"),
])
def test_a_dataset_apply_could_not_read_is_exit_2_from_validate(
    dataset: str, line: int | None, message: str, project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (project / "d.jsonl").write_text(dataset)
    write_plan(project, prompt_plan("{dataset: d.jsonl}"), "p.yaml")
    where = f"d.jsonl:{line}: " if line else "d.jsonl: "
    for argv in (["validate", "p.yaml"], ["apply", "p.yaml", "--source", "fallback"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == EXIT_INVALID and message in out + err and where in out + err
    assert not (project / "results").exists()


def test_a_prompt_template_apply_could_not_render_is_exit_2_from_validate(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plan(project, prompt_plan("{template: 'Q{{ i }} {{ nope }}'}"), "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "p.yaml")
    assert code == EXIT_INVALID
    assert out.startswith("p.yaml:6:15: workload.template: ") and "nope" in out
    assert out.rstrip().endswith("(at $.benchmarks[0].workload)")


def test_one_dataset_is_read_once_for_every_point(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "d.jsonl").write_text("oops\n")
    text = prompt_plan("{dataset: d.jsonl}") + "    matrix: {concurrency: [1, 2, 3]}\n"
    write_plan(project, text, "p.yaml")
    code, out, _ = run_cli(capsys, "validate", "p.yaml")
    assert code == EXIT_INVALID and out.count("not JSON") == 1
