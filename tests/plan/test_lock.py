"""Plan locks are checked as plans are: a hand-edited lock (a missing key, a wrong type, a
duplicate job, a slug `../../x`...) is exit 2 from `validate` and from `apply`, at file:line:col
with its data path and what to do. Each example below exited 70 from `apply` before."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli, write_configs, write_plan

from runner.errors import EXIT_INVALID, EXIT_OK, InputError
from runner.jsonfile import load_json_text
from runner.main import main
from runner.plan.lock import lock_problems, read_lock
from runner.schema import validate

PLAN = """\
version: 1
name: locked
benchmarks:
  - name: b
    models: "Qwen/Qwen3-8B, llama3.1:8b"
    workload: {synthetic: {input_tokens: 8}, max_tokens: 4}
    load: {requests: 2}
    matrix: {concurrency: [1, 2]}
    slo: {ttft_ms: {p95: 100}}
"""
Edit = Callable[[dict[str, Any]], object]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A lock made by `runner plan --out` from the fallback inventory, and its data."""
    folder = tmp_path_factory.mktemp("lock")
    write_configs(folder / "configs", "http://127.0.0.1:9")
    plan = write_plan(folder, PLAN)
    lock = folder / "made.json"
    assert main(["plan", str(plan), "--source", "fallback", "--out", str(lock)]) == EXIT_OK
    return folder, json.loads(lock.read_text())


def edited(made: tuple[Path, dict[str, Any]], edit: Edit, name: str = "hand.json") -> Path:
    folder, data = made
    changed = copy.deepcopy(data)
    edit(changed)
    path = folder / name
    path.write_text(json.dumps(changed, indent=1))
    return path


def test_a_lock_plan_writes_passes_the_schema_and_the_checks(
    made: tuple[Path, dict[str, Any]],
) -> None:
    doc = load_json_text((made[0] / "made.json").read_text(), "made.json")
    assert validate(doc, "lock") == [] and lock_problems(doc) == []


def _job(i: int, key: str, value: Any) -> Edit:
    return lambda d: d["jobs"][i].__setitem__(key, value)


def _param(i: int, key: str, value: Any = None) -> Edit:
    params = lambda d: d["jobs"][i]["params"]  # noqa: E731
    if value is None:
        return lambda d: params(d).pop(key)
    return lambda d: params(d).__setitem__(key, value)


EXAMPLES: list[tuple[str, Edit, str, str]] = [
    ("no plan", lambda d: d.pop("plan"), "missing required key 'plan'", "$"),
    ("no jobs", lambda d: d.pop("jobs"), "missing required key 'jobs'", "$"),
    ("no options", lambda d: d.pop("options"), "missing required key 'options'", "$"),
    ("no server", lambda d: d["options"].pop("server"), "missing required key 'server'",
     "$.options"),
    ("no benchmarks", lambda d: d.pop("benchmarks"), "missing required key 'benchmarks'", "$"),
    ("plan is text", lambda d: d.__setitem__("plan", "p"), 'expected a mapping, got "p"',
     "$.plan"),
    ("no sha256", lambda d: d["plan"].pop("sha256"), "missing required key 'sha256'", "$.plan"),
    ("bad sha256", lambda d: d["plan"].__setitem__("sha256", "x"), "must be the plan file's sha",
     "$.plan.sha256"),
    ("plan name ../x", lambda d: d["plan"].__setitem__("name", "../x"),
     "must start with a letter or digit", "$.plan.name"),
    ("plan name index.sqlite", lambda d: d["plan"].__setitem__("name", "index.sqlite"),
     "collides with results/index.sqlite", "$.plan.name"),
    ("jobs is a mapping", lambda d: d.__setitem__("jobs", {}), "expected a list, got {}",
     "$.jobs"),
    ("a job is text", lambda d: d["jobs"].__setitem__(0, "x"), 'expected a mapping, got "x"',
     "$.jobs[0]"),
    ("a duplicate job", lambda d: d["jobs"].append(copy.deepcopy(d["jobs"][0])),
     "duplicate job id 'b/Qwen/Qwen3-8B/concurrency=1' (first on line ", "$.jobs[4].id"),
    ("a slug ../../x", _job(0, "slug", "../../x"), "must be one file name", "$.jobs[0].slug"),
    ("a slug that is a number", _job(0, "slug", 3), "expected a string, got 3", "$.jobs[0].slug"),
    ("a slug ending in .", _job(0, "slug", "a."), "slug must not end with '.'",
     "$.jobs[0].slug"),
    ("slugs equal but for case", lambda d: d["jobs"][1].__setitem__(
        "slug", d["jobs"][0]["slug"].upper()), "duplicate job slug", "$.jobs[1].slug"),
    ("no job id", lambda d: d["jobs"][0].pop("id"), "missing required key 'id'", "$.jobs[0]"),
    ("no params", lambda d: d["jobs"][0].pop("params"), "missing required key 'params'",
     "$.jobs[0]"),
    ("params is text", _job(0, "params", "x"), 'expected a mapping, got "x"',
     "$.jobs[0].params"),
    ("no prompt source", _param(0, "input_tokens"),
     "params need exactly one prompt source (input_tokens, dataset, template, trace); found none",
     "$.jobs[0].params"),
    ("a modifier without its param", lambda d: d["jobs"][0]["params"].__setitem__(
        "arrival", "constant"), "arrival needs rate, which these params do not set",
     "$.jobs[0].params.arrival"),
    ("concurrency is text", _param(0, "concurrency", "x"), 'expected an integer, got "x"',
     "$.jobs[0].params.concurrency"),
    ("concurrency 0", _param(0, "concurrency", 0), "must be at least 1, got 0",
     "$.jobs[0].params.concurrency"),
    ("rate and concurrency", _param(0, "rate", 1),
     "params need exactly one load mode (concurrency, rate, replay); found concurrency and rate",
     "$.jobs[0].params"),
    ("no way to stop", _param(0, "requests"), "params need requests or duration_s",
     "$.jobs[0].params"),
    ("an unknown param", _param(0, "synthetic", {"input_tokens": 3}), "unknown key 'synthetic'",
     "$.jobs[0].params.synthetic"),
    ("an unknown benchmark", _job(0, "benchmark", "zz"),
     "benchmark 'zz' is not one of the lock's benchmarks (b)", "$.jobs[0].benchmark"),
    ("a model that is a number", _job(0, "model", 5), "expected a string, got 5",
     "$.jobs[0].model"),
    ("slo is text", lambda d: d["benchmarks"][0].__setitem__("slo", "x"),
     'expected a mapping, got "x"', "$.benchmarks[0].slo"),
    ("retries is text", lambda d: d["benchmarks"][0].__setitem__("retries", "x"),
     'expected an integer, got "x"', "$.benchmarks[0].retries"),
    ("variables is a list", lambda d: d.__setitem__("variables", [1]),
     "expected a mapping, got [1]", "$.variables"),
    ("totals is text", lambda d: d.__setitem__("totals", "x"), 'expected a mapping, got "x"',
     "$.totals"),
    ("a plan path with a NUL", lambda d: d["plan"].__setitem__("path", "p\0.yaml"),
     "must be a file path without control characters", "$.plan.path"),
    ("an api_key in extra_body", _param(0, "extra_body", {"api_key": "sk-9"}),
     "key 'api_key' is named like a credential", "$.jobs[0].params.extra_body.api_key"),
    ("extra_body sets the model", _param(0, "extra_body", {"model": "other"}),
     "extra_body.model: runner sets model itself", "$.jobs[0].params.extra_body.model"),
    ("a misplaced slo key", lambda d: d["benchmarks"][0].__setitem__("ttft_ms", {"p95": 3}),
     "unknown key 'ttft_ms' (it belongs under 'slo:')", "$.benchmarks[0].ttft_ms"),
    # found by tests/commands/test_fuzz.py: the hint looked the plan schema's $ref up in the lock's
    ("an unknown key in an slo", lambda d: d["benchmarks"][0]["slo"].__setitem__("ttft", {}),
     "unknown key 'ttft' (did you mean 'ttft_ms'?)", "$.benchmarks[0].slo.ttft"),
    # a lock's search ran unchecked: concurrency 1.5 ran as 1
    ("a fractional concurrency search", _param(0, "search", {"over": "concurrency", "from": 1.5,
                                                             "to": 8}),
     "search.from must be a whole number of streams", "$.jobs[0].params.search.from"),
    ("a search and a sweep", lambda d: d["jobs"][0]["params"].update(
        {"search": {"over": "rate", "from": 1, "to": 8}, "sweep": {"rates": 2, "concurrency": 2}}),
     "a job runs a search or a sweep, not both", "$.jobs[0].params.sweep"),
    # trials of 512 streams sent 12 requests: the search named a capacity never in flight
    ("a search above its requests", lambda d: d["jobs"][0]["params"].update(
        {"search": {"over": "concurrency", "from": 1, "to": 512}, "requests": 12}),
     "search.to (512 streams) is above the 12 requests", "$.jobs[0].params.search.to"),
    ("a sweep above its requests", lambda d: d["jobs"][0]["params"].update(
        {"sweep": {"rates": 2}, "requests": 12}),
     "sweep.concurrency (64 streams) is above the 12 requests", "$.jobs[0].params.sweep"),
]


@pytest.mark.parametrize(("edit", "message", "path"), [e[1:] for e in EXAMPLES],
                         ids=[e[0] for e in EXAMPLES])
def test_a_hand_edited_lock_is_exit_2_where_it_is_wrong(
    edit: Edit, message: str, path: str, made: tuple[Path, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock = edited(made, edit)
    code, out, _ = run_cli(capsys, "validate", str(lock))
    assert code == EXIT_INVALID
    first = out.splitlines()[0]
    assert first.startswith(f"{lock}:") and message in first and first.endswith(f"(at {path})")
    assert out.splitlines()[-1] == (f"{lock}: fix the lock, or make a new one with "
                                    "`runner plan PLAN --out FILE`")
    code, _, err = run_cli(capsys, "apply", str(lock), "--results", str(made[0] / "results"))
    assert code == EXIT_INVALID and err.splitlines()[0] == f"error: {first}"
    assert "sk-9" not in out + err
    assert not (made[0] / "results").exists()


def test_every_problem_of_a_lock_is_reported_at_once_in_order(
    made: tuple[Path, dict[str, Any]],
) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["jobs"][0]["slug"] = "../../x"
        d["jobs"][3]["params"]["rate"] = 2
        d["options"].pop("server")

    lock = edited(made, edit)
    with pytest.raises(InputError) as caught:
        read_lock(str(lock))
    paths = [p.where.path for p in caught.value.problems]
    assert paths == ["$.jobs[0].slug", "$.jobs[3].params", "$.options", None]
    lines = [p.where.line or 0 for p in caught.value.problems[:-1]]
    assert lines == sorted(lines) and lines[0] > 1


def test_validate_checks_the_locked_server_and_datasets_as_apply_would(
    made: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str],
) -> None:
    folder = made[0]
    (folder / "bad.jsonl").write_text('{"prompt": "hi"}\nnot json\n')

    def edit(d: dict[str, Any]) -> None:
        d["options"]["server"] = "elsewhere"
        params = d["jobs"][2]["params"]
        for key in ("input_tokens", "input_tokens_stddev"):
            params.pop(key)
        params["dataset"] = "bad.jsonl"

    lock = edited(made, edit)
    code, out, _ = run_cli(capsys, "validate", str(lock))
    assert code == EXIT_INVALID
    assert "server 'elsewhere' (from the lock's options.server) is not defined in" in out
    assert f"{folder / 'bad.jsonl'}:2: not JSON: " in out
    code, _, err = run_cli(capsys, "apply", str(lock), "--results", str(folder / "results"))
    assert code == EXIT_INVALID and "server 'elsewhere'" in err


@pytest.mark.parametrize(("text", "message"), [
    ("[", "invalid JSON: Expecting value"),
    ("[1]", "not a plan lock of version 1"),
    ('{"lock_version": 2}', "not a plan lock of version 1"),
    ('{"lock_version": 1, "lock_version": 1}', "duplicate key 'lock_version'"),
    ("[" * 100_000, "JSON nested more than 64 levels deep"),
])
def test_what_is_not_a_lock_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    lock = tmp_path / "l.json"
    lock.write_text(text)
    with pytest.raises(InputError, match=message):
        read_lock(str(lock))


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_lock_holding_nan_or_infinity_is_refused_where_it_stands(
    tmp_path: Path, constant: str,
) -> None:
    lock = tmp_path / "l.json"
    lock.write_text(f'{{"lock_version": 1, "plan": {{"path": "p.yaml"}},\n "rate": {constant}}}')
    with pytest.raises(InputError) as caught:
        read_lock(str(lock))
    assert caught.value.lines() == [
        f"{lock}:2:10: {constant} is not a finite number: give a real value (e.g. 10 or 0.5); "
        "NaN and infinity cannot be measured against (at $.rate)"]


def test_whole_floats_where_the_lock_wants_integers_become_ints(
    made: tuple[Path, dict[str, Any]],
) -> None:
    """retries: 1.0 is a valid JSON Schema integer, and range() refused it: apply exited 70."""
    def edit(d: dict[str, Any]) -> None:
        d["benchmarks"][0]["retries"] = 1.0
        d["jobs"][0]["params"]["concurrency"] = -0.0 + 2
        d["jobs"][0]["params"]["temperature"] = 1.0  # a number stays a float

    lock = read_lock(str(edited(made, edit)))
    assert type(lock["benchmarks"][0]["retries"]) is int
    params = lock["jobs"][0]["params"]
    assert type(params["concurrency"]) is int and type(params["temperature"]) is float


@pytest.mark.parametrize("dataset", ["/dev/zero", "."])
def test_a_locked_dataset_that_is_no_regular_file_is_refused_without_reading_it(
    dataset: str, made: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str],
) -> None:
    """validate builds every job's prompts as apply does; /dev/zero would never end."""
    def edit(d: dict[str, Any]) -> None:
        params = d["jobs"][0]["params"]
        for key in ("input_tokens", "input_tokens_stddev"):
            params.pop(key)
        params["dataset"] = dataset

    lock = edited(made, edit)
    code, out, _ = run_cli(capsys, "validate", str(lock))
    assert code == EXIT_INVALID and "the dataset must be a" in out
