"""`runner schema NAME`: print a JSON Schema."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

from runner.errors import EXIT_OK
from runner.schema import load_schema


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    print(json.dumps(load_schema(args.name), indent=2))
    return EXIT_OK
