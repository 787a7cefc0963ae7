"""Selection: tags, on_empty, --limit, job counts (pure, no I/O beyond a plan file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import InputError, InventoryError
from runner.plan.planfile import Benchmark, load_plan
from runner.plan.selection import Options, select, split_tags, tag_skip_reason

IDS = ["Qwen/Qwen3-8B", "Qwen/Qwen3-8B-FP8", "llama3.1:8b", "org/model", "org-model"]
GROUPS = {"quant": ("*-FP8",)}


@pytest.mark.parametrize(
    ("own", "tags", "skip", "reason"),
    [
        ((), (), (), None),
        (("a",), ("a",), (), None),
        (("a",), ("b",), (), "not selected by --tags"),
        ((), ("b",), (), "not selected by --tags"),
        (("always",), ("b",), (), None),
        (("always",), (), ("always",), "skipped by --skip-tags"),
        (("a", "b"), ("a",), ("b",), "skipped by --skip-tags"),
        (("never",), (), (), "tagged never"),
        (("never", "q"), ("q",), (), None),
        (("never", "q"), ("all",), (), "tagged never"),
        (("never",), ("never",), (), None),
        (("a",), ("all",), (), None),
    ],
)
def test_tag_rules(own: tuple[str, ...], tags: tuple[str, ...], skip: tuple[str, ...],
                   reason: str | None) -> None:
    bench = Benchmark(name="b", index=0, models="all", tags=own)
    assert tag_skip_reason(bench, tags, skip) == reason


@pytest.mark.parametrize(("text", "tags"), [(None, ()), ("", ()), ("a, b,,c ", ("a", "b", "c"))])
def test_split_tags(text: str | None, tags: tuple[str, ...]) -> None:
    assert split_tags(text) == tags


def plan_file(tmp_path: Path, benchmarks: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"version: 1\nname: p\nbenchmarks:\n{benchmarks}")
    return path


def test_jobs_are_model_major_sorted_and_slugs_never_collide(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: 'org*'\n"
                                              "    matrix: {concurrency: [2, 1]}\n")))
    [chosen] = select(plan, IDS, GROUPS, Options())
    assert [j.id for j in chosen.jobs] == [
        "a/org-model/concurrency=2", "a/org-model/concurrency=1",
        "a/org/model/concurrency=2", "a/org/model/concurrency=1",
    ]
    slugs = [j.slug for j in chosen.jobs]
    assert len(set(slugs)) == 4 and not any("/" in s or s.startswith(".") for s in slugs)


def test_every_empty_benchmark_is_reported_at_once(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: x\n"
                                              "  - name: b\n    models: y\n")))
    with pytest.raises(InventoryError) as info:
        select(plan, IDS, GROUPS, Options())
    assert [p.where.line for p in info.value.problems] == [5, 7]


def test_limit_intersects_and_skips_emptied_benchmarks(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: 'Qwen/*'\n"
                                              "  - name: b\n    models: 'org*'\n")))
    a, b = select(plan, IDS, GROUPS, Options(limit="!@quant"))
    assert a.models == ("Qwen/Qwen3-8B",) and b.models == ("org-model", "org/model")
    a, b = select(plan, IDS, GROUPS, Options(limit="org/*"))
    assert a.skipped == "no models left after --limit"
    assert [j.model for j in b.jobs] == ["org/model"]
    with pytest.raises(InventoryError, match="--limit 'gpt' matches no model"):
        select(plan, IDS, GROUPS, Options(limit="gpt"))


def test_max_jobs_is_checked_before_expansion(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: all\n"
                                              "    matrix: {concurrency: [1, 2, 3]}\n")))
    with pytest.raises(InputError, match="15 jobs, more than --max-jobs 14"):
        select(plan, IDS, GROUPS, Options(max_jobs=14))
    assert len(select(plan, IDS, GROUPS, Options(max_jobs=15))[0].jobs) == 15


def test_matrix_point_with_rival_settings_is_an_input_error(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: all\n"
                                              "    matrix: {concurrency: [1], rate: [2]}\n")))
    with pytest.raises(InputError, match="sets both concurrency and rate") as info:
        select(plan, IDS, GROUPS, Options())
    assert info.value.problems[0].where.line == 6


def test_exclude_removing_everything_is_an_input_error(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: all\n"
                                              "    matrix:\n      concurrency: [1]\n"
                                              "      exclude: [{concurrency: 1}]\n")))
    with pytest.raises(InputError, match="removes every combination"):
        select(plan, IDS, GROUPS, Options())
