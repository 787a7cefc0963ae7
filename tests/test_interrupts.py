"""A signal whose KeyboardInterrupt Python swallows (raised inside a weakref callback or a
__del__, which Python only reports as "Exception ignored") is neither printed nor lost.

Seen in CI: SIGTERM during start-up landed in importlib's module-lock weakref callback; the
traceback went to stderr and the apply ran on as if nothing had arrived."""

from __future__ import annotations

import argparse
import signal
import sys
import weakref
from collections.abc import Mapping

import pytest

from runner import interrupts
from runner.errors import EXIT_INTERRUPTED


class _Thing:
    pass


def _swallow_a_signal() -> None:
    """Deliver SIGINT inside a weakref callback, where its KeyboardInterrupt cannot propagate."""
    thing = _Thing()
    ref = weakref.ref(thing, lambda _: signal.raise_signal(signal.SIGINT))
    del thing
    assert ref() is None


def test_a_swallowed_interrupt_is_quiet_and_raises_at_hold(
        capsys: pytest.CaptureFixture[str]) -> None:
    with interrupts.catching() as signals:
        _swallow_a_signal()
        assert signals.swallowed and signals.count == 1
        with pytest.raises(KeyboardInterrupt):
            signals.hold()
    assert capsys.readouterr().err == ""


def test_after_a_swallowed_interrupt_the_next_signal_raises() -> None:
    with interrupts.catching() as signals:
        _swallow_a_signal()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert signals.count == 2


def test_once_held_signals_are_counted_not_raised_and_other_unraisables_are_reported() -> None:
    seen: list[type[BaseException] | None] = []
    before = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_type)
    try:
        with interrupts.catching() as signals:
            signals.hold()
            signal.raise_signal(signal.SIGINT)  # counted only
            assert signals.count == 1 and not signals.swallowed
            thing = _Thing()
            ref = weakref.ref(thing, lambda _: 1 / 0)
            del thing
            assert ref() is None
        assert seen == [ZeroDivisionError]
    finally:
        sys.unraisablehook = before
    assert sys.unraisablehook is before


def test_a_command_that_never_holds_signals_ends_interrupted(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.commands import validate
    from runner.main import main

    def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
        _swallow_a_signal()
        return 0

    monkeypatch.setattr(validate, "run", run)
    assert main(["validate", "plans/none.yaml"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"
