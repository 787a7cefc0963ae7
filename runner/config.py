"""Config files: named servers and the fallback model inventory with groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Server:
    """A named endpoint from configs/servers.yaml."""

    name: str
    url: str
    api_key_env: str | None = None
    verify_tls: bool = True
    kind: str = "litellm"  # "litellm" (any OpenAI-compatible proxy) or "mock" (embedded simulator)
    timeout_s: float = 10.0
    options: Mapping[str, Any] = field(default_factory=dict)  # kind-specific settings (mock timings)


@dataclass(frozen=True)
class ModelEntry:
    """One model of the fallback inventory in configs/models.yaml."""

    id: str
    servers: tuple[str, ...] | None = None  # None: listed for every server
    mode: str | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelsConfig:
    """configs/models.yaml: fallback models and named groups of patterns."""

    path: str
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    models: tuple[ModelEntry, ...] = ()

    def for_server(self, server: str) -> list[ModelEntry]:
        """The fallback models listed for `server`."""
        return [m for m in self.models if m.servers is None or server in m.servers]
