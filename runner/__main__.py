"""`python -m runner`."""

import sys

from runner import interrupts

interrupts.install()  # before the imports below: a signal during start-up is handled too
try:
    from runner.main import entry
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    interrupts.settle()
    sys.exit(130)  # EXIT_INTERRUPTED

entry()
