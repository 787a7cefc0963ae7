"""Runs a capacity search as ordinary trial jobs of the run, and makes its record: the largest
rate or concurrency at which every SLO of the benchmark held (schemas/result.schema.json,
`capacity`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from runner.plan.expand import Job, expand_jobs
from runner.plan.servers import id_server, with_server
from runner.plural import counted
from runner.run.search import FAIL, INVALID, PASS, Search, Trial, bracket, next_point, stop_reason

RunJob = Callable[[Any], Awaitable[dict[str, Any]]]  # JobSpec -> its final summary
SHORTFALL = "rate_shortfall"  # validity: the client sent below the trial's rate
LOAD_BOUNDS = ("saturated", SHORTFALL)  # bound_by metrics that are the load's, not SLO checks


def is_search(job: Job) -> bool:
    """Whether `job` stands for jobs made at run time: a capacity search or a sweep (its
    params hold `search` or `sweep`)."""
    return any(isinstance(job.params.get(k), Mapping) for k in ("search", "sweep"))


def trial_job(job: Job, search: Search, value: float) -> Job:
    """The trial of `job`'s search at `value`: an ordinary job whose point and params set the
    searched parameter, so its id names it (`b/model/concurrency=8`)."""
    params = {k: v for k, v in job.params.items() if k != "search"}
    return derived_job(job, {search.over: value}, {**params, search.over: value})


def derived_job(job: Job, point: Mapping[str, Any], params: Mapping[str, Any]) -> Job:
    """A job run in place of `job` at `job.point` + `point`, with `params`: its id and slug
    as the matrix would give them."""
    [made] = expand_jobs(job.benchmark, [job.model], [{**job.point, **point}],
                         lambda _: dict(params))
    return with_server(made, job.server) if job.server else made  # one server's of several


def entry(job: Job, search_id: str) -> dict[str, Any]:
    """A trial's entry in the manifest's job list (as apply records planned jobs), with the id
    of the search or sweep it is part of (`search`: a --resume knows the run holds it)."""
    return {"id": job.id, "slug": job.slug, "benchmark": job.benchmark, "model": job.model,
            "params": dict(job.params), "search": search_id} | (
                {"server": job.server} if job.server else {})


async def run_search_jobs(spec: Any, run_job: RunJob, add_job: Callable[[dict[str, Any]], None],
                          stop: Callable[[], bool]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the search of `spec` (a JobSpec whose job is a search): each trial is recorded with
    `add_job` and run with `run_job`; returns the trials' summaries and the capacity record.
    Bounded by the search's max_jobs."""
    search = Search.from_json(spec.job.params["search"])
    trials: list[Trial] = []
    summaries: list[dict[str, Any]] = []
    halted: str | None = None
    while (value := next_point(search, trials)) is not None:
        if stop():
            halted = "interrupted"
            break
        job = trial_job(spec.job, search, value)
        add_job(entry(job, spec.job.id))
        summary = await run_job(replace(spec, job=job, search_id=spec.job.id))
        summaries.append(summary)
        outcome, halted = trial_outcome(summary)
        if outcome is None:
            break
        trials.append((value, outcome))
    reason = halted or stop_reason(search, trials)
    return summaries, capacity_record(spec.job, search, trials, summaries, reason)


def trial_outcome(summary: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(PASS | FAIL | INVALID, None) for a trial that ran; (None, why) for one that says
    nothing about the SLO (interrupted, skipped, failed without a measurement, or no_data: an
    SLO check with nothing to judge, e.g. tpot_ms of non-streamed answers)."""
    status, metrics = summary.get("status"), summary.get("metrics")
    if status in ("interrupted", "skipped"):
        return None, status
    if not isinstance(metrics, Mapping) or summary.get("stopped") == "unreachable":
        return None, "failed"
    if (metrics.get("validity") or {}).get("verdict") == "invalid":
        # over-saturated (early_stop): the load is beyond what the server sustains, a fail
        return (FAIL if _codes(summary, "invalid") == {"saturated"} else INVALID), None
    if status == "ok" and (metrics.get("slo") or {}).get("status") == "no_data":
        return None, "no_data"  # a failed job (no answers, so no data) fails below
    if SHORTFALL in _codes(summary, "degraded"):
        return FAIL, None  # the rate was not sent (max_concurrency): its SLO shows nothing
    passed = status == "ok" and bool((metrics.get("slo") or {}).get("passed"))
    return (PASS if passed else FAIL), None


def _codes(summary: Mapping[str, Any], severity: str) -> set[Any]:
    """The codes of the trial's validity reasons of `severity` (invalid, degraded)."""
    reasons = ((summary.get("metrics") or {}).get("validity") or {}).get("reasons") or []
    return {r.get("code") for r in reasons
            if isinstance(r, Mapping) and r.get("severity") == severity}


def capacity_record(job: Job, search: Search, trials: Sequence[Trial],
                    summaries: Sequence[Mapping[str, Any]], reason: str | None) -> dict[str, Any]:
    """The search's result (schemas/result.schema.json `capacity`)."""
    last_pass, first_fail = bracket(trials)
    by_value = {t[0]: s for t, s in zip(trials, summaries, strict=False)}
    failing = by_value.get(first_fail) if first_fail is not None else None
    missed = _binding(failing)
    bound_by = missed or _saturation(failing) or _shortfall(failing)
    shown = missed or _first_check(summaries)
    return {
        "id": job.id, "benchmark": job.benchmark, "model": job.model, "point": dict(job.point),
        "over": search.over, "unit": search.unit,
        "capacity": last_pass,
        "bound_by": bound_by,
        "last_pass": _trial_id(by_value, last_pass), "first_fail": _trial_id(by_value, first_fail),
        "bound_hit": first_fail is None and reason in ("bound", "max_jobs"),
        "stopped_reason": reason,
        "explanation": _failed(failing, bound_by) or _explain(reason, summaries),
        "trials": [{"id": s.get("id"), "value": v, "outcome": o, "metric": _value(s, shown)}
                   for (v, o), s in zip(_every_trial(search, trials, summaries, reason),
                                        summaries, strict=True)],
        "search": {"from": search.start, "to": search.stop, "precision": search.precision,
                   "max_jobs": search.max_jobs},
    }


def _every_trial(search: Search, trials: Sequence[Trial], summaries: Sequence[Mapping[str, Any]],
                 reason: str | None) -> list[tuple[float, str]]:
    """(value, outcome) of every trial job that ran: the decided ones, then the one that
    decided nothing (its outcome is why: failed, no_data, interrupted, skipped)."""
    return [*trials, *((float(s.get("params", {}).get(search.over, 0)), reason or "failed")
                       for s in summaries[len(trials):])]


def _trial_id(by_value: Mapping[float, Mapping[str, Any]], value: float | None) -> str | None:
    found = by_value.get(value) if value is not None else None
    return found.get("id") if found is not None else None


def _binding(summary: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The first SLO check the first failing trial missed: {metric, stat, limit, value} (a
    check without data missed nothing: a failed job's, whose requests all failed)."""
    missed = next((c for c in _checks(summary)
                   if not c.get("passed") and c.get("status") != "no_data"), None)
    if missed is None:
        return None
    return {k: missed.get(k) for k in ("metric", "stat", "limit", "value")}


def _saturation(summary: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A failing trial stopped over-saturated without missing an SLO check: {metric
    saturated, limit: the target rate, value: the rate completed} (req/s)."""
    stop = (summary or {}).get("early_stop") or {}
    if stop.get("reason") != "saturated":
        return None
    return {"metric": "saturated", "stat": None, "limit": stop.get("target_per_s"),
            "value": stop.get("completed_per_s")}


def _shortfall(summary: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A failing trial that sent below its rate (validity rate_shortfall) without missing an
    SLO check: {metric rate_shortfall, limit: the target rate, value: the rate achieved}
    (req/s, from its metrics.rate)."""
    if summary is None or SHORTFALL not in _codes(summary, "degraded"):
        return None
    rate = (summary.get("metrics") or {}).get("rate") or {}
    return {"metric": SHORTFALL, "stat": None, "limit": rate.get("target_per_s"),
            "value": rate.get("achieved_per_s")}


def _checks(summary: Mapping[str, Any] | None) -> list[Any]:
    checks = (((summary or {}).get("metrics") or {}).get("slo") or {}).get("checks")
    return checks if isinstance(checks, list) else []


def _first_check(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    checks = next((c for s in summaries if (c := _checks(s))), [])
    return {k: checks[0].get(k) for k in ("metric", "stat", "limit")} if checks else None


def _value(summary: Mapping[str, Any], check: Mapping[str, Any] | None) -> float | None:
    """The trial's value of the SLO check `check` (the one that bound the search)."""
    if check is None:
        return None
    found = next((c for c in _checks(summary) if c.get("metric") == check["metric"]
                  and c.get("stat") == check["stat"]), None)
    return found.get("value") if found else None


def _failed(failing: Mapping[str, Any] | None, bound_by: Any) -> str | None:
    """The first failing trial's error when its job failed without missing an SLO check."""
    if failing is None or bound_by is not None or failing.get("status") != "failed":
        return None
    return (f"trial {failing.get('id')} failed: {failing.get('error')}; the SLO did not bind "
            "it, fix the cause and run it again")


def _explain(reason: str | None, summaries: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a search ended before its precision, in words (None when it reached it)."""
    last = summaries[-1] if summaries else {}
    if reason == "invalid":
        why = "; ".join(r.get("figure", r.get("code", "")) for r in
                        (last.get("metrics") or {}).get("validity", {}).get("reasons", [])
                        if r.get("severity") == "invalid")
        return (f"trial {last.get('id')} is invalid ({why}): an invalid trial cannot decide "
                "the search, so it stopped there; fix the cause and run it again")
    if reason == "failed":
        return f"trial {last.get('id')} failed without a measurement: {last.get('error')}"
    if reason == "no_data":
        blind = [f"{c.get('metric')} {c.get('stat') or ''}".strip() for c in _checks(last)
                 if c.get("status") == "no_data"]
        return (f"trial {last.get('id')} has no data for the SLO check {', '.join(blind)}: "
                "it cannot decide the search; drop that check from slo or make the workload "
                "measure it (e.g. workload.stream: true for tpot_ms)")
    if reason in ("interrupted", "skipped"):
        return f"the search was {reason} before it ended"
    if reason == "from_failed":
        return "even the first point (search.from) missed the SLO: lower search.from"
    if reason == "bound":
        return "search.to met the SLO: the capacity is at least this; raise search.to"
    if reason == "max_jobs":
        return "search.max_jobs trials ran before the precision was reached"
    return None


def capacity_line(record: Mapping[str, Any]) -> str:
    """The recap's line for one search: `capacity tiny: 12.5 req/s (ttft_ms p95 <= 500 bound
    it; 6 trials) [bench]`, or why there is no number."""
    trials = len(record.get("trials") or [])
    value, unit = record.get("capacity"), record.get("unit", "")
    shown = f"{value:g} {unit}" if value is not None else "none"
    bound = record.get("bound_by")
    why = []
    if bound is not None:
        stat = f" {bound['stat']}" if bound.get("stat") else ""
        relation = ">=" if str(bound.get("metric", "")).startswith("min_") else "<="
        if bound.get("metric") == "saturated":
            why.append(f"over-saturated at {bound['limit']:g} req/s (completed "
                       f"{bound.get('value') or 0:.3g}) bound it")
        elif bound.get("metric") == SHORTFALL:
            why.append(f"achieved {bound.get('value') or 0:.3g} of {bound['limit']:g} req/s "
                       "bound it")
        else:
            why.append(f"{bound['metric']}{stat} {relation} {bound['limit']:g} bound it")
    if record.get("explanation"):
        why.append(record["explanation"])
    why.append(counted(trials, "trial"))
    server = id_server(str(record.get("id", "")))  # a plan of several servers: `[eu:bench]`
    where = f"{server}:{record.get('benchmark', '')}" if server else record.get("benchmark", "")
    point = ",".join(f"{k}={v}" for k, v in sorted((record.get("point") or {}).items()))
    return (f"capacity {record.get('model')}: {shown} ({'; '.join(why)}) "
            f"[{where}{'/' + point if point else ''}]")
