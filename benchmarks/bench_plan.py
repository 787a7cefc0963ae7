"""How fast is `runner plan --json` on a big inventory and plan? Prints numbers, asserts nothing.

A synthetic inventory of 10,000 ids and a plan of 50 benchmarks expanding to about 20,000 jobs.
`runner plan --json` end to end, with the inventory from the fallback file (no network at all;
first run and cached runs) and live from a loopback simulator serving the same 10,000 ids;
`runner --help`; and an in-process breakdown by stage.
Run: .venv/bin/python benchmarks/bench_plan.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ORGS, PER_ORG, BENCHMARKS = 100, 100, 50
RUNS = 5


def model_ids() -> list[str]:
    return [f"org{org:03d}/model-{i:03d}{'-FP8' if i % 10 == 9 else ''}"
            for org in range(ORGS) for i in range(PER_ORG)]


def write_inputs(folder: Path) -> Path:
    configs = folder / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(
        "default: big\nservers:\n  big:\n    url: http://127.0.0.1:9\n")
    lines = ["models:"] + [f"  - {{id: {model}, mode: chat}}" for model in model_ids()]
    (configs / "models.yaml").write_text("\n".join(lines) + "\n")
    plan = ["version: 1", "name: big", "benchmarks:"]
    for b in range(BENCHMARKS):
        spec = f"org{2 * b:03d}/*, ~org{2 * b + 1:03d}/model-0[0-4], !*-FP8"
        plan += [f"  - name: bench-{b:02d}", f"    models: '{spec}'",
                 "    matrix: {concurrency: [1, 4, 16]}",
                 "    load: {requests: 50}"]
    path = folder / "big.yaml"
    path.write_text("\n".join(plan) + "\n")
    return path


def timed_runs(cmd: list[str], env: dict[str, str], cwd: Path,
               runs: int = RUNS) -> tuple[list[float], str]:
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        out = proc.stdout
    return times, out


def stage(name: str, fn: Callable[[], Any], rows: list[tuple[str, float]]) -> Any:
    start = time.perf_counter()
    value = fn()
    rows.append((name, time.perf_counter() - start))
    return value


def breakdown(plan_path: Path, configs: Path) -> list[tuple[str, float]]:
    from runner.commands.plan import to_json
    from runner.inventory import config
    from runner.inventory.listing import from_fallback
    from runner.plan.planfile import load_plan
    from runner.plan.selection import Options, select

    rows: list[tuple[str, float]] = []
    plan = stage("load + render + validate plan", lambda: load_plan(str(plan_path)), rows)
    models = stage("load + validate models.yaml (no cache)",
                   lambda: config.load_models(str(configs)), rows)
    server = config.load_servers(str(configs)).servers["big"]
    inv = stage("fallback inventory", lambda: from_fallback(server, models, "bench"), rows)
    chosen = stage("resolve patterns + expand jobs",
                   lambda: select(plan, inv.ids(), models.groups, Options(max_jobs=100_000)), rows)
    report = stage("build JSON view", lambda: to_json(plan, inv, chosen), rows)
    stage("json.dumps (compact)", lambda: json.dumps(report, separators=(",", ":")), rows)
    return rows


@contextlib.contextmanager
def simulator_thread() -> Iterator[str]:
    """The simulator serving 10,000 ids, in a thread (that many ids do not fit in an argv)."""
    from runner.mock.server import MockConfig, serving

    urls: queue.Queue[str] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        async with serving(MockConfig(models=tuple(model_ids()))) as url:
            urls.put(url)
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield urls.get(timeout=30)
    finally:
        stop.set()
        thread.join(10)


def live_runs(folder: Path, plan_path: Path) -> list[float]:
    """`runner plan --json` against a simulator serving the 10,000 ids over loopback."""
    live = folder / "live-configs"
    live.mkdir()
    with simulator_thread() as url:
        (live / "servers.yaml").write_text(f"servers:\n  big:\n    url: {url}\n")
        env = {**os.environ, "RUNNER_CONFIG_DIR": str(live)}
        runner = str(Path(sys.executable).with_name("runner"))
        cmd = [runner, "plan", str(plan_path), "--json", "--max-jobs", "100000"]
        times, out = timed_runs(cmd, env, folder)
    assert json.loads(out)["inventory"]["source"] == "live"
    return times


def main() -> None:
    runner = str(Path(sys.executable).with_name("runner"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plan_path = write_inputs(folder)
        env = {**os.environ, "RUNNER_CONFIG_DIR": str(folder / "configs"),
               "RUNNER_CACHE_DIR": str(folder / "cache")}
        plan_cmd = [runner, "plan", str(plan_path), "--json", "--source", "fallback",
                    "--max-jobs", "100000"]
        cold_times, _ = timed_runs(plan_cmd, env, folder, runs=1)
        plan_times, out = timed_runs(plan_cmd, env, folder)
        live_times = live_runs(folder, plan_path)
        help_times, _ = timed_runs([runner, "--help"], env, folder)
        rows = breakdown(plan_path, folder / "configs")
    report = json.loads(out)
    print(f"inventory ids: {report['inventory']['model_count']}, benchmarks: "
          f"{len(report['benchmarks'])}, jobs: {report['totals']['jobs']}, "
          f"JSON: {len(out) / 1e6:.1f} MB")
    print(f"runner plan --json, first run (parses and caches models.yaml): {cold_times[0]:.3f} s")
    print(f"runner plan --json (end to end, {RUNS} runs): median "
          f"{statistics.median(plan_times):.3f} s, min {min(plan_times):.3f} s  [target < 1 s]")
    print(f"runner plan --json, inventory live from a loopback simulator ({RUNS} runs): median "
          f"{statistics.median(live_times):.3f} s, min {min(live_times):.3f} s")
    print(f"runner --help ({RUNS} runs): median {statistics.median(help_times) * 1000:.0f} ms, "
          f"min {min(help_times) * 1000:.0f} ms  [target < 300 ms]")
    print("in-process breakdown:")
    for name, seconds in rows:
        print(f"  {name:<34} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
