"""A job's server series over time, read back from its jobs/<slug>.server-metrics.jsonl: the
engine's waiting queue, KV-cache usage, preemptions and generation rate at each scrape, on the
client timeline's time axis (seconds from the measured window's opening, the request log's
zero), for `runner report`."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

from runner.results.jobfiles import JOBS_DIR, check_slug
from runner.servermetrics.series import known_values
from runner.servermetrics.summary import counter_delta

MAX_POINTS = 3600  # as the client series' MAX_BINS: a longer job's scrapes are grouped
GAUGES = ("requests_waiting", "requests_running", "kv_cache_usage")
COUNTERS = {"preemptions": "preemptions", "generation_tokens": "generation_tokens_per_s"}
SERIES = (*GAUGES, *COUNTERS.values())


def read_scrapes(path: str) -> list[tuple[float, dict[str, float]]]:
    """(t_s, known values) of every scrape in a series file (see scrape.Scraper: the first line
    holds every sample, each later line those that changed, so the samples carry forward). A
    line that does not parse (a torn last line) is skipped. Raises OSError when unreadable."""
    samples: dict[str, float] = {}
    scrapes = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
                t_s, changed = float(entry["t_s"]), dict(entry["samples"])
            except (ValueError, TypeError, KeyError):
                continue
            if not math.isfinite(t_s):
                continue
            samples.update({k: v for k, v in changed.items() if _is_number(v)})
            scrapes.append((t_s, known_values(samples)))
    return scrapes


def server_series(scrapes: Sequence[tuple[float, Mapping[str, float]]],
                  offset_s: float = 0.0) -> dict[str, Any]:
    """Per-scrape series: `t_s` (each scrape's time + `offset_s`, from the window's opening),
    the gauges requests_waiting, requests_running, kv_cache_usage (fraction 0..1) as read,
    `preemptions` (the counter's growth since the scrape before) and `generation_tokens_per_s`
    (the generation counter's growth since the scrape before, per second between them); None
    where the server did not say (and for the counters at the first scrape). More than
    MAX_POINTS scrapes are grouped, consecutive ones together: a group's gauges are their max,
    its counters' growth summed (a rate over the group's span)."""
    ordered = sorted(scrapes, key=lambda s: s[0])
    size = -(-len(ordered) // MAX_POINTS) if ordered else 1
    out: dict[str, list[Any]] = {"t_s": [], **{name: [] for name in SERIES}}
    previous: tuple[float, Mapping[str, float]] | None = None
    for start in range(0, len(ordered), size):
        group = ordered[start:start + size]
        out["t_s"].append(round(group[-1][0] + offset_s, 3))
        for name in GAUGES:
            values = [v[name] for _, v in group if name in v]
            out[name].append(round(max(values), 4) if values else None)
        span = [previous, *group] if previous is not None else group
        growth = {name: _growth(span, name) for name in COUNTERS}
        seconds = span[-1][0] - span[0][0]
        out["preemptions"].append(growth["preemptions"])
        tokens = growth["generation_tokens"]
        out["generation_tokens_per_s"].append(
            round(tokens / seconds, 3) if tokens is not None and seconds > 0 else None)
        previous = group[-1]
    return out


def repeated_series(scrapes: Sequence[tuple[float, Mapping[str, float]]],
                    repetitions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A repeated job's server series on the client timeline's axis, where each repetition
    follows the one before (report.timeline.in_sequence: its offsets move past the ends of the
    repetitions before it, their pauses left out). Each repetition's scrapes (by its
    `file_offset_s`, up to its `end_s`; before the first window for the first, after the last
    end for the last) make their own series, so a counter's growth never spans a pause; the
    scrapes in a pause are left out."""
    out: dict[str, list[Any]] = {"t_s": [], **{name: [] for name in SERIES}}
    shift = 0.0
    for i, rep in enumerate(repetitions):
        offset, end = rep.get("file_offset_s"), rep.get("end_s")
        if not _is_number(offset):
            continue
        low = -math.inf if i == 0 else 0.0
        high = end if _is_number(end) and i < len(repetitions) - 1 else math.inf
        own = [(t, v) for t, v in scrapes if low <= t + offset <= high]
        for name, values in server_series(own, offset + shift).items():
            out[name].extend(values)
        shift += end if _is_number(end) else 0.0
    return out


def _growth(span: Sequence[tuple[float, Mapping[str, float]]], name: str) -> float | None:
    values = [v[name] for _, v in span if name in v]
    return round(counter_delta(values), 4) if len(values) > 1 else None


def _is_number(value: Any) -> TypeGuard[float]:
    """A finite int or float (a hand-edited file may hold NaN, which no chart can place)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def job_server_series(run_dir: str, job: Mapping[str, Any]) -> dict[str, Any]:
    """`timeline.server` of a stored job: `note` (why there are no server series: the scrape's
    recorded error, or that the job was not scraped; None when there are), `scrapes` (how many
    were read) and the series of server_series (empty lists without samples)."""
    block = job.get("server_metrics")
    empty = server_series([])
    if not isinstance(block, Mapping):
        mock = isinstance(job.get("server"), Mapping) and job["server"].get("kind") == "mock"
        why = "the simulator has no metrics" if mock else "no server_metrics (a result " \
            "stored before runner scraped servers)"
        return {"note": f"not scraped: {why}", "scrapes": 0, **empty}
    if not block.get("file"):
        return {"note": _why(block), "scrapes": 0, **empty}
    name = f"{JOBS_DIR}/{job.get('slug')}.server-metrics.jsonl"
    try:
        scrapes = read_scrapes(os.path.join(run_dir, JOBS_DIR,
                                            check_slug(job.get("slug")) + ".server-metrics.jsonl"))
    except (OSError, ValueError) as exc:
        return {"note": f"the series file {name} cannot be read ({_reason(exc)})", "scrapes": 0,
                **empty}
    if not scrapes:
        return {"note": f"the series file {name} holds no scrape", "scrapes": 0, **empty}
    reps = block.get("repetitions")
    if isinstance(reps, list) and reps and all(isinstance(r, Mapping) for r in reps):
        series = repeated_series(scrapes, reps)
    else:
        offset = block.get("file_offset_s")  # absent in older results: the first scrape is ~0
        series = server_series(scrapes, offset if _is_number(offset) else 0.0)
    charted = ("requests_waiting", "kv_cache_usage", "preemptions")
    missing = not any(_has_values(series[k]) for k in charted)
    note = (f"the server exposes none of the charted series (requests waiting, KV-cache usage, "
            f"preemptions); its raw samples are in {name}") if missing else None
    return {"note": note, "scrapes": len(scrapes), **series}


def _why(block: Mapping[str, Any]) -> str:
    """The recorded reason as it stands when the job was not scraped (turned off, or an
    endpoint that had already failed), else as the reason its scrapes gave no samples."""
    error = str(block.get("error") or "no scrape gave samples")
    if block.get("url") is None or error.startswith("not scraped"):
        return error
    return f"no server samples: {error}"


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _has_values(values: Iterable[Any]) -> bool:
    return any(v is not None for v in values)
