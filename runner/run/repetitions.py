"""A job's load, run once or `load.repeat` times (issue 13 §2): each repetition is a new
run_load (fresh connections, its own warm-up and job_timeout_s), its records tagged with it in
the job's one request log, `load.repeat_pause_s` of pause between two."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from runner.defaults import REPEAT, REPEAT_PAUSE_S
from runner.load.records import RequestRecord


@dataclass
class Repetition:
    """One run of a job's load: what the load generator returned, its metrics (validity added
    once the server's figures are known), and its status and error (executor.judge)."""

    result: Any  # runner.load.loadgen.LoadResult
    metrics: dict[str, Any]
    status: str
    error: str | None
    workers: int = 1  # the worker processes that sent it (--workers)
    executor: str = "local"  # where they ran: local (this process), processes, ray


def repeat_count(params: Mapping[str, Any]) -> int:
    """How many times the job's load runs (load.repeat; 1 when unset)."""
    return int(params.get("repeat") or REPEAT)


Judge = Callable[..., tuple[str, str | None]]  # runner.run.executor.judge


async def run_repetitions(
    spec: Any, ctx: Any, target: Any, write: Callable[[RequestRecord], None],
    mark: Callable[[], Any] | None, judge: Judge,
) -> list[Repetition]:
    """Run the job's load repeat_count times, or until a repetition does not succeed or the run
    is stopped (a failed repetition fails the job: the rest would not change that). `write`
    stores and shows a record; `mark`: the scraper's mark, a scrape taken before each
    repetition's window opens and after each but the last one's load ended, so that each
    window's counters hold its own requests only (not the next one's priming and warm-ups; the
    scraper's last scrape closes the last window); `judge`: a repetition's status and error
    from its metrics (executor.judge)."""
    count = repeat_count(spec.job.params)
    pause_s = float(spec.job.params.get("repeat_pause_s") or REPEAT_PAUSE_S)
    done: list[Repetition] = []
    for number in range(1, count + 1):
        if number > 1 and pause_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.stop.wait(), pause_s)
        if number > 1 and ctx.stop.is_set():
            break
        done.append(await _run_once(spec, ctx, target, write, mark,
                                    number if count > 1 else None, judge))
        if done[-1].status != "ok" or ctx.stop.is_set():
            break
        if number < count and mark is not None:
            await mark()  # closes this window before the next repetition sends
    return done


async def _run_once(spec: Any, ctx: Any, target: Any, write: Callable[[RequestRecord], None],
                    mark: Callable[[], Any] | None, number: int | None,
                    judge: Judge) -> Repetition:
    from runner.load.sizing import calibration_of
    from runner.run.gateway import summarize_gateway
    from runner.run.metrics import Expectation, summarize
    from runner.run.replaymetrics import replay_figures

    def on_record(record: RequestRecord) -> None:
        record.repetition = number
        write(record)

    prompts = ctx.prompts(spec)
    lanes, executor, send = _sender(spec.job.params, ctx)
    result = await send(target, spec.job.params, prompts, on_record=on_record,
                        stop=ctx.stop, hurry=ctx.hurry, before_window=mark,
                        max_error_rate=spec.max_error_rate)
    metrics = summarize(result.records, slo=spec.slo or None, health=result.health,
                        pauses_s=result.pauses_s, model_limits=spec.model_limits,
                        expect=Expectation.from_params(spec.job.params, prompts),
                        prompt_calibration=calibration_of(prompts),
                        replay=replay_figures(spec.job.params, prompts))
    metrics["gateway"] = summarize_gateway(result.records, spec.job.model)
    first = next((r.error for r in result.records if r.error and not r.warmup), None)
    status, error = judge(metrics, result.stopped, spec.max_error_rate, first, result.early_stop)
    return Repetition(result, metrics, status, error, lanes, executor)


def _sender(params: Mapping[str, Any], ctx: Any) -> tuple[int, str, Callable[..., Any]]:
    """How many workers send a job's load, where (local, processes, ray), and the function
    that sends it (run_load's arguments). On Ray every job goes to actors but a multi-turn
    session job, which one event loop sends: it stays in this process."""
    from runner.load.loadgen import run_load
    from runner.run.workercount import workers_for
    from runner.run.workersplit import run_split

    cluster = ctx.cluster
    lanes = workers_for(params, ctx.workers, cluster.cpus if cluster is not None else None)
    if cluster is not None and not params.get("session"):
        from runner.run.raypool import run_ray_pool

        return lanes, "ray", partial(run_split, lanes=lanes, pool=run_ray_pool)
    if lanes == 1:
        return 1, "local", run_load
    return lanes, "processes", partial(run_split, lanes=lanes)


def cut_short(spec: Any, done: Sequence[Repetition]) -> str | None:
    """Why a job whose every repetition succeeded ran fewer than load.repeat of them (the run
    was stopped, e.g. Ctrl-C in a pause): the job is then interrupted, so a --resume runs it
    again; None when it ran them all or its last one did not succeed."""
    count = repeat_count(spec.job.params)
    if not done or done[-1].status != "ok" or len(done) >= count:
        return None
    return f"interrupted after {len(done)} of {count} repetitions (load.repeat)"


def job_metrics(spec: Any, done: Sequence[Repetition]) -> dict[str, Any]:
    """The job's `metrics`: the one repetition's as they are, or for load.repeat > 1 their
    medians with the `repetitions` block (runner.run.repeat.merge_metrics)."""
    from runner.run.repeat import merge_metrics

    if repeat_count(spec.job.params) == 1:
        return done[-1].metrics
    return merge_metrics([rep.metrics for rep in done], spec.slo or None)


SERVER_FIGURES = ("window_s", "scrapes_in_window", "series", "generation_tokens_per_s",
                  "client_output_tokens_per_s")


def server_metrics(blocks: Sequence[dict[str, Any] | None],
                   ends_s: Sequence[float | None]) -> dict[str, Any] | None:
    """The job's `server_metrics` from each repetition's block (servermetrics.job.server_block
    over that repetition's own window; `ends_s`: the end of its last measured request, seconds
    from its window's opening): the one block as it is, or for several, the scrape's own
    facts, the median of each figure across repetitions (runner.run.repeat.median_tree), the
    first disagreement found, and `repetitions`, each one's figures with the file offset and
    end that place its scrapes on the report's timeline (servermetrics.timeline)."""
    from runner.run.repeat import median_tree

    first = blocks[0]
    if len(blocks) == 1 or first is None or "window_s" not in first:
        return first  # run once, not scraped, or no scrape gave samples
    figures = [{k: b[k] for k in SERVER_FIGURES if k in b} for b in blocks if b is not None]
    merged = {**first, **median_tree(figures)}
    merged["disagreement"] = next((b["disagreement"] for b in blocks
                                   if b is not None and b.get("disagreement")), None)
    merged["repetitions"] = [
        {"repetition": number, "file_offset_s": b.get("file_offset_s"), "end_s": end,
         **{k: b.get(k) for k in (*SERVER_FIGURES, "disagreement")}}
        for number, (b, end) in enumerate(zip(blocks, ends_s, strict=True), start=1)
        if b is not None]
    return merged
