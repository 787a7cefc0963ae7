"""Sandboxed Jinja2 rendering of the string values of a plan."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any

from runner.errors import InputError, Problem
from runner.printable import lone_surrogate
from runner.schema import expected_types
from runner.yamlfile import Document, Path, load_text

_MARKERS = ("{{", "{%", "{#")


@functools.cache
def environment() -> Any:
    """The one template environment: no globals, no loader, undefined names are errors, and
    every render within a time, size and output budget (runner.plan.sandbox).

    Jinja2 is imported here, not at module level: plans without templates never pay for it."""
    from runner.plan.sandbox import Sandbox

    return Sandbox()


def has_template(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


def render_text(text: str, variables: Mapping[str, Any]) -> str:
    """Render one template string, within the budget of the render_document calling it or a
    budget of its own; raises jinja2 errors (BudgetError for a budget) for the caller to
    locate."""
    from jinja2.compiler import find_undeclared
    from jinja2.exceptions import SecurityError

    env = environment()
    tree = env.parse(text)
    if find_undeclared(tree.body, ("self",)):  # Jinja's TemplateReference: not a plan variable
        raise SecurityError("'self' is not available in templates")
    return checked_text(str(env.from_string(tree).render(dict(variables))))


def checked_text(text: str) -> str:
    """`text`, a template's output; a ValueError when it holds a lone surrogate (a Jinja escape
    such as `"\\ud800"` makes one), which no file or request can carry."""
    bad = lone_surrogate(text)
    if bad is not None:
        raise ValueError(f"it makes text with {bad}, half of a surrogate pair, which no file or "
                         "request can carry; write the character itself, or both halves")
    return text


def explain(exc: Exception, names: Collection[str] = ()) -> str:
    """One line that says what went wrong in a template and what to do; `names` are the
    variables defined, for a "did you mean"."""
    from jinja2 import TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    from runner.plan.sandbox import BudgetError

    if isinstance(exc, UndefinedError) and "is undefined" in str(exc.message):
        return (f"template error: {exc.message}{_close(str(exc.message), names)}; "
                "define it under vars: or pass -e NAME=VALUE")
    if isinstance(exc, UndefinedError):  # a missing attribute or key of a defined variable
        return f"template error: {exc.message}"
    if isinstance(exc, BudgetError):
        return f"template over its budget: {exc}; make it do less"
    if isinstance(exc, SecurityError):
        return f"template not allowed by the sandbox: {exc}"
    if isinstance(exc, RecursionError):
        return "template error: it nests or recurses too deeply (a macro that calls itself " \
               "without end, or brackets nested hundreds deep)"
    if isinstance(exc, MemoryError):
        return "template error: it needs more memory than there is; make it do less"
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message} (template line {exc.lineno})"
    if isinstance(exc, TypeError) and "no loader" in str(exc):
        return "template error: templates cannot include or import files"
    return f"template error: {exc or type(exc).__name__}"


def _close(message: str, names: Collection[str]) -> str:
    """` (did you mean 'max_tokens'?)` for "'max_token' is undefined"."""
    wanted = message.split("'")[1] if message.count("'") >= 2 else ""
    close = difflib.get_close_matches(wanted, sorted(names), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def render_document(
    doc: Document, variables: Mapping[str, Any], schema: str, skip: Callable[[Path], bool]
) -> list[Problem]:
    """Render every templated string of `doc.data` in place; return the problems found."""
    problems: list[Problem] = []

    def visit(value: Any, path: Path) -> Any:
        if skip(path):
            return value
        if isinstance(value, dict):
            return {k: visit(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [visit(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or not has_template(value):
            return value
        try:
            return coerce(render_text(value, variables), expected_types(schema, path))
        except Exception as exc:  # any failure inside a user's template is the user's error
            problems.append(Problem(explain(exc, variables.keys()), doc.where(path)))
            return value

    if not _any_template(doc.data):
        return problems
    from runner.plan.sandbox import budget

    with budget():  # one deadline for all of a plan's templates
        doc.data = visit(doc.data, ())
    return problems


def _any_template(value: Any) -> bool:
    """Whether a string anywhere in `value` holds a template (Jinja2 is then imported)."""
    if isinstance(value, dict):
        return any(_any_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_any_template(v) for v in value)
    return isinstance(value, str) and has_template(value)


def coerce(text: str, types: set[str]) -> Any:
    """Give a rendered string the type the schema expects (`"64"` -> 64 for an integer)."""
    if not types or "string" in types:
        return text
    try:  # YAML 1.2 core, as in plan files: "yes" stays a string, "012" is twelve
        value = load_text(text, "<rendered>").data
    except InputError:
        return text
    if isinstance(value, bool) and "boolean" not in types:
        return text
    return value if value is not None or "null" in types else text
