"""`python -m runner` and the `runner` console script: signals are routed first, then the CLI
is imported, so a Ctrl-C during start-up ends as one line and exit 130, not a traceback."""

import sys

from runner import interrupts


def start() -> None:
    """Install the signal handlers, import the CLI and run it (the console-script entry)."""
    interrupts.install()
    try:
        from runner.main import entry
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        interrupts.settle()
        sys.exit(130)  # EXIT_INTERRUPTED, from runner.errors once it can be imported
    entry()


if __name__ == "__main__":
    start()
