"""runner: a declarative, version-controlled LLM benchmark runner."""

__version__ = "0.1.0"
