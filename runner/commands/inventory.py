"""`runner inventory`: the models a server serves now, and where that list came from."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence

from runner.errors import EXIT_OK
from runner.inventory.listing import Inventory, Model
from runner.inventory.workspace import describe_source, fetch, open_workspace, serving
from runner.plan import patterns
from runner.printable import printable

_COLUMNS = ("id", "mode", "max_input_tokens", "max_output_tokens", "max_model_len",
            "metadata_source")
_EXPANSION_MARK = "wildcard"  # the WILDCARD column of an id listed only by a wildcard route


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    with serving(open_workspace(args.config_dir, args.server, env, None)) as ws:
        inv = fetch(ws, env, args.source, allow_fallback=True)
    models = list(inv.models)
    warnings: list[str] = []
    if args.pattern:  # selects as a plan without include_wildcard_expansions would
        hidden = [m.id for m in inv.models if m.wildcard_expansion]
        modes = {m.id: m.mode for m in inv.models}
        chosen = patterns.resolve(args.pattern, inv.ids(), ws.models.groups, modes, hidden)
        keep = set(chosen.models)
        models = [m for m in models if m.id in keep]
        warnings = chosen.warnings()
    if inv.source != "live":
        print(printable(describe_source(inv, ws.models.path)), file=sys.stderr)
    if (cause := inv.empty_cause()) is not None:  # exit 0: listing nothing is no error
        print(f"WARNING: {printable(cause)}", file=sys.stderr)
    for warning in warnings:
        print(f"WARNING: {printable(warning)}", file=sys.stderr)
    print(_as_json(inv, models) if args.json else _as_text(inv, models, ws.models.path))
    return EXIT_OK


def _as_json(inv: Inventory, models: Sequence[Model]) -> str:
    data = inv.to_json()
    data["models"] = [m.to_json() for m in models]
    data["model_count"] = len(models)
    return json.dumps(data, indent=2)


def _as_text(inv: Inventory, models: Sequence[Model], models_path: str) -> str:
    rows = [[printable(_cell(getattr(m, c))) for c in _COLUMNS]
            + [_EXPANSION_MARK if m.wildcard_expansion else "-"] for m in models]
    header = ["ID", "MODE", "MAX IN", "MAX OUT", "CONTEXT", "METADATA", "WILDCARD"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [printable(describe_source(inv, models_path)), ""]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not models:
        lines.append("(no models)")
    if expansions := sum(m.wildcard_expansion for m in models):
        lines.append(f"{expansions} of these ids exist only because a wildcard route was "
                     "expanded; plans select them only by exact id or with "
                     "`inventory: {include_wildcard_expansions: true}`")
    return "\n".join(lines)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)
