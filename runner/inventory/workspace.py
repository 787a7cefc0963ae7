"""What a command works with: the config files, the chosen server and its inventory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from runner.errors import Location
from runner.inventory import config
from runner.inventory.listing import Inventory
from runner.inventory.source import load_inventory


@dataclass(frozen=True)
class Workspace:
    """Loaded configs and the server a command talks to."""

    directory: str
    servers: config.Servers
    models: config.ModelsConfig
    server: config.Server


def open_workspace(
    config_dir: str | None, server: str | None, env: Mapping[str, str], plan_server: str | None,
    near: str | None = None, plan_where: Location | None = None,
) -> Workspace:
    """Load servers.yaml and models.yaml and choose the server; without --config-dir or
    $RUNNER_CONFIG_DIR the configs are looked for near `near` (a plan), then here."""
    found = config.find_config_dir(config_dir, env, near)
    servers = config.load_servers(found)
    models = config.load_models(found, env)
    chosen = config.choose_server(servers, server, env, plan_server, plan_where)
    return Workspace(found.path, servers, models, chosen)


@contextlib.contextmanager
def serving(ws: Workspace) -> Iterator[Workspace]:
    """The workspace with its server reachable: a `kind: mock` server is started in its own
    process on a free loopback port for the duration, and stopped after."""
    if ws.server.kind != "mock":
        yield ws
        return
    from runner.mock.process import mock_process
    from runner.mock.server import MockConfig

    opts = ws.server.options
    config = MockConfig(models=tuple(opts["models"]), ttft_ms=float(opts["ttft_ms"]),
                        itl_ms=float(opts["itl_ms"]), output_tokens=int(opts["output_tokens"]),
                        max_streams=opts.get("max_streams"),
                        reasoning_tokens=int(opts["reasoning_tokens"]),
                        tokens_per_word=float(opts["tokens_per_word"]), tokenize=opts["tokenize"],
                        prefix_cache_blocks=int(opts["prefix_cache_blocks"]))
    with mock_process(config) as url:
        yield replace(ws, server=replace(ws.server, url=url))


def fetch(ws: Workspace, env: Mapping[str, str], source: str, allow_fallback: bool) -> Inventory:
    """The inventory of the chosen server, live or from the fallback file."""
    return load_inventory(ws.server, ws.models, env, source=source, allow_fallback=allow_fallback)


def describe_source(inv: Inventory, models_path: str) -> str:
    """One line saying where the models came from."""
    count = f"{len(inv.models)} model{'s' if len(inv.models) != 1 else ''}"
    if inv.source == "live":
        return (f"inventory: live from server '{inv.server}' ({inv.url}) "
                f"at {inv.fetched_at}, {count}")
    return (f"WARNING: inventory from the fallback file {models_path} for server "
            f"'{inv.server}' ({inv.url}) because: {inv.fallback_reason}; {count}")
