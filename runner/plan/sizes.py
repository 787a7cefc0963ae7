"""What a template operation would make, measured before it is made (runner.plan.sandbox).

`'a'|center(10**9)`, `s|join(s)` or `'%1000000000d' % 1` allocate gigabytes in one call, too
late to check afterwards: each such filter and method has a check here that refuses arguments
whose result would exceed MAX_SIZE characters or items. Pure; no Jinja2."""

from __future__ import annotations

import contextlib
import functools
import re
import string
from collections.abc import Callable, Iterable, Sized
from typing import Any

MAX_SIZE = 1_000_000  # characters or items of any value a template makes
MAX_JSON_INDENT = 16


class SizeError(Exception):
    """An operation would make a value over MAX_SIZE; the sandbox turns it into a BudgetError."""


def size_of(value: Any, limit: int = MAX_SIZE) -> int:
    """Characters and items in `value`, nested ones included and shared ones counted each time
    (as `str(value)` would write them); counting stops just past `limit`."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
    return total


def refuse_over(size: int, what: str) -> None:
    """Raise SizeError when `size` is over MAX_SIZE."""
    if size > MAX_SIZE:
        raise SizeError(f"{what} makes a value of over {MAX_SIZE:,} characters or items")


def check(value: Any, what: str) -> Any:
    """`value`, unless it is a string or container over MAX_SIZE (SizeError)."""
    if isinstance(value, str | bytes | list | tuple | set | frozenset | dict):
        refuse_over(size_of(value), what)
    return value


# --- what an operation would make, known before it is made -------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_numbers(numbers: Iterable[str], args: Iterable[Any], what: str) -> None:
    """Widths and precisions written in a format, or taken from the arguments (`*`, `{}`)."""
    for number in numbers:
        if number in ("*", "{"):
            big = [a for a in args if isinstance(a, int) and a > MAX_SIZE]
            refuse_over(MAX_SIZE + 1 if big else 0, what)
        elif number:
            refuse_over(int(number[:8]), what)


def percent(fmt: Any, args: Any, what: str = "a width") -> None:
    """Refuse `fmt % args` when a width or precision in `fmt` (or a `*` one) is too large."""
    if isinstance(fmt, str):
        found = [n for spec in _PERCENT_SPEC.findall(fmt) for n in spec]
        _check_numbers(found, args if isinstance(args, tuple) else (args,), what)


def _braces(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    numbers: list[str] = []
    with contextlib.suppress(ValueError):
        for _, _, spec, _ in string.Formatter().parse(fmt):
            numbers += ["{"] if spec and "{" in spec else re.findall(r"\d+", spec or "")
    _check_numbers(numbers, [*args, *kwargs.values()], "a width")


def _width(value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    if isinstance(width, int):
        refuse_over(width, "its width")


def _join(value: Any, sep: Any = "", *_: Any, **__: Any) -> None:
    items = value if isinstance(value, Sized) else ()
    refuse_over(size_of(items) + len(str(sep)) * max(len(items) - 1, 0), "it")


def _replace(value: Any, old: Any = "", new: Any = "", count: Any = None, **_: Any) -> None:
    if not isinstance(value, str):
        return
    found = len(value) + 1 if old == "" else value.count(str(old))
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    refuse_over(len(value) + found * max(len(str(new)) - len(str(old)), 0), "it")


def _indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    step = width if isinstance(width, int) else len(str(width))
    refuse_over(len(str(value)) + (str(value).count("\n") + 1) * max(step, 0), "it")


def _wordwrap(value: Any, width: Any = 79, breaks: Any = True, wrapstring: Any = None,
              *_: Any, **__: Any) -> None:
    text, wrap = str(value), len(str(wrapstring or "\n"))
    lines = len(text) // max(width if isinstance(width, int) else 1, 1) + text.count("\n") + 1
    refuse_over(len(text) + lines * wrap, "it")


def _count_arg(value: Any, count: Any = 0, *_: Any, **__: Any) -> None:
    if isinstance(count, int):
        refuse_over(count, "its count")


def _tojson(value: Any, indent: Any = None) -> None:
    if isinstance(indent, int) and indent > MAX_JSON_INDENT:
        raise SizeError(f"tojson's indent is at most {MAX_JSON_INDENT}")
    refuse_over(size_of(value) * ((indent or 0) + 2), "it")


def _sum(value: Any, attribute: Any = None, start: Any = 0) -> None:
    if not isinstance(start, int | float):
        raise SizeError("sum adds numbers only")


def _pprint(value: Any, *_: Any, **__: Any) -> None:
    """pprint takes ~2 s per million items: its share of the budget is a tenth."""
    refuse_over(size_of(value, MAX_SIZE // 10) * 10, "it")


def _expandtabs(value: Any, tabsize: Any = 8) -> None:
    if isinstance(value, str) and isinstance(tabsize, int):
        refuse_over(len(value) + value.count("\t") * tabsize, "it")


def _translate(value: Any, table: Any = None) -> None:
    longest = max((len(str(v)) for v in table.values()), default=1) if isinstance(
        table, dict) else 1
    refuse_over(len(str(value)) * longest, "it")


def _to_bytes(value: Any, length: Any = 1, *_: Any, **__: Any) -> None:
    if isinstance(length, int):
        refuse_over(length, "its length")


FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _width, "indent": _indent, "join": _join, "replace": _replace,
    "wordwrap": _wordwrap, "batch": _count_arg, "slice": _count_arg, "tojson": _tojson,
    "format": lambda value, *args, **kwargs: percent(value, args), "sum": _sum,
    "pprint": _pprint,
}
_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "center": _width, "ljust": _width, "rjust": _width, "zfill": _width, "replace": _replace,
    "expandtabs": _expandtabs, "translate": _translate, "to_bytes": _to_bytes,
}


def method_check(func: Any) -> Callable[..., None] | None:
    """The check for a method of a str, bytes or int (`'a'.center`, a sandboxed `.format`),
    to be called with the method's arguments; None for any other callable."""
    inner = getattr(func, "__wrapped__", func)
    owner = getattr(inner, "__self__", None)
    if not isinstance(owner, str | bytes | int):
        return None
    name = getattr(inner, "__name__", "")
    if name in ("format", "format_map") and isinstance(owner, str):
        return lambda *args, **kwargs: _braces(owner, args, kwargs)
    if name == "join":  # the separator is the string the method belongs to
        return lambda items, *_: _join(items, owner)
    check = _METHOD_CHECKS.get(name)
    return None if check is None else functools.partial(check, owner)
