"""What does a hostile server cost the client? Prints time and memory per case, asserts nothing.

Each case is one request (or one inventory fetch) from a fresh child process against
tests/hostile_server.py: seconds until the request ended, the child's RSS before it (base) and
at its peak, and what the request became. A child still busy after WALL_S is killed.
Run: .venv/bin/python benchmarks/hostile.py [CASE ...]   (under a minute when the caps hold)
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))

from hostile_client import measure
from hostile_server import hostile_server

WALL_S = 100.0
# name: (mode, server case, parameters)
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "16 MB line": ("load", "line~16000000", {"request_timeout_s": 90}),
    "16 MB line (cap raised)": ("load", "line~16000000",
                                {"request_timeout_s": 90, "limits": {"line_bytes": 32 << 20}}),
    "100 MB line": ("load", "line~100000000", {"request_timeout_s": 90}),
    "100 MB line (cap raised)": ("load", "line~100000000",
                                 {"request_timeout_s": 90, "limits": {"line_bytes": 128 << 20}}),
    "gzip bomb (256 MiB line)": ("load", "gzip", {"request_timeout_s": 90}),
    "1 GiB error body": ("load", "errbody", {"request_timeout_s": 90}),
    "endless token stream": ("load", "endless", {"request_timeout_s": 30}),
    "deep JSON answer": ("load", "deep", {}),
    "slow drip, timeout 3 s": ("load", "drip", {"request_timeout_s": 3}),
    "endless empty events, timeout 3 s": ("load", "idle", {"request_timeout_s": 3}),
    "1 GB /v1/models": ("inventory", "line~1000000000", {"timeout_s": 60}),
    "gzip bomb /v1/models": ("inventory", "gzip", {"timeout_s": 60}),
    "deep JSON /v1/models": ("inventory", "deep", {}),
}


def main(names: list[str]) -> None:
    print(f"{'case':<34} {'seconds':>8} {'base MB':>8} {'peak MB':>8}  outcome")
    with hostile_server() as url:
        for name in names or list(CASES):
            mode, case, params = CASES[name]
            figures = measure(mode, url(case), params, WALL_S)
            outcome = figures["outcome"]
            if figures.get("error"):
                outcome += f": {figures['error'][:70]}"
            if "record_bytes" in figures:
                outcome += f" [record {figures['record_bytes']:,} B]"
            print(f"{name:<34} {figures['seconds']:>8.2f} {figures.get('base_mb', 0):>8.0f}"
                  f" {figures['peak_mb']:>8.0f}  {outcome}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
