"""The HTML report: one self-contained page of job tables, inline SVG charts and distributions."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from markupsafe import Markup

from runner import __version__
from runner.errors import InstallationError
from runner.load.records import RequestRecord
from runner.report.capacitychart import capacity_charts
from runner.report.data import (
    Axis,
    Caveat,
    Job,
    all_jobs,
    axis,
    caveats,
    counts,
    flags,
    label,
    metric_definitions,
    run_info,
    stat,
    warnings,
)
from runner.report.gatewayview import HEADERS as GATEWAY_HEADERS
from runner.report.gatewayview import GatewayRow, gateway_rows
from runner.report.lengthsview import HEADERS as LENGTH_HEADERS
from runner.report.lengthsview import NOTE as LENGTH_NOTE
from runner.report.lengthsview import LengthRow, length_rows
from runner.report.prefixview import HEADERS as PREFIX_HEADERS
from runner.report.prefixview import PrefixRow, prefix_rows
from runner.report.reasoningview import ReasoningTable, reasoning_table
from runner.report.replayview import replay_line
from runner.report.servergroups import by_benchmark
from runner.report.svgchart import Series, line_chart
from runner.report.svgdist import histogram
from runner.report.timeline import client_series, server_charts, timeline_charts
from runner.report.turns import turn_charts
from runner.results.runs import StoredRun
from runner.servermetrics.timeline import job_server_series

SAMPLE_CAP = 2000  # requests per job drawn in a distribution (an evenly spaced sample)
DIST_JOBS = 40  # jobs per benchmark with a pre-rendered distribution
OPEN_JOBS = 120  # runs with more jobs start with only the first benchmark expanded
EXAMPLES = 3  # distinct error messages shown per job
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
METRIC_COLUMNS = (
    ("TTFT p50", "ttft_ms.p50"), ("TTFT p95", "ttft_ms.p95"), ("TPOT p50", "tpot_ms.p50"),
    ("TPOT p95", "tpot_ms.p95"), ("ITL p50", "itl_ms.p50"), ("E2E p50", "e2e_ms.p50"),
    ("E2E p95", "e2e_ms.p95"), ("Output tok/s", "throughput.output_tokens_per_s"),
    ("Req/s", "throughput.requests_per_s"), ("Inputs/s", "throughput.inputs_per_s"),
)
HEADERS = ("Model", "Params", "Status", "OK", "Failed", *(h for h, _ in METRIC_COLUMNS), "Error %")


@dataclass(frozen=True)
class Cell:
    """A table cell: its text and, for numbers, the value it sorts by."""

    text: str
    sort: float | None = None
    css: str = ""
    tip: str = ""


@dataclass(frozen=True)
class Dist:
    """One job's pre-rendered latency distributions."""

    job: str
    note: str
    charts: tuple[Markup, ...]
    timeline: tuple[Markup, ...] = ()  # per-second series of the whole job (report.timeline)
    server: tuple[Markup, ...] = ()  # the server's series from its scrapes (same time axis)
    server_note: str = ""  # why there are none (or not all), in one line


@dataclass(frozen=True)
class ErrorRow:
    job: str
    status: str
    kinds: str
    reason: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class BenchmarkView:
    """One benchmark's section of the page."""

    name: str
    anchor: str
    totals: dict[str, int]
    x_param: str
    charts: tuple[Markup, ...]
    rows: tuple[tuple[Cell, ...], ...]
    dists: tuple[Dist, ...]
    dist_note: str
    errors: tuple[ErrorRow, ...]
    caveats: tuple[Caveat, ...] = ()
    gateway: tuple[GatewayRow, ...] = ()  # model time beside the LiteLLM proxy's overhead
    reasoning: ReasoningTable | None = None  # TTFT beside TTFO, when a request reasoned
    lengths: tuple[LengthRow, ...] = ()  # prompt lengths against the target (issue 14 §6)
    prefix: tuple[PrefixRow, ...] = ()  # expected vs achieved prefix-cache hit rates


def render_html(run: StoredRun) -> str:
    """The whole page as one string (no external resources)."""
    jobs = all_jobs(run)
    views = [benchmark_view(run, name, group, i)
             for i, (name, group) in enumerate(by_benchmark(jobs).items())]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    try:
        template = env.get_template("report.html.j2")
    except jinja2.TemplateNotFound:
        raise InstallationError.missing("the report template report.html.j2") from None
    return str(template.render(
        info=run_info(run, jobs), banners=warnings(run, jobs), benchmarks=views,
        headers=HEADERS, gateway_headers=GATEWAY_HEADERS, definitions=metric_definitions(),
        length_headers=LENGTH_HEADERS, length_note=LENGTH_NOTE, prefix_headers=PREFIX_HEADERS,
        open_all=len(jobs) <= OPEN_JOBS, version=__version__))


def benchmark_view(run: StoredRun, name: str, jobs: Sequence[Job], index: int) -> BenchmarkView:
    ax = axis(jobs)
    requests = functools.cache(run.requests)  # a job's JSONL is read once for both uses
    shown = [j for j in jobs if (stat(j, "requests.ok") or 0) > 0][:DIST_JOBS]
    dists = tuple(distribution(j, requests(str(j["slug"])), job_server_series(run.run_dir, j))
                  for j in shown)
    note = (f"{len(shown)} of {len(jobs)} jobs" if len(shown) < len(jobs) else "every job")
    return BenchmarkView(name, f"b{index}", counts(jobs), ax.param or "model",
                         charts(jobs, ax) + capacity_charts(run.manifest.get("capacity"), name),
                         tuple(table_row(j) for j in jobs), dists,
                         f"Distributions of {note} (at most {DIST_JOBS} per benchmark, "
                         f"{SAMPLE_CAP:,} requests each).", error_rows(requests, jobs),
                         tuple(caveats(jobs)), gateway_rows(jobs, fmt),
                         reasoning_table(jobs, fmt), length_rows(jobs, fmt), prefix_rows(jobs))


# What a benchmark's charts show: latencies (p50 solid, p95 dashed) and one throughput. An
# embeddings answer has no tokens or chunks (README, Endpoints): its E2E and inputs/s instead.
CHARTED = (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT")), ("output_tokens_per_s", "Output tokens/s",
                                                       "tokens/s")
EMBEDDINGS_CHARTED = (("e2e_ms", "E2E latency"),), ("inputs_per_s", "Inputs/s", "inputs/s")


def charts(jobs: Sequence[Job], ax: Axis) -> tuple[Markup, ...]:
    """TTFT and TPOT (p50 solid, p95 dashed) and output tokens/s against the varied parameter;
    for a benchmark of embeddings jobs, E2E and inputs/s."""
    embeddings = bool(jobs) and all(
        (j.get("params") or {}).get("endpoint") == "embeddings" for j in jobs)
    latencies, (throughput, title, unit) = EMBEDDINGS_CHARTED if embeddings else CHARTED
    common: dict[str, Any] = {"x_label": ax.param or "model", "categories": ax.categories}
    pair = ("p50", "p95")
    latency = tuple(Markup(line_chart(_series(jobs, ax, metric, pair), title=name, y_label="ms",
                                      styles=pair, **common))
                    for metric, name in latencies)
    return (*latency, Markup(line_chart(_series(jobs, ax, "throughput", (throughput,)),
                                        title=title, y_label=unit, **common)))


def _series(jobs: Sequence[Job], ax: Axis, metric: str, stats: Sequence[str]) -> list[Series]:
    names = list(dict.fromkeys(ax.series))
    rows = list(zip(jobs, ax.xs, ax.series, strict=True))
    return [Series(name, tuple((x, _number(stat(j, f"{metric}.{s}"))) for j, x, n in rows
                               if n == name), color=i, dashed=k > 0)
            for i, name in enumerate(names) for k, s in enumerate(stats)]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def fmt(value: Any) -> str:
    """A table number: 2.93, 18.4, 3,302; a dash when missing."""
    number = _number(value)
    if number is None:
        return "–"
    if abs(number) >= 100:
        return f"{number:,.0f}"
    return f"{number:.1f}" if abs(number) >= 10 else f"{number:.2f}"


def table_row(job: Job) -> tuple[Cell, ...]:
    status = str(job.get("status"))
    found = flags(job)
    rate = _number(stat(job, "error_rate"))
    return (
        Cell(str(job.get("model")), tip=str(job.get("id"))),
        Cell(label(job)),
        Cell(" · ".join([status, *found]), css=f"status s-{status}" + (" flag" if found else ""),
             tip=str(job.get("error") or "; ".join(f"{c.code}: {c.figure}"
                                                    for c in caveats([job])))),
        *(_count(stat(job, f"requests.{k}")) for k in ("ok", "failed")),
        *(Cell(fmt(stat(job, path)), _number(stat(job, path)), "num")
          for _, path in METRIC_COLUMNS),
        Cell(fmt(rate * 100) if rate is not None else "–", rate, "num"),
    )


def _count(value: Any) -> Cell:
    number = _number(value)
    return Cell("–" if number is None else f"{number:,.0f}", number, "num")


def distribution(job: Job, records: Sequence[RequestRecord],
                 server: Mapping[str, Any] | None = None) -> Dist:
    """TTFT and E2E histograms (with CDF) of the job's ok requests, sampled to SAMPLE_CAP; the
    job's client timeline and, from `server` (timeline.server), the server's."""
    ok = [r for r in records if r.ok and not r.warmup]
    sample = ok
    if len(ok) > SAMPLE_CAP:
        sample = [ok[i * len(ok) // SAMPLE_CAP] for i in range(SAMPLE_CAP)]
    note = f"{len(sample):,} of {len(ok):,} ok requests"
    note += " (an evenly spaced sample)" if len(sample) < len(ok) else ""
    note += f"; {replayed}" if (replayed := replay_line(job)) else ""
    embeddings = (job.get("params") or {}).get("endpoint") == "embeddings"  # no TTFT
    return Dist(str(job.get("id")), note, (
        *([] if embeddings else [_histogram(job, "ttft_ms", "TTFT", [r.ttft_ms for r in sample])]),
        _histogram(job, "e2e_ms", "E2E latency", [r.e2e_ms for r in sample]),
        *turn_charts(job, fmt),
    ), tuple(map(Markup, timeline_charts(client_series(records), server, embeddings))),
        tuple(map(Markup, server_charts(server or {}))), str((server or {}).get("note") or ""))


def _histogram(job: Job, metric: str, title: str, values: Sequence[float | None]) -> Markup:
    marks = [(s, v) for s in ("p50", "p99") if (v := _number(stat(job, f"{metric}.{s}")))
             is not None]
    return Markup(histogram([v for v in values if v is not None], title=title, x_label="ms",
                            marks=marks))


def error_rows(
    requests: Callable[[str], Sequence[RequestRecord]], jobs: Sequence[Job]
) -> tuple[ErrorRow, ...]:
    """Every job that did not end ok or had failed requests: kinds, reason, example messages."""
    rows = []
    for job in jobs:
        failed = stat(job, "requests.failed") or 0
        if job.get("status") == "ok" and not failed:
            continue
        kinds = stat(job, "errors") or {}
        examples = _examples(requests(str(job["slug"]))) if failed else ()
        rows.append(ErrorRow(str(job.get("id")), str(job.get("status")),
                             ", ".join(f"{k} ×{n}" for k, n in kinds.items()) or "–",
                             str(job.get("error") or ""), examples))
    return tuple(rows)


def _examples(records: Sequence[RequestRecord]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for r in records:
        if not r.ok and len(seen) < EXAMPLES:
            kind = r.error_kind or "unknown"
            kind += f"_{r.http_status}" if kind == "http" and r.http_status else ""
            text = f"{kind}: {r.error or '(no message)'}"
            seen[text[:300]] = None
    return tuple(seen)
