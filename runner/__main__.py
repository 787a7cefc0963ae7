"""`python -m runner` and the `runner` console script: SIGINT and SIGTERM are held from this
module's first line (the C `_signal` module costs no import), then routed, then the CLI is
imported, so a Ctrl-C or SIGTERM during start-up ends as one line and exit 130, not a traceback
nor a death by signal (143)."""

import _signal  # type: ignore[import-not-found]  # (no stubs; loaded by Python at start)

# Held, not lost: a signal that arrives now stays pending until `interrupts.install` unblocks
# it into runner's own handler. Importing `signal` (enum, ~6 ms) and `typing` first left a
# window of ~20 ms in which SIGTERM killed the process with Python's default action.
_signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGINT, _signal.SIGTERM})

import sys  # noqa: E402

from runner import interrupts  # noqa: E402


def start() -> None:
    """Install the signal handlers, import the CLI and run it (the console-script entry)."""
    try:
        interrupts.install()  # unblocks: a signal held since the first line is handled here
        from runner.main import entry
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        interrupts.settle()
        sys.exit(130)  # EXIT_INTERRUPTED, from runner.errors once it can be imported
    entry()


if __name__ == "__main__":
    start()
