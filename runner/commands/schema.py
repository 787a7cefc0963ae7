"""`runner schema NAME`: print a JSON Schema; `runner schema --write DIR`: write them all."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

from runner import fileset
from runner.errors import EXIT_OK, UsageError
from runner.fileset import File
from runner.schema import SCHEMA_NAMES, load_schema, schema_bytes

_STATUS = {fileset.NEW: "wrote", fileset.SAME: "unchanged", fileset.DIFFERS: "replaced"}


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.write is not None:
        if args.name is not None:
            raise UsageError(f"runner schema: --write writes every schema; leave out '{args.name}'")
        return _write(args.write)
    if args.name is None:
        raise UsageError(f"runner schema: name a schema ({', '.join(SCHEMA_NAMES)}) to print it, "
                         "or pass --write DIR to write them all")
    print(json.dumps(load_schema(args.name), indent=2))
    return EXIT_OK


def schema_files(folder: str = "") -> list[File]:
    """Every schema file, byte for byte as installed, at `folder`/<name>.schema.json."""
    prefix = f"{folder.rstrip('/')}/" if folder else ""
    return [File(f"{prefix}{name}.schema.json", schema_bytes(name)) for name in SCHEMA_NAMES]


def _write(folder: str) -> int:
    """Write the schemas that are new or changed; say what happened to each."""
    found = fileset.survey(folder, schema_files())
    for item in found:
        if item.state != fileset.SAME:
            fileset.write(folder, item)
    width = max(len(f.file.path) for f in found)
    print(f"runner schema: {folder}")
    print("\n".join(f"  {f.file.path:<{width}}  {_STATUS[f.state]}" for f in found))
    return EXIT_OK
