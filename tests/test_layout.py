"""The package tree shows the pipeline: imports run commands -> stages -> basics, no cycles."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "runner"
CLI = {"main", "__main__", "commands"}
STAGES = {"plan", "inventory", "load", "run", "results", "report", "mock", "servermetrics"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every runner module `path` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("runner."))
        elif (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and (node.module == "runner" or node.module.startswith("runner."))):
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in (_existing(n) for n in found) if name}


def _existing(name: str) -> str | None:
    """The longest prefix of `name` that is a module of the package."""
    parts = name.split(".")
    while parts:
        base = PACKAGE.parent.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return None


def group(module: str) -> str:
    """'cli', a stage's name, or 'basics' (the top-level shared modules)."""
    top = module.split(".")[1] if "." in module else "runner"
    if top in CLI:
        return "cli"
    return top if top in STAGES else "basics"


GRAPH = {module_name(p): imported(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_subpackage_is_a_known_stage_or_the_cli() -> None:
    folders = {p.parent.name for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE}
    assert folders <= STAGES | {"commands"}, folders - STAGES


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_only_the_cli_imports_the_cli(module: str) -> None:
    if group(module) != "cli":
        assert not {m for m in GRAPH[module] if group(m) == "cli"}, module


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if group(m) == "basics"))
def test_shared_basics_import_no_stage(module: str) -> None:
    assert {group(m) for m in GRAPH[module]} <= {"basics"}, GRAPH[module]


def test_stages_import_each_other_one_way() -> None:
    edges: dict[str, set[str]] = {s: set() for s in STAGES}
    for module, targets in GRAPH.items():
        if group(module) in STAGES:
            others = {group(t) for t in targets if group(t) in STAGES}
            edges[group(module)] |= others - {group(module)}
    graphlib.TopologicalSorter(edges).prepare()  # raises CycleError naming the cycle


def test_no_module_imports_itself_through_others() -> None:
    graphlib.TopologicalSorter({m: t - {m} for m, t in GRAPH.items()}).prepare()


def test_every_subpackage_says_what_it_does() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, init
