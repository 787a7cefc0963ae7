"""Names that become paths or stored keys: one set of rules for validate and the results store."""

from __future__ import annotations

import pytest

from runner.plan.expand import slugify
from runner.safenames import is_secret_key, plan_name_problem, slug_problem


@pytest.mark.parametrize("name", ["nightly", "nightly.v2", "a", "index", "index-sqlite",
                                  "latest-2", "console", "x" * 64])
def test_ordinary_plan_names_pass(name: str) -> None:
    assert plan_name_problem(name) is None


@pytest.mark.parametrize(("name", "why"), [
    ("", "must be a non-empty string"),
    ("x" * 65, "is longer than 64 bytes"),
    (".hidden", "must not start with '.'"),
    ("..", "must not start with '.'"),
    ("a/b", "must not hold '/'"),
    ("a\\b", "must not hold '/'"),
    ("a\x00b", "must not hold '/'"),
    ("a b", "must start with a letter or digit and hold only"),
    ("-a", "must start with a letter or digit and hold only"),
    ("index.sqlite", "collides with results/index.sqlite"),
    ("Index.Sqlite-wal", "collides with results/index.sqlite"),
    ("latest", "is a word of `runner report`"),
    ("AUX", "is a device name on Windows"),
    ("lpt9.results", "is a device name on Windows"),
])
def test_plan_names_that_cannot_be_a_results_folder(name: str, why: str) -> None:
    problem = plan_name_problem(name)
    assert problem is not None and problem.startswith(why)


@pytest.mark.parametrize("slug", ["", ".x", "..", "../../x", "a/b", "a\\b", "a\nb", "x" * 201,
                                  "trailing.", 7, None])
def test_unsafe_slugs(slug: object) -> None:
    assert slug_problem(slug) is not None


@pytest.mark.parametrize("text", ["b/Qwen/Qwen3-8B/concurrency=1", "aux.x/m", "../../x", "é/💥"])
def test_every_slug_expand_makes_is_safe(text: str) -> None:
    assert slug_problem(slugify(text)) is None


@pytest.mark.parametrize(("key", "secret"), [
    ("api_key", True), ("apikey", True), ("X-Api-Key", True), ("OPENAI_API_KEY", True),
    ("Authorization", True), ("proxy-authorization", True), ("litellm_params", True),
    ("master_key", True), ("api_key_env", False), ("ignore_eos", False), ("keys", False),
])
def test_credential_named_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret
