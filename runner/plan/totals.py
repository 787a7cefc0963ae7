"""A selection's totals (the plan view's TOTAL line and the lock's `totals`): jobs, requests,
timed seconds, and how long the jobs take to send where the plan alone says it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runner.defaults import REPEAT
from runner.plan.searchplan import Search, trial_jobs
from runner.plan.selection import Selected
from runner.plan.sessions import turns_of
from runner.plural import counted

Seconds = Callable[[Mapping[str, Any]], float | None]


def totals(chosen: Sequence[Selected], replay_s: Seconds | None = None) -> dict[str, int | float]:
    """Counts of a selection: benchmarks (and how many are skipped on every server), distinct
    models (per server), jobs, the measured and warm-up requests of jobs that stop after a
    number of them, and the jobs that stop after a time (`time_bound_jobs`) with their seconds
    (`time_bound_s`); a repeated job (load.repeat) counts its requests and seconds once per
    repetition, and its pauses (repeat - 1 of load.repeat_pause_s) in `pause_s` (seconds; only
    when there are any). `replay_s`: a replay job's sending seconds from its trace
    (runner.load.traceplan replay_sending_s; the plan alone does not say them), counted in
    `sending_s`; without it only a replay's duration_s is."""
    # a plan of several servers: a benchmark once, however many servers it runs on; a model
    # once per server that serves it
    models = {(s.server, m) for s in chosen if not s.skipped for m in s.models}
    names = {s.benchmark.name for s in chosen}
    ran = {s.benchmark.name for s in chosen if not s.skipped}
    params = [job.params for s in chosen for job in s.jobs]
    runs = list(zip(params, map(trial_jobs, params), strict=True))  # a search: its most trials
    loads = [(p, n * int(p.get("repeat") or REPEAT)) for p, n in runs]  # load.repeat: each
    timed = [(p, n) for p, n in runs if "requests" not in p and "duration_s" in p]  # no replay
    figures = {"benchmarks": len(names), "skipped": len(names - ran),
               "models": len(models), "jobs": sum(n for _, n in runs),
               "requests": sum(p.get("requests", 0) * turns_of(p) * n for p, n in loads),
               "warmup_requests": sum(p.get("warmup_requests", 0) * n for p, n in loads),
               "time_bound_jobs": sum(n for _, n in timed),
               "time_bound_s": sum(p.get("duration_s", 0) * n for p, n in loads
                                   if "requests" not in p)}
    paused = sum((int(p.get("repeat") or REPEAT) - 1) * n * float(p.get("repeat_pause_s") or 0)
                 for p, n in runs)
    searches = sum(1 for p in params if "search" in p or "sweep" in p)
    replays = sum(n for p, n in loads if "replay" in p and not {"requests", "duration_s"} & set(p))
    known = [(_sending(p, replay_s), n * int(p.get("repeat") or REPEAT), "session" in p)
             for p, n in runs if "replay" not in p or "duration_s" in p or replay_s is not None]
    figures |= {"sending_s": sum(s * n for s, n, _ in known if s is not None),
                "latency_bound_jobs": sum(n for s, n, _ in known if s is None)}
    # Of those, session jobs (closed or open loop): their later turns follow the answers.
    sessions = sum(n for s, n, talk in known if s is None and talk)
    return figures | ({"searches": searches} if searches else {}) | (
        {"pause_s": paused} if paused else {}) | ({"replays": replays} if replays else {}) | (
        {"latency_bound_sessions": sessions} if sessions else {})


def _sending(params: Mapping[str, Any], replay_s: Seconds | None) -> float | None:
    """One run's sending seconds: a replay's from its trace when `replay_s` says them."""
    found = replay_s(params) if replay_s is not None and "replay" in params else None
    return sending_s(params) if found is None else found


def sending_s(params: Mapping[str, Any]) -> float | None:
    """How long one run of a job (one trial of a search or sweep) sends its measured requests,
    in seconds, as far as the plan alone says: its duration_s, or for an open loop with a
    request count, requests / rate (plus a ramp-up's duration: the ramp sends more slowly, so
    this is an upper bound). A rate search's trial is bounded by its lowest rate, `from`.
    None for a closed loop that stops after a number of requests (a sweep's measuring jobs and
    a concurrency search's trials included) and for sessions (their later turns follow the
    answers): the server's latency sets its time. Warm-ups and
    the wait for the last answers are not counted."""
    duration = params.get("duration_s")
    rate = None if params.get("session") else _lowest_rate(params)  # a session's turns: latency
    if rate is None or "requests" not in params:
        return None if duration is None else float(duration)
    ramp = params.get("ramp_up")
    ramp_s = float(ramp["duration_s"]) if isinstance(ramp, Mapping) else 0.0
    by_count = ramp_s + float(params["requests"]) / rate
    return by_count if duration is None else min(by_count, float(duration))


def _lowest_rate(params: Mapping[str, Any]) -> float | None:
    """The lowest arrival rate a job's runs send at (req/s), None for a closed loop."""
    if isinstance(params.get("sweep"), Mapping):
        return None  # its first two jobs are closed loops; the rates come from them
    found = params.get("search")
    if isinstance(found, Mapping):
        search = Search.from_json(found)
        return float(search.start) if search.over == "rate" else None
    return float(params["rate"]) if "rate" in params else None


def totals_text(t: Mapping[str, int | float]) -> str:
    """`1 benchmark (0 skipped), 2 models, 4 jobs, 80 requests (+8 warm-up)`, the plan view's and
    the recap's words; jobs that stop after a time add `and 120 s of timed jobs`."""
    def n(key: str) -> int:
        return int(t.get(key, 0))

    load = [counted(n("requests"), "request")] if n("requests") or not (
        n("time_bound_jobs") or n("replays")) else []
    if n("replays"):  # their requests are their traces' lines (the plan view says how many)
        load.append(f"{counted(n('replays'), 'trace')} replayed to the end")
    if n("time_bound_jobs"):
        load.append(f"{number_text(t.get('time_bound_s', 0))} s of timed jobs")
    if t.get("pause_s"):
        load.append(f"{number_text(t.get('pause_s', 0))} s of pauses between repetitions")
    warmup = f" (+{n('warmup_requests')} warm-up)" if n("warmup_requests") else ""
    most = "at most " if n("searches") else ""
    many = n("searches") > 1
    searches = (f" ({n('searches')} capacity search{'es' if many else ''} or sweep"
                f"{'s' if many else ''} counted at {'their' if many else 'its'} most jobs)"
                if n("searches") else "")
    return (f"{counted(n('benchmarks'), 'benchmark')} ({n('skipped')} skipped), "
            f"{counted(n('models'), 'model')}, {most}{counted(n('jobs'), 'job')}, "
            f"{' and '.join(load)}{warmup}{searches}{_time_text(t, most)}")


def _time_text(t: Mapping[str, int | float], most: str) -> str:
    """`; sending takes 2 min 10 s, and 3 closed-loop jobs as long as the server's latency
    makes them`; nothing when no job's time is known from the plan (closed loops that stop
    after a request count), nor for totals without the estimate (a recap's)."""
    if not t.get("sending_s"):
        return ""
    text = f"; sending takes {most}{duration_text(float(t['sending_s']))}"
    sessions = int(t.get("latency_bound_sessions", 0))
    if bound := int(t.get("latency_bound_jobs", 0)):
        kinds = [counted(n, kind) for n, kind in ((bound - sessions, "closed-loop job"),
                                                 (sessions, "session job")) if n]
        text += f", and {' and '.join(kinds)} as long as the server's latency makes them"
    return text


def duration_text(seconds: float) -> str:
    """`45 s`, `2 min 10 s`, `1 h 5 min`: a planned time, rounded up to the second."""
    whole = int(-(-seconds // 1))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def number_text(value: float) -> str:
    """A count or a number of seconds as written in a plan: `2`, `0.5`, `120`."""
    return f"{value:g}"


