"""Selection: tags, on_empty, --limit, job counts (pure, no I/O beyond a plan file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import InputError, InventoryError
from runner.inventory.listing import Inventory, Model
from runner.plan.planfile import Benchmark, load_plan
from runner.plan.selection import (
    Options,
    inventory_notes,
    select,
    split_tags,
    tag_skip_reason,
    unknown_tags,
)
from runner.plan.totals import totals, totals_text

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


@pytest.mark.parametrize(("limit", "hint"), [
    ("qwen/qwen3-8b", "did you mean Qwen/Qwen3-8B?"),
    ("org/modle", "did you mean org/model or org-model?"),
    ("zzz", "see `runner inventory` for the model ids"),
])
def test_a_limit_matching_nothing_says_what_was_meant(tmp_path: Path, limit: str,
                                                      hint: str) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: all\n")))
    with pytest.raises(InventoryError) as info:
        select(plan, IDS, GROUPS, Options(limit=limit))
    assert str(info.value) == f"--limit '{limit}' matches no model of the inventory ({hint})"


TAGGED = ("  - name: lat\n    models: all\n    tags: [latency, nightly]\n"
          "  - name: tput\n    models: all\n    tags: [throughput]\n")


@pytest.mark.parametrize(("tags", "skip", "warnings"), [
    (("latency",), (), []),
    (("all", "always", "never"), (), []),
    (("latncy",), (), ["--tags 'latncy': no benchmark has this tag (did you mean latency?)"]),
    ((), ("throughput", "thruput"),
     ["--skip-tags 'thruput': no benchmark has this tag (did you mean throughput?)"]),
    (("zzz",), (), ["--tags 'zzz': no benchmark has this tag "
                    "(tags in this plan: latency, nightly, throughput)"]),
])
def test_a_tag_no_benchmark_has_is_a_warning_with_did_you_mean(
    tmp_path: Path, tags: tuple[str, ...], skip: tuple[str, ...], warnings: list[str]
) -> None:
    plan = load_plan(str(plan_file(tmp_path, TAGGED)))
    assert unknown_tags(plan, Options(tags=tags, skip_tags=skip)) == warnings


@pytest.mark.parametrize("options", [
    Options(tags=("latncy",)), Options(skip_tags=("latency", "throughput")),
    Options(tags=("latency",), skip_tags=("nightly",)),
])
def test_a_selection_that_leaves_no_job_is_an_inventory_error(tmp_path: Path,
                                                              options: Options) -> None:
    plan = load_plan(str(plan_file(tmp_path, TAGGED)))
    with pytest.raises(InventoryError) as info:
        select(plan, IDS, GROUPS, options)
    first = info.value.problems[0]
    assert first.message.startswith("the selection leaves no job to run (lat: ")
    assert first.where.file == plan.path
    typo = [p.message for p in info.value.problems[1:]]
    assert typo == (["--tags 'latncy': no benchmark has this tag (did you mean latency?)"]
                    if options.tags == ("latncy",) else [])


def test_benchmarks_skipped_on_empty_leave_no_job_either(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: gpt\n"
                                              "    on_empty: skip\n")))
    with pytest.raises(InventoryError, match=r"no job to run \(a: no models matched"):
        select(plan, IDS, GROUPS, Options())


def test_totals_text_is_the_plan_views_words(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, TAGGED)))
    chosen = select(plan, IDS, GROUPS, Options(tags=("latency",)))
    assert totals_text(totals(chosen)) == "2 benchmarks (1 skipped), 5 models, 5 jobs, 500 requests"


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


# --- mode-aware selection and wildcard expansions (issue 12) ----------------------------------

def _inventory(*models: Model, placeholders: tuple[str, ...] = ()) -> Inventory:
    return Inventory("live", "s", "http://p", "2026-11-24T23:59:01Z", None, models, placeholders)


MIXED = _inventory(Model("c", "chat"), Model("t", "completion"), Model("e", "embedding"),
                   Model("u"), Model("openai/x", "chat", wildcard_expansion=True))


@pytest.mark.parametrize(
    ("workload", "models", "skipped"),
    [
        ("", ["c", "u"], [("e", "embedding"), ("t", "completion")]),
        ("    workload: {endpoint: completions}\n", ["c", "t", "u"], [("e", "embedding")]),
        ("    matrix: {endpoint: [chat, completions]}\n", ["c", "u"],
         [("e", "embedding"), ("t", "completion")]),
    ],
)
def test_a_benchmark_selects_the_modes_its_endpoint_fits(
    tmp_path: Path, workload: str, models: list[str], skipped: list[tuple[str, str]]
) -> None:
    plan = load_plan(str(plan_file(tmp_path, f"  - name: a\n    models: all\n{workload}")))
    [chosen] = select(plan, MIXED.ids(), {}, Options(), MIXED)
    assert list(chosen.models) == models
    assert list(chosen.mode_skipped) == skipped
    assert chosen.expansions_left_out == 1
    assert chosen.to_json()["skipped_by_mode"] == [{"id": i, "mode": m} for i, m in skipped]
    notes = inventory_notes(chosen)
    assert notes[0] == f"skipped (mode {skipped[0][1]}): {skipped[0][0]}"
    assert notes[-1].startswith("1 wildcard expansion left out")


def test_the_plan_switch_includes_expansions(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: p\ninventory: {include_wildcard_expansions: true}\n"
                    "benchmarks:\n  - name: a\n    models: 'openai/*'\n")
    [chosen] = select(load_plan(str(path)), MIXED.ids(), {}, Options(), MIXED)
    assert (chosen.models, chosen.expansions_left_out) == (("openai/x",), 0)


def test_only_other_modes_is_exit_3_saying_the_modes(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: mode=embedding\n")))
    with pytest.raises(InventoryError) as info:
        select(plan, MIXED.ids(), {}, Options(), MIXED)
    [problem] = info.value.problems
    assert "matches only models whose mode does not fit its endpoint (embedding)" in str(problem)
    assert problem.where.line == 5


@pytest.mark.parametrize(
    ("inv", "cause"),
    [
        (_inventory(placeholders=("all-team-models",)),
         "listed only LiteLLM's placeholder 'all-team-models': the key's team grants"),
        (_inventory(Model("openai/x", wildcard_expansion=True)),
         "lists only 1 ids expanded from wildcard routes"),
    ],
)
def test_an_empty_inventory_says_why_instead_of_blaming_the_pattern(
    tmp_path: Path, inv: Inventory, cause: str
) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: all\n")))
    with pytest.raises(InventoryError) as info:
        select(plan, inv.ids(), {}, Options(), inv)
    assert cause in str(info.value) and "check its models pattern" not in str(info.value)


def test_on_empty_skip_says_the_modes_emptied_it(tmp_path: Path) -> None:
    plan = load_plan(str(plan_file(tmp_path, "  - name: a\n    models: e\n    on_empty: skip\n"
                                              "  - name: b\n    models: c\n")))
    skipped, kept = select(plan, MIXED.ids(), {}, Options(), MIXED)
    assert skipped.skipped == "no model of a mode its endpoint takes (on_empty: skip)"
    assert skipped.mode_skipped == (("e", "embedding"),) and kept.models == ("c",)
