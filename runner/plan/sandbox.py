"""The template sandbox's budget: a plan cannot hang runner or make it allocate gigabytes.

Jinja's sandbox stops escapes, not work. Nested loops over 100,000 items, a macro that calls itself
twice per level, `'a'|center(10**9)`, `s|join(s)` or `'%1000000000d' % 1` each ran for minutes or
took gigabytes. Every render therefore runs under a Budget:

- time: a wall-clock deadline (TIME_BUDGET_S for one plan's templates, or for one render),
  read at every step a template can repeat: each loop iteration (every `for` is compiled with
  its iterable wrapped), each call (macros, recursive loops, methods), each filter and each
  intercepted operator;
- size: no value a template makes (by an operator, a filter, a method, `~`, a block) may exceed
  MAX_SIZE characters or items, counted deep; operations whose result size follows from their
  arguments are refused before they allocate (runner.plan.sizes), the rest checked after;
- output: all that one render writes out, loops and macros included, stays under MAX_OUTPUT.

Between two checks a template can only do a bounded amount of work on values of bounded size,
so a render ends about at its deadline whatever it does. Measured on the attacks of
tests/plan/test_sandbox.py: each ends within 1.2 s (most in milliseconds) and under 200 MB;
before, nested loops and an exponential macro ran on past 15 s, `center(10**9)` took 12 s and
gigabytes.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import operator
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from runner.plan import sizes
from runner.plan.sizes import MAX_SIZE, size_of

TIME_BUDGET_S = 1.0  # for one plan's templates (or one per-request prompt)
MAX_OUTPUT = 10 * MAX_SIZE  # characters written out by one render, nested outputs counted again
_MAX_POWER = 64
_MAX_BITS = 4096  # integers computed by `**` and `*` stay below this many bits


class BudgetError(SecurityError):
    """A template went over its time, size or output budget."""


class Budget:
    """The limits of one render (or of one plan's renders): a deadline and an output count."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.deadline = seconds, time.monotonic() + seconds
        self.output = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetError(f"rendering took over {self.seconds:g} s (a loop over too many "
                              "items, or a macro or loop that calls itself too often)")

    def spend(self, chars: int) -> None:
        self.output += chars
        if self.output > MAX_OUTPUT:
            raise BudgetError(f"the template writes out over {MAX_OUTPUT:,} characters")


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("budget", default=None)


@contextlib.contextmanager
def budget(seconds: float = TIME_BUDGET_S) -> Iterator[Budget]:
    """The budget renders share while this is open; inside another one, that one goes on."""
    current = _CURRENT.get()
    if current is not None:
        yield current
        return
    fresh = Budget(seconds)
    token = _CURRENT.set(fresh)
    try:
        yield fresh
    finally:
        _CURRENT.reset(token)


def _tick() -> None:
    current = _CURRENT.get()
    if current is not None:
        current.tick()


# --- the environment -------------------------------------------------------------------------


def _loop(iterable: Any) -> Iterator[Any]:
    """A `for` loop's iterable, with a budget check before each item."""
    current = _CURRENT.get() or Budget(TIME_BUDGET_S)
    for item in iterable:
        current.tick()
        yield item


def _joined(pieces: Iterable[str]) -> str:
    """`"".join` for a render's output and its blocks, refusing to build an oversized string."""
    parts, total = [], 0
    for piece in pieces:
        total += len(piece)
        if total > MAX_SIZE:
            raise BudgetError(f"the template makes a text of over {MAX_SIZE:,} characters")
        parts.append(piece)
    return "".join(parts)


def _finalize(value: Any) -> str:
    """Each `{{ ... }}` as written out, counted against the render's output budget."""
    text = str(value)
    current = _CURRENT.get()
    if current is not None:
        current.spend(len(text))
    return text


class _Generator(CodeGenerator):
    """Jinja's code generator, with every `for` iterable passed through `_loop` and every `~`
    through the size check."""

    def visit_For(self, node: nodes.For, frame: Any) -> None:
        node.iter = nodes.Call(nodes.EnvironmentAttribute("budget_loop"), [node.iter], [],
                               None, None)
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Any) -> None:
        self.write("environment.budget_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Template(Template):
    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render under the budget already open, else under a fresh one."""
        with budget():
            return str(super().render(*args, **kwargs))


@contextlib.contextmanager
def _sized(what: str) -> Iterator[None]:
    """Size checks within: a value over MAX_SIZE is a BudgetError naming `what`."""
    try:
        yield
    except sizes.SizeError as exc:
        raise BudgetError(f"{what}: {exc}") from None


def _materialized(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Arguments with their iterators made lists, so that their size can be known; an
    iterator's items come from values that are themselves within the budget."""
    return tuple(list(a) if isinstance(a, Iterator) else a for a in args)


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter with a budget check, its size check first when it has one, and the size of its
    result checked after."""
    before = sizes.FILTER_CHECKS.get(name)
    skip = 1 if hasattr(func, "jinja_pass_arg") else 0  # the environment or context first

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        with _sized(f"filter '{name}'"):
            if before is not None:
                args = _materialized(args)  # `items|join(s)` of a generator: measured first
                before(*args[skip:], **kwargs)
            return sizes.check(func(*args, **kwargs), "its result")

    return guarded


def _bits(value: Any, *, exponent: bool = False) -> int:
    """Size of an integer operand (0 for anything else); an exponent counts as its value."""
    if not isinstance(value, int):
        return 0
    return max(value, 0) if exponent else abs(value).bit_length()


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox (no mutating a plan's values either) with a time, size and output
    budget on every render (see the module's docstring)."""

    intercepted_binops = frozenset(["**", "*", "+", "%"])
    code_generator_class = _Generator
    template_class = _Template
    concat = staticmethod(_joined)
    budget_loop = staticmethod(_loop)

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                         finalize=_finalize)
        self.globals.clear()
        self.filters = {name: _guarded(name, f) for name, f in self.filters.items()}

    @staticmethod
    def budget_concat(values: Iterable[Any]) -> str:
        """`a ~ b`: strings joined, none longer than MAX_SIZE."""
        return _joined(str(v) for v in values)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        if isinstance(__obj, LoopContext) and args:  # `loop(children)` in a recursive loop
            args = (_loop(args[0]), *args[1:])
        before = sizes.method_check(__obj)
        with _sized(f"calling '{getattr(__obj, '__name__', 'it')}'"):
            if before is not None:
                args = _materialized(args)  # `sep.join(generator)`: measured before joining
                before(*args, **kwargs)
            return sizes.check(super().call(__context, __obj, *args, **kwargs), "its result")

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        _tick()
        if operator_ == "**":
            return self._power(left, right)
        if operator_ == "*":
            return self._product(left, right)
        with _sized(f"`{operator_}`"):
            if operator_ == "%":
                sizes.percent(left, right)
                return sizes.check(operator.mod(left, right), "its result")
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                sizes.refuse_over(size_of(left) + size_of(right), "its result")
            return operator.add(left, right)

    @staticmethod
    def _power(left: Any, right: Any) -> Any:
        if isinstance(right, int | float) and abs(right) > _MAX_POWER:
            raise SecurityError(f"exponent {right} is too large")
        if _bits(left) * _bits(right, exponent=True) > _MAX_BITS:
            raise SecurityError("power produces a number that is too large")
        return operator.pow(left, right)

    @staticmethod
    def _product(left: Any, right: Any) -> Any:
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(count, int) and (
                    size_of(seq) * count > MAX_SIZE):
                raise SecurityError("repetition produces a value that is too long")
        if _bits(left) + _bits(right) > _MAX_BITS:
            raise SecurityError("product produces a number that is too large")
        return operator.mul(left, right)
