"""Command line: parse argv, dispatch to runner.commands.<name>, map errors to exit codes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from runner import __version__, cache, defaults, interrupts
from runner.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, InputError, RunnerError
from runner.printable import lone_surrogate, printable

_EPILOG = """exit codes: 0 ok, 1 jobs failed, 2 invalid input or locked by another runner,
3 inventory/resolution error,
4 quality gate failed, 5 saved plan is stale, 70 internal error,
74 disk full (a file could not be written), 130 interrupted"""


def _add_config_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-dir", metavar="DIR",
                        help="folder with servers.yaml and models.yaml (default: "
                             "$RUNNER_CONFIG_DIR, else the nearest configs/ at or above the "
                             "plan's folder, else at or above the current folder)")


def _add_inventory_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="NAME",
                        help="server from servers.yaml (default: $RUNNER_SERVER, the plan's "
                             "inventory.server, then servers.yaml's default)")
    parser.add_argument("--source", choices=("auto", "live", "fallback"), default="auto",
                        help="live: never fall back; fallback: never call the proxy "
                             "(default: auto)")
    _add_config_dir(parser)


def _add_selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", metavar="PATTERN",
                        help="intersect every benchmark's models with this pattern")
    parser.add_argument("--tags", metavar="a,b", help="only benchmarks with one of these tags")
    parser.add_argument("--skip-tags", metavar="a,b", help="leave out benchmarks with these tags")
    parser.add_argument("-e", "--extra-vars", metavar="KEY=VALUE", action="append", default=[],
                        help="template variable, wins over the plan's vars (repeatable)")
    parser.add_argument("--max-jobs", type=int, metavar="N",
                        help="refuse plans expanding to more jobs (default: 10000)")


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def workers(text: str) -> int | str:
    """`--workers`' value: N (from 1) or auto (argparse type)."""
    from runner.run.workercount import parse_workers

    try:
        return parse_workers(text.strip().lower())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration(text: str) -> float:
    """Seconds from `90`, `90s`, `500ms`, `10m` or `1h` (argparse type)."""
    value = text.strip().lower()
    unit = next((u for u in ("ms", "s", "m", "h") if value.endswith(u)), "")
    try:
        seconds = float(value.removesuffix(unit)) * _UNITS.get(unit, 1.0)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: give seconds or a number with ms, s, m or h, e.g. 10m")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner", description="Declarative, version-controlled LLM benchmarks.",
        epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"runner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("validate", help="check plans (and config files) against their schemas",
                       epilog=_EPILOG)
    p.add_argument("files", nargs="+", metavar="FILE", help="plan, servers.yaml or models.yaml")
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument("-e", "--extra-vars", metavar="KEY=VALUE", action="append", default=[])
    _add_config_dir(p)

    p = sub.add_parser("inventory", help="list the models a server serves now", epilog=_EPILOG)
    p.add_argument("pattern", nargs="?", help="only models matching this pattern")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_inventory_options(p)

    p = sub.add_parser("plan", help="show which models and jobs a plan would run (dry run)",
                       epilog=_EPILOG)
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--out", metavar="FILE",
                   help="save a lock that `runner apply FILE` runs exactly")
    p.add_argument("--probe", action="store_true",
                   help="send one tiny request per selected model first (a few tokens each) and "
                        "drop the models the key cannot call, with the reason; also check the "
                        "key's limits (GET /key/info). Off by default: plan stays offline-cheap")
    _add_inventory_options(p)
    _add_selection_options(p)

    p = sub.add_parser("apply", help="run a plan (or a saved plan lock) and keep the results",
                       epilog=_EPILOG)
    p.add_argument("plan", metavar="PLAN|LOCK",
                   help="a plan file, or a lock saved by `runner plan --out`")
    _add_inventory_options(p)
    _add_selection_options(p)
    p.add_argument("--results", metavar="DIR", default="results",
                   help="where runs are stored (default: ./results)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run of this same plan: skip its complete jobs, run the rest "
                        "(with --limit/--tags: only those; the run stays partial until all ran)")
    p.add_argument("--lock-timeout", type=duration, default=0.0, metavar="DURATION",
                   help="while another runner benchmarks the same server, wait this long for "
                        "it (e.g. 90s, 10m, 1h) instead of failing (default: 0, fail at once)")
    p.add_argument("--fail-fast", action="store_true", help="stop after the first failed job")
    p.add_argument("--forks", type=int, default=1, metavar="N",
                   help="run jobs of up to N different servers side by side (default: 1)")
    p.add_argument("--workers", type=workers, default=1, metavar="N|auto",
                   help="split each job's load over N worker processes, each with its own "
                        "event loop and connections (default: 1, in this process); auto: one "
                        f"per {defaults.WORKER_STREAMS} streams or {defaults.WORKER_RATE:g} "
                        "req/s of the job, at most one per core")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where each job's load runs: local (this machine: this process, or "
                        "--workers processes) or ray (actors on a Ray cluster, one per worker; "
                        "needs runner[ray])")
    p.add_argument("--ray-address", metavar="HOST:PORT|auto",
                   help="the Ray cluster for --executor ray (default: $RAY_ADDRESS)")
    p.add_argument("--force", action="store_true",
                   help="run even though the plan file changed since the lock was saved or "
                        "since the --resume'd run started, or the plan passes the key's "
                        "rpm/tpm limits or budget")
    p.add_argument("--no-probe", action="store_true",
                   help="do not probe the models before the run (by default apply sends one "
                        "tiny request per model and drops those the key cannot call: 401, "
                        "403, 404, wrong mode) nor check the key's limits")
    p.add_argument("--allow-drift", action="store_true",
                   help="with a lock: skip jobs of models the server no longer serves")
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.html and summary.md into the run directory")
    p.add_argument("--gate", action="store_true",
                   help="exit 4 when any job misses its SLO (also: `gate: true` in the plan)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per job")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print only the RECAP")
    noise.add_argument("-v", "--verbose", action="store_true", help="print more detail")

    _add_results_parsers(sub)

    p = sub.add_parser("schema", help="print a JSON Schema, or write them all into a folder",
                       epilog=_EPILOG)
    p.add_argument("name", nargs="?", choices=("plan", "servers", "models", "result", "lock"),
                   help="the schema to print (leave it out with --write)")
    p.add_argument("--write", metavar="DIR",
                   help="write every schema into DIR (created if needed), replacing older "
                        "copies, e.g. `--write schemas` after an upgrade; prints what changed")

    _add_init_parser(sub)

    p = sub.add_parser(
        "mock-server", help="serve a simulated OpenAI-compatible endpoint", epilog=_EPILOG,
        description="Serves GET /v1/models, POST /v1/chat/completions, /v1/completions and "
                    "/v1/responses (streamed or not), and /v1/embeddings (deterministic vectors of "
                    "--embedding-dim floats), with deterministic timing: token k is sent at ttft + "
                    "k*itl after the request arrived. usage.prompt_tokens counts the prompt's "
                    "whitespace-separated words (x --tokens-per-word), as vLLM's POST /tokenize "
                    "does (unless --no-tokenize). GET /mock/stats shows request counts and the "
                    "server's own write lag; POST /mock/stats/reset clears them. With --max-streams"
                    " N at most N answers run at once: the others wait in a FIFO queue, and their "
                    "timing starts when they leave it. GET /metrics serves its prefix cache's "
                    "counters (with --prefix-cache-blocks).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0: a free port (default: 8000)")
    p.add_argument("--models", default="mock-model", metavar="a,b",
                   help="model ids served (default: mock-model)")
    p.add_argument("--ttft-ms", type=float, default=50.0, help="time to first token (default: 50)")
    p.add_argument("--itl-ms", type=float, default=10.0, help="inter-token latency (default: 10)")
    p.add_argument("--output-tokens", type=int, default=128, metavar="N",
                   help="natural answer length, as if EOS came there (default: 128)")
    p.add_argument("--max-streams", type=int, default=None, metavar="N",
                   help="answers served at once; more wait in a FIFO queue before their time "
                        "to first token starts (default: no limit)")
    p.add_argument("--reasoning-tokens", type=int, default=0, metavar="N",
                   help="chat answers stream N delta.reasoning_content tokens before the answer, "
                        "counted in usage completion_tokens_details.reasoning_tokens (default: 0)")
    p.add_argument("--tokens-per-word", type=float, default=1.0, metavar="R",
                   help="simulated tokenizer: a prompt's word counts R tokens (default: 1)")
    p.add_argument("--no-tokenize", action="store_true",
                   help="do not serve vLLM's POST /tokenize (prompt token counts)")
    p.add_argument("--embedding-dim", type=int, default=8, metavar="N",
                   help="floats per vector of /v1/embeddings (default: 8)")
    p.add_argument("--prefix-cache-blocks", type=int, default=0, metavar="N",
                   help="blocks of 16 prompt words its prefix cache keeps, least recently used "
                        "evicted; its counters are served at GET /metrics as vLLM names them "
                        "(default 0: no cache and no /metrics)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key", metavar="KEY", help="require `Authorization: Bearer KEY`")
    key.add_argument("--api-key-env", metavar="NAME",
                     help="the same, with the key read from $NAME (keeps it out of `ps`)")
    return parser


def _add_init_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init", help="start a project: configs, an example plan and the JSON Schemas",
        epilog=_EPILOG,
        description="Writes configs/servers.yaml (your proxy, the default server, and `demo`, "
                    "the built-in simulator), configs/models.yaml (groups and the fallback "
                    "inventory), plans/example.yaml and schemas/*.schema.json into DIR, then "
                    "prints the next commands. It never replaces a file: one with the same "
                    "content is kept (unchanged), one that differs is kept and listed; "
                    "--force FILE replaces that file. With --url it asks the proxy once for "
                    "its models (key from $NAME of --api-key-env, never written) and lists "
                    "them in models.yaml. An unreachable proxy is a WARNING: the files are "
                    "written, models.yaml without models, exit 0. A refused key (or any other "
                    "refusal) is exit 3 and nothing is written.")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR",
                   help="the project folder, created if needed (default: .)")
    p.add_argument("--url", metavar="URL",
                   help="your LiteLLM proxy's base URL; its models are fetched once "
                        f"(default: {defaults.INIT_URL}, not fetched)")
    p.add_argument("--api-key-env", metavar="NAME", default=defaults.INIT_API_KEY_ENV,
                   help="the environment variable that holds the proxy's key "
                        f"(default: {defaults.INIT_API_KEY_ENV})")
    p.add_argument("--server", metavar="NAME", default=defaults.INIT_SERVER,
                   help=f"the proxy's name in servers.yaml (default: {defaults.INIT_SERVER})")
    p.add_argument("--force", metavar="FILE", action="append", nargs="?", const="",
                   help="replace FILE (relative to DIR, e.g. configs/models.yaml) even if it "
                        "differs; repeat it for more files; give DIR before it. A bare --force "
                        "is refused (exit 2): name the files")


def _add_results_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="render a stored run as HTML, Markdown, CSV or JSON",
                       epilog=_EPILOG)
    p.add_argument("run", metavar="RUN", help="run directory, run id, latest or previous")
    p.add_argument("--format", choices=("html", "md", "csv", "json"), default="html")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write here; `-` is stdout (default: stdout, except HTML on a "
                        "terminal, which goes to the run's report.html)")
    p.add_argument("--plan", metavar="NAME", help="the plan whose latest/previous run to use")
    p.add_argument("--results", metavar="DIR", default="results")

    p = sub.add_parser("compare", help="compare two runs; exit 4 on a regression or a "
                       "missing job",
                       epilog=_EPILOG)
    p.add_argument("base", metavar="BASE", help="run directory, run id, latest or previous")
    p.add_argument("new", metavar="NEW", help="run directory, run id, latest or previous")
    p.add_argument("--threshold", default="10%", metavar="PCT",
                   help="a change worse than this is a regression (default: 10%%)")
    p.add_argument("--metric", metavar="a,b", help="metrics to compare, e.g. ttft_p95,tpot_p50")
    p.add_argument("--format", choices=("text", "md", "json"), default="text")
    p.add_argument("--plan", metavar="NAME", help="the plan whose latest/previous runs to use")
    p.add_argument("--results", metavar="DIR", default="results")
    p.add_argument("--gate", action="store_true",
                   help="exit 4 on a regression or on jobs of BASE missing from NEW "
                        "(always on; for scripts that spell it out)")
    p.add_argument("--allow-missing", action="store_true",
                   help="jobs of BASE missing from NEW are listed but do not fail the gate")
    p.add_argument("--gate-invalid", action="store_true",
                   help="gate on jobs that are not valid (degraded or invalid verdict) too; "
                        "by default they are set aside and listed")

    p = sub.add_parser("history", help="a metric over time per job, from the results index",
                       epilog=_EPILOG)
    p.add_argument("--plan", metavar="NAME")
    p.add_argument("--benchmark", metavar="NAME")
    p.add_argument("--model", metavar="PATTERN")
    p.add_argument("--metric", metavar="NAME",
                   help="default ttft_p95; e2e_p95 where no job has a TTFT (embeddings)")
    p.add_argument("--last", type=int, metavar="N", default=20)
    p.add_argument("--format", choices=("text", "json", "csv"), default="text")
    p.add_argument("--results", metavar="DIR", default="results")
    _add_config_dir(p)  # servers.yaml's results.index_url

    p = sub.add_parser("new", help="write a plan interactively from the live inventory",
                       epilog=_EPILOG)
    p.add_argument("--name", metavar="NAME", help="plan name (plans/NAME.yaml)")
    p.add_argument("--server", metavar="NAME")
    p.add_argument("--models", metavar="PATTERN", help="model pattern (no question asked)")
    p.add_argument("--preset", choices=("latency", "throughput", "long-context"))
    p.add_argument("--source", choices=("auto", "live", "fallback"), default="auto")
    p.add_argument("--plans-dir", metavar="DIR", default="plans")
    p.add_argument("--yes", action="store_true", help="accept defaults; never ask")
    _add_config_dir(p)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    with interrupts.catching():
        return _dispatch(argv)


def _dispatch(argv: Sequence[str] | None) -> int:
    signals = interrupts.active()
    try:
        signals.check()  # a signal during start-up whose KeyboardInterrupt Python swallowed
        _refuse_undecodable(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        command = importlib.import_module(f"runner.commands.{args.command.replace('-', '_')}")
        code: int = command.run(args, dict(os.environ))
        signals.check()  # ... or one during a command that never holds them
        return code
    except RunnerError as exc:
        for line in exc.lines():
            print(f"error: {printable(line)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`runner history | head`): all it wanted was read; say nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        log = _write_crash_log()
        print(f"internal error: {type(exc).__name__}: {printable(exc)} (traceback in {log})",
              file=sys.stderr)
        return EXIT_INTERNAL


def _refuse_undecodable(argv: Sequence[str]) -> None:
    """An argument holding bytes that are not UTF-8 (Python keeps them as lone surrogates) is
    an InputError: it would reach a manifest, a request or the index, which cannot hold it."""
    for arg in argv:
        if lone_surrogate(arg) is not None:
            raise InputError(f"argument '{printable(arg)}' is not UTF-8 text (the escapes are "
                             "bytes of another encoding): rename the file or give the value "
                             "in UTF-8")


def _write_crash_log() -> str:
    """Append the traceback to crash.log in runner's cache folder ($RUNNER_CACHE_DIR, else
    $XDG_CACHE_HOME/runner, else ~/.cache/runner); returns its path, or why it has none."""
    folder = cache.cache_dir(os.environ)
    path = os.path.join(folder, "crash.log")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"runner {__version__} {sys.argv!r}\n{traceback.format_exc()}\n")
    except OSError:
        return "(could not write the crash log)"
    return path


def entry() -> None:
    """Console-script entry point."""
    interrupts.install()
    try:
        code = main()
    except KeyboardInterrupt:  # a signal between start-up and main's own handling
        print("interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    interrupts.settle()
    sys.exit(code)
