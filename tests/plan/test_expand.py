from __future__ import annotations

import json
import re
from typing import Any

import pytest

from runner.errors import EXIT_INVALID, InputError
from runner.plan.expand import (
    SLUG_MAX,
    Job,
    check_unique,
    count_jobs,
    enforce_max_jobs,
    expand_jobs,
    expand_matrix,
    format_value,
    job_id,
    point_label,
    slugify,
)

# GitHub docs, "Expanding or adding matrix configurations" (matrix-include.md), verbatim.
GITHUB_INCLUDE_EXAMPLE = {
    "fruit": ["apple", "pear"],
    "animal": ["cat", "dog"],
    "include": [
        {"color": "green"},
        {"color": "pink", "animal": "cat"},
        {"fruit": "apple", "shape": "circle"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ],
}
GITHUB_INCLUDE_RESULT = [
    {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
    {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
    {"fruit": "pear", "animal": "cat", "color": "pink"},
    {"fruit": "pear", "animal": "dog", "color": "green"},
    {"fruit": "banana"},
    {"fruit": "banana", "animal": "cat"},
]

# GitHub docs, "Excluding matrix configurations" (matrix-exclude.md): 12 - 1 - 2 = 9 jobs.
GITHUB_EXCLUDE_EXAMPLE = {
    "os": ["macos-latest", "windows-latest"],
    "version": [12, 14, 16],
    "environment": ["staging", "production"],
    "exclude": [
        {"os": "macos-latest", "version": 12, "environment": "production"},
        {"os": "windows-latest", "version": 16},
    ],
}
GITHUB_EXCLUDE_RESULT = [
    {"os": "macos-latest", "version": 12, "environment": "staging"},
    {"os": "macos-latest", "version": 14, "environment": "staging"},
    {"os": "macos-latest", "version": 14, "environment": "production"},
    {"os": "macos-latest", "version": 16, "environment": "staging"},
    {"os": "macos-latest", "version": 16, "environment": "production"},
    {"os": "windows-latest", "version": 12, "environment": "staging"},
    {"os": "windows-latest", "version": 12, "environment": "production"},
    {"os": "windows-latest", "version": 14, "environment": "staging"},
    {"os": "windows-latest", "version": 14, "environment": "production"},
]

SAFE_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,-]*$")


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        pytest.param(None, [{}], id="none"),
        pytest.param({}, [{}], id="empty"),
        pytest.param({"include": []}, [{}], id="empty-include"),
        pytest.param({"a": [1, 2]}, [{"a": 1}, {"a": 2}], id="one-key"),
        pytest.param(
            {"b": [1, 2], "a": ["x", "y"]},
            [{"b": 1, "a": "x"}, {"b": 1, "a": "y"}, {"b": 2, "a": "x"}, {"b": 2, "a": "y"}],
            id="first-key-slowest",
        ),
        pytest.param(GITHUB_INCLUDE_EXAMPLE, GITHUB_INCLUDE_RESULT, id="github-include-docs"),
        pytest.param(GITHUB_EXCLUDE_EXAMPLE, GITHUB_EXCLUDE_RESULT, id="github-exclude-docs"),
        pytest.param(
            # GitHub docs "Expanding existing matrix configurations": npm joins one job only.
            {
                "os": ["windows-latest", "ubuntu-latest"],
                "node": [12, 14, 16],
                "include": [{"os": "windows-latest", "node": 16, "npm": 6}],
            },
            [
                {"os": "windows-latest", "node": 12},
                {"os": "windows-latest", "node": 14},
                {"os": "windows-latest", "node": 16, "npm": 6},
                {"os": "ubuntu-latest", "node": 12},
                {"os": "ubuntu-latest", "node": 14},
                {"os": "ubuntu-latest", "node": 16},
            ],
            id="github-expand-docs",
        ),
        pytest.param(
            # GitHub docs "Adding matrix configurations": 9 + 1 = 10 jobs.
            {
                "os": ["macos-latest", "windows-latest", "ubuntu-latest"],
                "version": [12, 14, 16],
                "include": [{"os": "windows-latest", "version": 17}],
            },
            [
                {"os": os, "version": v}
                for os in ["macos-latest", "windows-latest", "ubuntu-latest"]
                for v in [12, 14, 16]
            ]
            + [{"os": "windows-latest", "version": 17}],
            id="github-add-docs",
        ),
        pytest.param(
            # GitHub docs: with no matrix variables every include entry runs on its own.
            {
                "include": [
                    {"site": "production", "datacenter": "site-a"},
                    {"site": "staging", "datacenter": "site-b"},
                ]
            },
            [
                {"site": "production", "datacenter": "site-a"},
                {"site": "staging", "datacenter": "site-b"},
            ],
            id="github-include-only-docs",
        ),
        pytest.param(
            {"include": [{"a": 1}, {"a": 1, "b": 2}]},
            [{"a": 1}, {"a": 1, "b": 2}],
            id="include-only-never-merges",
        ),
        pytest.param(
            {"a": [1, 2], "b": [3, 4], "exclude": [{"a": 1}]},
            [{"a": 2, "b": 3}, {"a": 2, "b": 4}],
            id="exclude-partial",
        ),
        pytest.param(
            {"a": [1, 2], "exclude": [{"a": 3}]},
            [{"a": 1}, {"a": 2}],
            id="exclude-no-match",
        ),
        pytest.param({"a": [1, 2], "exclude": [{"a": 1}, {"a": 2}]}, [], id="exclude-all"),
        pytest.param(
            {"a": [1, 2], "exclude": [{"a": 1}, {"a": 2}], "include": [{"a": 1, "x": True}]},
            [{"a": 1, "x": True}],
            id="include-after-exclude-adds-back",
        ),
        pytest.param(
            {"a": [1, 2], "exclude": [{"a": 1}, {"a": 2}], "include": [{"x": 1}]},
            [{"x": 1}],
            id="exclude-all-then-include-appends",
        ),
        pytest.param(
            {"a": [1, 2], "include": [{"x": 1}, {"x": 2, "a": 2}]},
            [{"a": 1, "x": 1}, {"a": 2, "x": 2}],
            id="include-overwrites-added-value",
        ),
        pytest.param(
            {"a": [1, 2], "include": [{"b": "z", "c": 0}, {"a": 1, "c": 5}]},
            [{"a": 1, "b": "z", "c": 5}, {"a": 2, "b": "z", "c": 0}],
            id="added-keys-keep-first-position",
        ),
        pytest.param(
            {"a": [1], "include": [{"a": True, "x": 1}]},
            [{"a": 1}, {"a": True, "x": 1}],
            id="true-is-not-1",
        ),
        pytest.param(
            {"a": [1, 1]},
            [{"a": 1}, {"a": 1}],
            id="duplicate-values-kept-for-check-unique",
        ),
        pytest.param(
            {"a": [{"k": 1}, [1, 2]], "include": [{"a": {"k": 1}, "n": 1}]},
            [{"a": {"k": 1}, "n": 1}, {"a": [1, 2]}],
            id="structured-values",
        ),
    ],
)
def test_expand_matrix(matrix: dict[str, Any] | None, expected: list[dict[str, Any]]) -> None:
    assert expand_matrix(matrix) == expected


@pytest.mark.parametrize(
    ("matrix", "expected_keys"),
    [
        (GITHUB_INCLUDE_EXAMPLE, [["fruit", "animal", "color", "shape"]] * 2),
        ({"z": [1], "a": [2], "include": [{"m": 0}, {"b": 0}]}, [["z", "a", "m", "b"]]),
    ],
)
def test_expand_matrix_key_order(matrix: dict[str, Any], expected_keys: list[list[str]]) -> None:
    points = expand_matrix(matrix)
    assert [list(p) for p in points[: len(expected_keys)]] == expected_keys


def test_expand_matrix_does_not_mutate_input() -> None:
    matrix = json.loads(json.dumps(GITHUB_INCLUDE_EXAMPLE))
    expand_matrix(matrix)
    assert matrix == GITHUB_INCLUDE_EXAMPLE


@pytest.mark.parametrize(
    ("matrix", "message", "path"),
    [
        ({"a": []}, "matrix key 'a' must be a non-empty list", "$.b[0].matrix.a"),
        ({"a": 8}, "write [8] for one", "$.b[0].matrix.a"),
        ({"a": "x"}, "non-empty list", "$.b[0].matrix.a"),
        ({"a": [1], "exclude": {"a": 1}}, "exclude must be a list", "$.b[0].matrix.exclude"),
        ({"a": [1], "include": [{"a": 1}, 3]}, "must be a mapping", "$.b[0].matrix.include[1]"),
        ({"a": [1], "exclude": [{}]}, "at least one matrix key", "$.b[0].matrix.exclude[0]"),
        ({"a": [1], "exclude": [{"b": 1}]}, "'b', not a matrix key (keys: a)", None),
        ({"exclude": [{"a": 1}], "include": [{"a": 1}]}, "(keys: none)", None),
    ],
)
def test_expand_matrix_errors(matrix: dict[str, Any], message: str, path: str | None) -> None:
    with pytest.raises(InputError) as info:
        expand_matrix(matrix, path="$.b[0].matrix")
    assert message in str(info.value)
    assert info.value.exit_code == EXIT_INVALID
    if path is not None:
        assert info.value.problems[0].where.path == path


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (8, "8"),
        (-3, "-3"),
        (0.7, "0.7"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1.0, "1.0"),
        (1e-05, "1e-05"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ("Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),
        ("", ""),
        ({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}'),
        (["é"], '["é"]'),
    ],
)
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("benchmark", "model", "point", "expected"),
    [
        (
            "latency",
            "Qwen/Qwen3-8B",
            {"concurrency": 8, "max_tokens": 256},
            "latency/Qwen/Qwen3-8B/concurrency=8,max_tokens=256",
        ),
        (
            "latency",
            "Qwen/Qwen3-8B",
            {"max_tokens": 256, "concurrency": 8},
            "latency/Qwen/Qwen3-8B/concurrency=8,max_tokens=256",
        ),
        ("smoke", "llama3.1:8b", {}, "smoke/llama3.1:8b"),
        (
            "t",
            "m",
            {"temperature": 0.0, "stream": True, "seed": None},
            "t/m/seed=null,stream=true,temperature=0.0",
        ),
    ],
)
def test_job_id(benchmark: str, model: str, point: dict[str, Any], expected: str) -> None:
    assert job_id(benchmark, model, point) == expected


def test_point_label_empty() -> None:
    assert point_label({}) == ""


@pytest.mark.parametrize(
    "text",
    [
        "../x",
        "..",
        ".",
        "",
        "/etc/passwd",
        "a\\b",
        "a/../../b",
        ".hidden",
        "-rf",
        "___",
        "nul\x00byte",
        "line\nbreak\ttab\x1b[31m",
        "Qwen/Qwen3-Coder-30B-A3B-Instruct",
        "模型/通义千问",
        "café/naïve",
        "emoji/🚀",
        "\ud800lone-surrogate",
        "CON",
        "a" * 5000,
        "latency/" + "x/" * 400 + "concurrency=8",
    ],
)
def test_slugify_is_safe(text: str) -> None:
    slug = slugify(text)
    assert SAFE_SLUG.match(slug), slug
    assert len(slug) <= SLUG_MAX
    assert slug not in {".", ".."}
    assert slugify(text) == slug  # deterministic


@pytest.mark.parametrize(
    ("text", "readable"),
    [
        (
            "latency/Qwen/Qwen3-8B/concurrency=8,max_tokens=256",
            "latency_Qwen_Qwen3-8B_concurrency=8,max_tokens=256-",
        ),
        ("../x", "x-"),
        ("/etc/passwd", "etc_passwd-"),
        ("a  //  b", "a_b-"),
        ("..", ""),
    ],
)
def test_slugify_is_readable(text: str, readable: str) -> None:
    slug = slugify(text)
    assert slug[: len(slug) - 12] == readable
    assert re.fullmatch(r"[0-9a-f]{12}", slug[-12:])


@pytest.mark.parametrize(
    "texts",
    [
        [
            "org/model",
            "org-model",
            "org_model",
            "org model",
            "org\\model",
            "org.model",
            "org:model",
        ],
        ["Org/Model", "org/model", "ORG/MODEL"],
        ["a" * 200 + "x", "a" * 200 + "y"],
        ["x", "x ", " x", "x\x00"],
    ],
)
def test_slugify_near_duplicates_differ(texts: list[str]) -> None:
    slugs = [slugify(t) for t in texts]
    assert len({s.lower() for s in slugs}) == len(texts)


def test_slugify_no_collision_on_large_adversarial_set() -> None:
    separators = ["/", "-", "_", " ", "\\", ".", ":", "@", "//", "__", "/.", "\u2215", "\u00a0"]
    ids = {
        f"{bench}{sep}{org}{sep}Model-{n}B{suffix}"
        for bench in ["latency", "Latency"]
        for sep in separators
        for org in ["qwen", "Qwen", "QWEN"]
        for n in range(75)
        for suffix in ["", "-FP8", "_fp8", ":fp8", "/fp8", ".", " ", "\x00", "é"]
    }
    ids |= {"x" * 300 + str(i) for i in range(500)}
    assert len(ids) >= 50_000
    slugs = {slugify(i) for i in ids}
    assert len(slugs) == len(ids)
    assert len({s.lower() for s in slugs}) == len(ids)  # case-insensitive file systems too
    assert all(SAFE_SLUG.match(s) and len(s) <= SLUG_MAX for s in slugs)


def test_expand_jobs_order_ids_and_params() -> None:
    points = expand_matrix({"concurrency": [1, 8], "max_tokens": [256]})
    jobs = expand_jobs("latency", ["a/m1", "b/m2"], points, {"max_tokens": 64, "requests": 10})
    assert [j.id for j in jobs] == [
        "latency/a/m1/concurrency=1,max_tokens=256",
        "latency/a/m1/concurrency=8,max_tokens=256",
        "latency/b/m2/concurrency=1,max_tokens=256",
        "latency/b/m2/concurrency=8,max_tokens=256",
    ]
    assert jobs[1].params == {"max_tokens": 256, "requests": 10, "concurrency": 8}
    assert jobs[1].point == {"concurrency": 8, "max_tokens": 256}
    assert (jobs[1].benchmark, jobs[1].model) == ("latency", "a/m1")
    assert jobs[1].slug == slugify(jobs[1].id)


@pytest.mark.parametrize("benchmark", ["latency", ".hidden", "-x", "a b", "_", "b" * 130, "模型"])
@pytest.mark.parametrize(
    "model", ["Qwen/Qwen3-8B", "/lead", "trail/", "../..", "m" * 200, "é/ü", "__x__", ""]
)
def test_expand_jobs_slugs_equal_slugify_of_id(benchmark: str, model: str) -> None:
    points = [{}, {"a": 1}, {"/k": "v/"}, {"_k": "..", "é": " "}, {"k": "x" * 150}, {"": ""}]
    for job in expand_jobs(benchmark, [model], points, {}):
        assert job.slug == slugify(job.id)
        assert job.id == job_id(benchmark, model, job.point)


def test_expand_jobs_empty_point_and_no_models() -> None:
    jobs = expand_jobs("smoke", ["m"], [{}], {"requests": 1})
    assert [(j.id, dict(j.params)) for j in jobs] == [("smoke/m", {"requests": 1})]
    assert expand_jobs("smoke", [], [{}], {}) == []
    assert expand_jobs("smoke", ["m"], [], {}) == []


def test_expand_jobs_do_not_share_dicts() -> None:
    base = {"extra": 1}
    point = {"a": 1}
    jobs = expand_jobs("b", ["m1", "m2"], [point], base)
    assert jobs[0].params is not jobs[1].params
    assert jobs[0].point is not point
    base["extra"] = 2
    point["a"] = 2
    assert jobs[0].params == {"extra": 1, "a": 1}


def test_job_to_json_round_trips() -> None:
    (job,) = expand_jobs("latency", ["Qwen/Qwen3-8B"], [{"concurrency": 8}], {"requests": 5})
    data = json.loads(json.dumps(job.to_json()))
    assert data == {
        "id": "latency/Qwen/Qwen3-8B/concurrency=8",
        "slug": job.slug,
        "benchmark": "latency",
        "model": "Qwen/Qwen3-8B",
        "point": {"concurrency": 8},
        "params": {"requests": 5, "concurrency": 8},
    }


@pytest.mark.parametrize(
    ("model_counts", "point_counts", "expected"),
    [([], [], 0), ([3], [4], 12), ([2, 5], [10, 0], 20), ([0, 1], [7, 1], 1)],
)
def test_count_jobs(model_counts: list[int], point_counts: list[int], expected: int) -> None:
    assert count_jobs(model_counts, point_counts) == expected


def test_count_jobs_needs_matching_lengths() -> None:
    with pytest.raises(ValueError):
        count_jobs([1, 2], [1])


def test_check_unique_drops_exact_duplicates_keeping_first() -> None:
    points = expand_matrix({"a": [1, 2, 1]})
    jobs = expand_jobs("b", ["m"], points, {})
    unique = check_unique(jobs)
    assert [j.id for j in unique] == ["b/m/a=1", "b/m/a=2"]
    assert unique[0] is jobs[0]


def test_check_unique_rejects_same_id_with_different_params() -> None:
    jobs = expand_jobs("b", ["m"], [{"a": 1}, {"a": "1"}, {"x": 2}, {"x": 2.0}], {})
    with pytest.raises(InputError) as info:
        check_unique(jobs)
    assert info.value.exit_code == EXIT_INVALID
    assert len(info.value.problems) == 1
    assert "'b/m/a=1'" in info.value.problems[0].message
    assert "differ in a" in info.value.problems[0].message


def test_check_unique_reports_every_conflicting_id_once() -> None:
    jobs = expand_jobs("b", ["m"], [{"a": 1}, {"a": "1"}, {"a": "1"}, {"c": 1}, {"c": "1"}], {})
    with pytest.raises(InputError) as info:
        check_unique(jobs)
    assert [p.message.split("'")[1] for p in info.value.problems] == ["b/m/a=1", "b/m/c=1"]


def test_check_unique_raises_internal_error_on_slug_collision() -> None:
    jobs = [Job("x/1", "same", "x", "1", {}, {}), Job("x/2", "same", "x", "2", {}, {})]
    with pytest.raises(RuntimeError, match="slug collision"):
        check_unique(jobs)


@pytest.mark.parametrize(("count", "max_jobs"), [(0, 0), (10, 10), (9, 10)])
def test_enforce_max_jobs_allows(count: int, max_jobs: int) -> None:
    enforce_max_jobs(count, max_jobs)


def test_enforce_max_jobs_refuses() -> None:
    with pytest.raises(InputError) as info:
        enforce_max_jobs(20_001, 20_000)
    assert str(info.value) == (
        "plan expands to 20001 jobs, more than --max-jobs 20000; "
        "narrow the plan or raise --max-jobs"
    )
    assert info.value.exit_code == EXIT_INVALID


def test_twenty_thousand_jobs_expand_with_unique_ids_and_slugs() -> None:
    matrix = {
        "concurrency": [1, 2, 4, 8, 16],
        "max_tokens": [64, 128, 256, 512],
        "input_tokens": [128, 512, 1024, 2048, 4096],
        "temperature": [0.0, 0.7, 1.0, 1.2],
        "exclude": [{"concurrency": 16, "max_tokens": 64}],
        "include": [{"concurrency": 1, "warmup": 0}],
    }
    models = [f"org{i % 7}/Model-{i}B-Instruct" for i in range(54)]
    points = expand_matrix(matrix)
    jobs = check_unique(expand_jobs("latency", models, points, {"requests": 100}))
    assert len(jobs) == 54 * (400 - 20) == 20_520
    assert len({job.slug for job in jobs}) == len(jobs)
