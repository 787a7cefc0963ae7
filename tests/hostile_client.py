"""One request (or one inventory fetch) against a hostile server, in a child process whose time
and peak memory are measured: `measure("load", url, params)` -> figures. Used by the hostile
tests and benchmarks/hostile.py.

The child prints one JSON line: seconds, base_mb (RSS before the request), peak_mb (VmHWM),
and what came of it (the record's error kind and message, or the inventory's source and
reason). A child still running after `wall_s` is killed; its figures then say so.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

ADDRESS_SPACE = 6 << 30  # the child's cap: a runaway answer fails it instead of the machine


def _status_mb(pid: int | str, field: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def measure(mode: str, url: str, params: dict[str, Any] | None = None,
            wall_s: float = 60.0) -> dict[str, Any]:
    """Run the child (`mode` "load" or "inventory") against `url`; its figures."""
    argv = [sys.executable, os.path.abspath(__file__), mode, url, json.dumps(params or {})]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": _root_path()})
    try:
        out, err = proc.communicate(timeout=wall_s)
    except subprocess.TimeoutExpired:
        peak = _status_mb(proc.pid, "VmHWM")
        proc.kill()
        proc.communicate()
        return {"seconds": time.monotonic() - started, "peak_mb": peak, "killed": True,
                "outcome": f"still running after {wall_s:g} s: killed"}
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = err.strip().splitlines()[-1:] or ["no output"]
        return {"seconds": time.monotonic() - started, "peak_mb": float("nan"),
                "crashed": True, "outcome": f"exit {proc.returncode}: {last[0]}"}
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def _root_path() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


def _load(url: str, params: dict[str, Any]) -> dict[str, Any]:
    from runner.load.exchange import Target
    from runner.load.loadgen import run_load
    from runner.load.workload import prompt_source

    limits = params.pop("limits", {})  # servers.yaml `limits`
    job = {"endpoint": "chat", "input_tokens": 8, "max_tokens": 4, "temperature": 0, "seed": 0,
           "stream": True, "concurrency": 1, "requests": 1, "warmup_requests": 0,
           "request_timeout_s": 30, **params}
    target = Target(url, {}, "m", limits)
    result = asyncio.run(run_load(target, job, prompt_source(job, ".", {})))
    record = result.records[0] if result.records else None
    if record is None:
        return {"outcome": "no record", "records": 0}
    line = json.dumps(record.to_json())
    return {"outcome": record.error_kind or "ok", "error": record.error,
            "records": len(result.records), "record_bytes": len(line),
            "chunks": record.content_chunks}


def _inventory(url: str, params: dict[str, Any]) -> dict[str, Any]:
    from runner.inventory.config import ModelEntry, ModelsConfig, Server
    from runner.inventory.source import load_inventory

    server = Server("hostile", url, timeout_s=float(params.get("timeout_s", 30)))
    models = ModelsConfig("configs/models.yaml", models=(ModelEntry("fallback-model"),))
    inventory = load_inventory(server, models, {})
    return {"outcome": inventory.source, "error": inventory.fallback_reason,
            "models": len(inventory.models)}


def main(mode: str, url: str, params: dict[str, Any]) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    import aiohttp  # noqa: F401  (imported before the base figure: it is not the answer's cost)
    import httpx  # noqa: F401

    base = _status_mb("self", "VmRSS")
    started = time.perf_counter()
    figures = _load(url, params) if mode == "load" else _inventory(url, params)
    seconds = time.perf_counter() - started
    print(json.dumps({**figures, "seconds": seconds, "base_mb": base,
                      "peak_mb": _status_mb("self", "VmHWM")}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
