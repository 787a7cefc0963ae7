"""Compare two stored runs job by job: deltas, direction-aware verdicts, and noise."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any, Protocol

from runner.errors import InputError
from runner.load.records import RequestRecord
from runner.plan.servers import id_server
from runner.report.endpointrows import pair_metrics
from runner.report.noise import Interval, difference_interval, repetition_intervals, request_values
from runner.results.capacityjobs import CAPACITY, capacity_jobs
from runner.run.validity import set_aside

DEFAULT_METRICS = ("ttft_p50", "ttft_p95", "tpot_p50", "e2e_p95", "output_tps", "error_rate")
# A change smaller than this is "same": relative for most metrics, absolute for error_rate.
SAME_RELATIVE = 0.005
SAME_ABSOLUTE = 0.0005
NO_DATA = "no data"  # the verdict of a row with no value on a side: skipped, never gates


@dataclass(frozen=True)
class Metric:
    """A friendly metric name: where its value sits in a job summary, and which way is better."""

    name: str
    path: tuple[str, ...]  # inside the summary's `metrics`
    unit: str
    higher_is_better: bool = False
    absolute: bool = False  # judged by the absolute delta (error_rate: its base is often 0)
    samples: str | None = None  # the request field whose spread separates noise from change
    root: str = "metrics"  # the summary's block that holds it (server_metrics: the server's)

    @property
    def index_name(self) -> str:
        """The dotted name of this metric in the results index (`ttft_ms.p95`,
        `server_metrics.series.requests_waiting.max`)."""
        inside = ".".join(self.path)
        return inside if self.root == "metrics" else f"{self.root}.{inside}"

    def value(self, summary: Mapping[str, Any]) -> float | None:
        """This metric's value in a job summary; None when it is missing."""
        data: Any = summary.get(self.root)
        for key in self.path:
            data = data.get(key) if isinstance(data, Mapping) else None
        ok = isinstance(data, int | float) and not isinstance(data, bool) and math.isfinite(data)
        return float(data) if ok else None


# A capacity search's result (runner.results.capacityjobs): compared whenever both runs have it.
CAPACITY_METRIC = Metric(CAPACITY, (CAPACITY,), "req/s or streams", higher_is_better=True)


def _metric_table() -> dict[str, Metric]:
    table: dict[str, Metric] = {}
    for short in ("ttft", "tpot", "itl", "e2e", "ttfo"):  # ttfo: reasoning models (issue 14)
        for stat in ("p50", "p90", "p95", "p99", "mean"):
            field = f"{short}_ms"
            table[f"{short}_{stat}"] = Metric(f"{short}_{stat}", (field, stat), "ms", samples=field)
    for metric in (
        Metric("output_tps", ("throughput", "output_tokens_per_s"), "tok/s", True),
        Metric("request_tps", ("throughput", "requests_per_s"), "req/s", True),
        Metric("total_tps", ("throughput", "total_tokens_per_s"), "tok/s", True),
        Metric("prompt_tps", ("throughput", "prompt_tokens_per_s"), "tok/s", True),
        Metric("input_tps", ("throughput", "inputs_per_s"), "inputs/s", True),  # embeddings
        Metric("goodput", ("goodput", "requests_per_s"), "req/s", True),
        Metric("error_rate", ("error_rate",), "%", absolute=True),
        # Session jobs (workload.session): TTFT p50 of turn 1 and of the last turn answered
        Metric("turn_ttft_first_p50", ("by_turn", "ttft_p50", "first"), "ms"),
        Metric("turn_ttft_last_p50", ("by_turn", "ttft_p50", "last"), "ms"),
        # the server's mean prompt length: a change says the runs sent different workloads
        Metric("prompt_tokens_mean", ("prompt_tokens", "mean"), "tokens"),
        # a shared-prefix job's achieved prefix-cache hit rate (metrics.prefix_cache), a share
        Metric("prefix_hit_rate", ("prefix_cache", "achieved"), "fraction", True, absolute=True),
        CAPACITY_METRIC,
    ):
        table[metric.name] = metric
    return table | _server_metric_table()


def _server_metric_table() -> dict[str, Metric]:
    """The server's own figures (its Prometheus metrics, summarised per job)."""
    def server(name: str, path: tuple[str, ...], unit: str, higher_is_better: bool = False,
               absolute: bool = False) -> Metric:
        return Metric(name, path, unit, higher_is_better, absolute, root="server_metrics")

    metrics = [server("server_tps", ("generation_tokens_per_s",), "tok/s", higher_is_better=True),
               server("server_preemptions", ("series", "preemptions", "delta"), "preemptions",
                      absolute=True)]
    for short, series in (("waiting", "requests_waiting"), ("running", "requests_running"),
                          ("kv_cache", "kv_cache_usage")):
        unit = "fraction" if short == "kv_cache" else "requests"
        metrics += [server(f"server_{short}_{stat}", ("series", series, stat), unit)
                    for stat in ("mean", "max")]
    return {m.name: m for m in metrics}


METRICS: Mapping[str, Metric] = _metric_table()


def find_metric(name: str) -> Metric:
    """The metric called `name`; InputError with close names when there is none."""
    if name in METRICS:
        return METRICS[name]
    close = difflib.get_close_matches(name, list(METRICS), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(METRICS)}"
    raise InputError(f"unknown metric '{name}'; {hint}")


def parse_metrics(spec: str | None) -> tuple[Metric, ...]:
    """The metrics of a comma-separated `--metric` value; the default set when None."""
    names = DEFAULT_METRICS if spec is None else [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise InputError(f"--metric names no metric; known: {', '.join(METRICS)}")
    return tuple(dict.fromkeys(find_metric(n) for n in names))


def parse_threshold(text: str) -> float:
    """A `--threshold` as a fraction: "10%" and "0.1" both give 0.1."""
    raw = text.strip()
    try:
        value = float(raw.removesuffix("%"))
    except ValueError:
        value = math.nan
    if raw.endswith("%"):
        value /= 100
    elif value > 1:
        raise InputError(f"--threshold {text}: a plain number is a fraction (0.1 = 10%); "
                         f"did you mean {raw}%?")
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"--threshold {text}: expected a percentage such as 10% or a "
                         "fraction such as 0.1")
    return value


def worsening(metric: Metric, base: float, new: float) -> float:
    """How much worse `new` is than `base` (negative: better), relative to base; absolute for
    absolute metrics. Infinite when a relative base is 0 and new differs."""
    delta = new - base if not metric.higher_is_better else base - new
    if metric.absolute or delta == 0:
        return delta
    return delta / base if base else math.copysign(math.inf, delta)


def verdict(metric: Metric, base: float | None, new: float | None, threshold: float) -> str:
    """better, same, worse, regression (worse by more than `threshold`) or `no data` (a side
    has no value, e.g. TPOT of answers that were not streamed): such a row never gates."""
    if base is None or new is None:
        return NO_DATA
    change = worsening(metric, base, new)
    if change > threshold:
        return "regression"
    if abs(change) < (SAME_ABSOLUTE if metric.absolute else SAME_RELATIVE):
        return "same"
    return "worse" if change > 0 else "better"


@dataclass(frozen=True)
class Row:
    """One metric of one job in both runs."""

    metric: Metric
    base: float | None
    new: float | None
    verdict: str
    ci: tuple[float, float] | None = None  # NOISE_LEVEL interval of new - base
    aside: bool = False  # the job is not valid on a side: its rows never gate
    # both jobs repeated (load.repeat): each side's interval across its repetitions
    intervals: tuple[Interval, Interval] | None = None

    @property
    def delta(self) -> float | None:
        return None if self.base is None or self.new is None else self.new - self.base

    @property
    def delta_pct(self) -> float | None:
        """The relative change in percent; None for absolute metrics and a zero base."""
        if self.delta is None or self.metric.absolute or not self.base:
            return None
        return self.delta / self.base * 100

    @property
    def outside_both(self) -> bool | None:
        """Both runs repeated: whether the change is outside both runs' intervals across
        repetitions (NEW's value outside BASE's interval and BASE's outside NEW's); None when
        a side has no interval for this metric."""
        if self.intervals is None or self.base is None or self.new is None:
            return None
        (b_low, b_high), (n_low, n_high) = self.intervals
        return not b_low <= self.new <= b_high and not n_low <= self.base <= n_high

    @property
    def within_noise(self) -> bool | None:
        """Whether the change is noise: inside either run's interval across repetitions when
        both runs repeated, else whether the within-run interval of new - base holds 0; None
        when no data allowed a test."""
        if self.outside_both is not None:
            return not self.outside_both
        return None if self.ci is None else self.ci[0] <= 0 <= self.ci[1]

    @property
    def gates(self) -> bool:
        """A regression that fails the gate: one within noise does not."""
        return self.verdict == "regression" and self.within_noise is not True and not self.aside


@dataclass(frozen=True)
class JobPair:
    """A job present in both runs, and its rows."""

    base: Mapping[str, Any]
    new: Mapping[str, Any]
    rows: tuple[Row, ...]
    aside: str | None = None  # why the job is set aside from the gate (not valid on a side)

    @property
    def id(self) -> str:
        return str(self.new["id"])

    def params_changed(self) -> dict[str, tuple[Any, Any]]:
        """Parameters whose values differ between the runs: name -> (base, new)."""
        old, new = self.base.get("params") or {}, self.new.get("params") or {}
        return {k: (old.get(k), new.get(k)) for k in sorted({*old, *new})
                if old.get(k) != new.get(k)}


@dataclass(frozen=True)
class Comparison:
    """Every matched job's rows, and the jobs found in one run only."""

    threshold: float
    metrics: tuple[Metric, ...]
    jobs: tuple[JobPair, ...]
    only_in_base: tuple[str, ...]
    only_in_new: tuple[str, ...]

    def rows(self) -> Iterator[Row]:
        return chain.from_iterable(job.rows for job in self.jobs)

    def counts(self) -> dict[str, int]:
        """Gating regressions, improvements beyond noise, and changes within noise."""
        rows = list(self.rows())
        return {"regressions": sum(r.gates for r in rows),
                "set_aside": sum(r.verdict == "regression" and r.within_noise is not True
                                 and r.aside for r in rows),
                "improvements": sum(r.verdict == "better" and not r.within_noise for r in rows),
                "within_noise": sum(r.verdict in ("better", "worse", "regression")
                                    and r.within_noise is True for r in rows)}

    @property
    def failed(self) -> bool:
        return any(row.gates for row in self.rows())

    def gate_failures(self, allow_missing: bool = False) -> list[str]:
        """Why the comparison fails its gate: regressions, and jobs of BASE that NEW lacks
        (a run that measured less is no evidence of no regression)."""
        found = []
        regressions = self.counts()["regressions"]
        if regressions:
            found.append(f"{regressions} regression{'' if regressions == 1 else 's'} beyond "
                         f"the {self.threshold * 100:g}% threshold")
        broken = [job.id for job in self.jobs
                  if job.base.get("status") == "ok" and job.new.get("status") != "ok"]
        if broken:
            found.append(f"{len(broken)} job(s) ok in BASE did not succeed in NEW "
                         f"({_some(broken)})")
        if self.only_in_base and not allow_missing:
            found.append(f"{len(self.only_in_base)} job(s) of BASE missing from NEW "
                         f"({_some(self.only_in_base)}); pass --allow-missing when NEW ran "
                         "less on purpose")
        return found


def _some(ids: Sequence[str]) -> str:
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return ", ".join(ids[:5]) + more


class RunData(Protocol):
    """What compare reads of a run (runner.results.runs.StoredRun fits)."""

    @property
    def jobs(self) -> Sequence[Mapping[str, Any]]: ...

    def requests(self, slug: str) -> Sequence[RequestRecord]: ...


def compare(base: RunData, new: RunData, metrics: Sequence[Metric], threshold: float,
            gate_invalid: bool = False) -> Comparison:
    """Match the runs' jobs and compare every metric of every job present in both.

    A job whose verdict is not valid (degraded or invalid) in either run is set aside: its rows
    are compared but never gate, unless `gate_invalid`. A job stored before verdicts (unknown)
    is gated as before."""
    pairs, only_base, only_new = match_jobs(base.jobs, new.jobs)
    # a search's or sweep's trials depend on what it found: one side's own trials are no news
    only_base, only_new = ([j for j in side if not j.get("search")] for side in (only_base,
                                                                                  only_new))
    jobs = tuple(_job(base, new, b, n, metrics, threshold,
                      None if gate_invalid else set_aside(b, n)) for b, n in pairs)
    caps, caps_base, caps_new = match_jobs(*(capacity_jobs(getattr(run, "manifest", None) or {})
                                             for run in (base, new)))
    jobs += tuple(_capacity_pair(b, n, threshold, None if gate_invalid else set_aside(b, n))
                  for b, n in caps)
    return Comparison(threshold, tuple(metrics), jobs,
                      tuple(j["id"] for j in [*only_base, *caps_base]),
                      tuple(j["id"] for j in [*only_new, *caps_new]))


def _capacity_pair(base: Job, new: Job, threshold: float, aside: str | None) -> JobPair:
    """A capacity record in both runs: one row, higher is better (no request-level noise); set
    aside from the gate when a search was cut short on a side, or searched another parameter
    (streams and req/s are not comparable)."""
    units = (base.get("unit"), new.get("unit"))
    if units[0] != units[1]:
        aside = (f"the search's unit changed ({units[0]} -> {units[1]}): its capacities are "
                 "not comparable")
    metric = replace(CAPACITY_METRIC, unit=str(new.get("unit") or CAPACITY_METRIC.unit))
    b, n = metric.value(base), metric.value(new)
    row = Row(metric, b, n, verdict(metric, b, n, threshold), aside=aside is not None)
    return JobPair(base, new, (row,), aside)


Job = Mapping[str, Any]


def match_jobs(
    base: Sequence[Job], new: Sequence[Job]
) -> tuple[list[tuple[Job, Job]], list[Job], list[Job]]:
    """Pairs by id, then by (benchmark, model, point); and the jobs of one side only."""
    by_id, (base_left, new_left) = _pair_by(base, new, lambda job: job["id"])
    by_point, (only_base, only_new) = _pair_by(base_left, new_left, _point_key)
    order = {id(job): n for n, job in enumerate(new)}
    return sorted(by_id + by_point, key=lambda pair: order[id(pair[1])]), only_base, only_new


def _pair_by(
    base: Sequence[Job], new: Sequence[Job], key: Callable[[Job], Any]
) -> tuple[list[tuple[Job, Job]], tuple[list[Job], list[Job]]]:
    waiting = {key(job): job for job in base}
    pairs, unmatched = [], []
    for job in new:
        other = waiting.pop(key(job), None)
        if other is None:
            unmatched.append(job)
        else:
            pairs.append((other, job))
    return pairs, (list(waiting.values()), unmatched)


def _point_key(job: Job) -> tuple[Any, ...]:
    point = job.get("point")
    if not isinstance(point, Mapping):
        return ("id", job["id"])
    # a job of a plan with several servers is its server's: never paired with another's
    return (id_server(str(job.get("id", ""))), job.get("benchmark"), job.get("model"),
            tuple(sorted(point.items(), key=str)))


def _job(base_run: RunData, new_run: RunData, base: Job, new: Job, metrics: Sequence[Metric],
         threshold: float, aside: str | None) -> JobPair:
    samples = _Samples(base_run, base["slug"], new_run, new["slug"])
    rows = tuple(_row(m, base, new, threshold, samples, aside is not None)
                 for m in pair_metrics(metrics, base, new, find_metric))
    return JobPair(base, new, rows, aside)


def _row(metric: Metric, base: Job, new: Job, threshold: float, samples: _Samples,
         aside: bool) -> Row:
    b, n = metric.value(base), metric.value(new)
    row = Row(metric, b, n, verdict(metric, b, n, threshold), aside=aside)
    if row.verdict == NO_DATA:
        return row
    intervals = repetition_intervals(base, new, metric.root, metric.index_name)
    if intervals is not None:  # run-to-run variance replaces the within-run bootstrap
        return replace(row, intervals=intervals)
    if not metric.samples:
        return row
    old, now = samples.values(metric.samples)
    ci = difference_interval(old, now, metric.path[-1], seed=f"{new['id']}|{metric.name}")
    return Row(metric, b, n, row.verdict, ci, aside)


class _Samples:
    """Both jobs' request values by field, read from the runs once and only when needed."""

    def __init__(self, base: RunData, base_slug: str, new: RunData, new_slug: str) -> None:
        self._sources = ((base, base_slug), (new, new_slug))
        self._records: tuple[Sequence[RequestRecord], ...] | None = None
        self._values: dict[str, tuple[list[float], list[float]]] = {}

    def values(self, field: str) -> tuple[list[float], list[float]]:
        if self._records is None:
            self._records = tuple(run.requests(slug) for run, slug in self._sources)
        if field not in self._values:
            base, new = (request_values(records, field) for records in self._records)
            self._values[field] = (base, new)
        return self._values[field]
