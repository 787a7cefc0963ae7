"""SIGINT and SIGTERM: Ctrl-C, or a cancelled CI job (SIGINT, then SIGTERM a few seconds later).

Until a command starts writing something that must stay consistent, the first signal raises
KeyboardInterrupt, as Python does for SIGINT (main turns it into exit 130). From `hold()` on,
signals are only counted: the command asks `count` at safe points, and code running an asyncio
loop gets woken through `wake`. A signal handler that raises mid-write is how a manifest is left
"running" and a traceback printed; one that only counts cannot do either."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """How many SIGINT/SIGTERM arrived, and whether the next one raises."""

    def __init__(self) -> None:
        self.count = 0
        self.raising = True
        self.cutting = False  # inside cut_short: every signal raises
        self.wake: Callable[[], None] | None = None  # set while an event loop must hear of it
        # The KeyboardInterrupt a signal raised was swallowed: it met code whose exceptions
        # Python only reports (a weakref callback in importlib, a __del__), so nothing stopped.
        self.swallowed = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if (self.raising and (self.count == 1 or self.swallowed)) or self.cutting:
            raise KeyboardInterrupt
        wake = self.wake
        if wake is not None:
            with suppress(RuntimeError):  # the loop closed meanwhile: counted is enough
                wake()

    def check(self) -> None:
        """Raise the KeyboardInterrupt a signal raised where Python could only swallow it.

        Raises:
            KeyboardInterrupt: a signal arrived while raising and its exception was lost."""
        if self.swallowed and self.raising:
            raise KeyboardInterrupt

    def hold(self) -> None:
        """From now on signals are only counted, never raised (a signal whose KeyboardInterrupt
        was swallowed before raises here, while nothing is written yet)."""
        self.check()
        self.raising = False

    def unraisable(self, unraisable: Any, default: Callable[[Any], None]) -> None:
        """`sys.unraisablehook`: a KeyboardInterrupt of ours that Python could not raise is
        remembered for `check`, silently; anything else is reported as Python would."""
        if unraisable.exc_type is KeyboardInterrupt and self.raising:
            self.swallowed = True
            return
        default(unraisable)

    @contextmanager
    def cut_short(self) -> Iterator[None]:
        """Around a call that may block for long even after `hold()` (opening a FIFO that
        nobody reads yet: Python retries it after a handler that only counts): a signal
        during the block ends it there. It is counted as ever; the block's work is left undone."""
        self.cutting = True
        try:
            yield
        except KeyboardInterrupt:
            pass
        finally:
            self.cutting = False

    @property
    def requested(self) -> bool:
        """A signal arrived: stop starting work, finish cleanly."""
        return self.count > 0

    @property
    def hurried(self) -> bool:
        """A second signal arrived: cut every wait short."""
        return self.count > 1


_installed: Interrupts | None = None
_process_wide = False


def install() -> Interrupts:
    """Route SIGINT and SIGTERM to one Interrupts for the rest of the process (the entry point
    calls this first thing, so a signal during start-up is handled too), then unblock them:
    `runner.__main__` holds them from its first line, and one held meanwhile is handled now
    (KeyboardInterrupt, raised here)."""
    global _installed, _process_wide
    if not _process_wide or _installed is None:
        _installed, _process_wide = _route(), True
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    return _installed


def _route() -> Interrupts:
    current = Interrupts()
    for signum in SIGNALS:
        signal.signal(signum, current.handle)
    default = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: current.unraisable(unraisable, default)
    return current


def settle() -> None:
    """The process's outcome is decided: block SIGINT and SIGTERM until it exits. Python puts
    the default handlers back while it shuts down, and a SIGTERM then would kill the process
    with -15 instead of the exit code already decided."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def active() -> Interrupts:
    """The installed Interrupts, or one that no signal reaches (a caller outside `catching`)."""
    return _installed if _installed is not None else Interrupts()


@contextmanager
def catching() -> Iterator[Interrupts]:
    """SIGINT and SIGTERM go to a fresh Interrupts while the block runs, and the handlers in place
    before come back after; in a process whose entry point called `install`, the process-wide
    one is used and stays (a signal after the block must not meet Python's default handler)."""
    global _installed
    if _process_wide or threading.current_thread() is not threading.main_thread():
        yield active()
        return
    before: dict[int, Any] = {s: signal.getsignal(s) for s in SIGNALS}
    hook_before = sys.unraisablehook
    outer = _installed
    current = _installed = _route()
    try:
        yield current
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        sys.unraisablehook = hook_before
        _installed = outer
