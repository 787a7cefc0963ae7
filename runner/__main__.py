"""`python -m runner`."""

from runner.main import entry

entry()
