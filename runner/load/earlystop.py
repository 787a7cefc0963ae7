"""When a job stops early because its answer is already known (issue 13 §3): its error rate
passed the threshold after enough requests, or the server is over-saturated in open loop.

The rules read only finished records (pure, no clock): `EarlyStop.observe` takes each measured
record as it ends and returns the stop's detail (the job JSON's `early_stop`) once a rule holds.
Every threshold is in STOP; schemas/plan.schema.json (`param_early_stop`) and
schemas/result.schema.json (`early_stop`) mirror them."""

from __future__ import annotations

import bisect
import math
import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner import defaults
from runner.load.arrivals import ramp_rate
from runner.load.records import RequestRecord


@dataclass(frozen=True)
class StopThresholds:
    """The one table of early-stop thresholds."""

    # The error rule waits for this many finished measured requests (early_stop.min_requests):
    # one failure among the first 3 is 33%, noise; among 20 it is a rate worth acting on.
    min_requests: int = defaults.EARLY_STOP_MIN_REQUESTS
    # ...and stops only when the error rate's Wilson score lower bound at this many standard
    # errors is above the threshold: a job whose true error rate is at the threshold (it would
    # pass in the end) is not stopped by a run of failures (3/24 = 12.5% > 10% is chance).
    error_z: float = 3.0
    # Saturation compares the last window with the one before. A window spans at least this
    # many seconds and at least `window_arrivals` scheduled arrivals, so a Poisson count in it
    # varies by under a quarter (1/sqrt(20)).
    window_s: float = 5.0
    window_arrivals: int = 20
    # Completions per second in the last window below this share of the target rate: the
    # server finishes less than it is sent (the same 0.8 as validity's rate_ratio).
    rate_ratio: float = 0.8
    # ...while the median wait (client queue + send lag + TTFT) of the last window's answers
    # is this many times the previous window's: the queue grows, it is not a steady delay.
    wait_growth: float = 1.25
    # Answers a window needs for its median to count.
    min_per_window: int = 5


STOP = StopThresholds()


class EarlyStop:
    """A running job's early-stop rules, set from its params (`early_stop`, `rate`, `ramp_up`),
    a replay's schedule and its benchmark's max_error_rate.

    error_rate rule: after min_requests finished, stop when the error rate's lower bound
    (`wilson_low`, error_z standard errors) is above the threshold: `early_stop.error_rate` (a
    share, 0-1), else max_error_rate when the benchmark sets one above 0 (the default
    benchmark, 0, keeps every job running to its end); `error_rate: false` turns it off.
    saturated rule: open loop only (a rate, or a replay's `schedule_s`: its sends' offsets in
    seconds from the window's start), on unless `early_stop.saturation: false`."""

    def __init__(self, params: Mapping[str, Any], max_error_rate: float,
                 thresholds: StopThresholds = STOP,
                 schedule_s: Sequence[float] | None = None) -> None:
        given = params.get("early_stop")
        spec: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        self.t = thresholds
        self.min_requests = int(spec.get("min_requests", thresholds.min_requests))
        on = given is not None or max_error_rate > 0
        limit = spec.get("error_rate", max_error_rate if on else None)
        self.error_limit = None if limit is None or limit is False else float(limit)
        self.rate = params.get("rate")
        self.ramp = params.get("ramp_up")
        replay = schedule_s is not None and params.get("replay") is not None
        self.schedule_ms = sorted(1e3 * s for s in schedule_s or ()) if replay else None
        paced = self.rate is not None or bool(self.schedule_ms)
        self.saturation = paced and spec.get("saturation", True) is not False
        rate = float(self.rate or _mean_rate(self.schedule_ms or ()) or 1.0)
        self.window_ms = 1e3 * max(thresholds.window_s, thresholds.window_arrivals / rate)
        self.finished = self.failed = 0
        # (end offset ms, wait ms, ms from its due time to its end)
        self.answers: deque[tuple[float, float, float]] = deque()
        self.checked_ms = 0.0

    def observe(self, record: RequestRecord) -> dict[str, Any] | None:
        """The stop's detail when `record` makes a rule hold, else None. Warm-ups and
        cancelled requests (the client's doing) are not counted."""
        if record.warmup or record.error_kind == "cancelled":
            return None
        self.finished += 1
        self.failed += not record.ok
        if self.error_limit is not None and self.finished >= self.min_requests:
            low = wilson_low(self.failed, self.finished, self.t.error_z)
            # Both: with no failure the bound is 0 up to rounding, which may pass a limit of 0.
            if self.failed / self.finished > self.error_limit and low > self.error_limit:
                return {"reason": "error_rate",
                        "error_rate": round(self.failed / self.finished, 4),
                        "lower_bound": round(low, 4), "z": self.t.error_z,
                        "threshold": self.error_limit, "finished": self.finished,
                        "failed": self.failed, "min_requests": self.min_requests}
        if self.saturation and record.ok and (record.turn or 1) == 1:  # sessions: the arrivals
            return self._saturated(record)
        return None

    def _saturated(self, record: RequestRecord) -> dict[str, Any] | None:
        end = record.sent_ms + (record.e2e_ms or 0.0)
        lag = record.sent_ms - record.scheduled_ms if record.scheduled_ms is not None else 0.0
        first = record.ttft_ms if record.ttft_ms is not None else record.e2e_ms or 0.0
        due = record.scheduled_ms if record.scheduled_ms is not None else record.sent_ms
        self.answers.append((end, (record.queue_ms or 0.0) + max(0.0, lag) + first, end - due))
        while self.answers and self.answers[0][0] <= end - 2 * self.window_ms:
            self.answers.popleft()
        if end < 2 * self.window_ms or end - self.checked_ms < 1e3:  # once a second at most
            return None
        self.checked_ms = end
        return saturation([(e, w) for e, w, _ in self.answers], end, self.window_ms,
                          self._target(end), self.t)

    def _target(self, end_ms: float) -> float:
        if self.schedule_ms is not None:
            return self._scheduled_rate(end_ms)
        rate = float(self.rate or 0.0)
        middle_s = (end_ms - self.window_ms / 2) / 1e3
        return ramp_rate(self.ramp, rate, middle_s) if self.ramp else rate

    def _scheduled_rate(self, end_ms: float) -> float:
        """A replay's target (requests/s): the sends its schedule asked for in the window the
        last window's answers were due in, (end - window, end] moved back by their median time
        from due to end. Its rate varies over the trace, and answers follow their sends by the
        latency: at a burst's start they trail the same window's sends on a healthy server."""
        last = [d for e, _, d in self.answers if e > end_ms - self.window_ms]
        shift = statistics.median(last) if last else 0.0
        high = end_ms - shift
        schedule = self.schedule_ms or []
        due = bisect.bisect_right(schedule, high) - bisect.bisect_right(
            schedule, high - self.window_ms)
        return due / (self.window_ms / 1e3)


def _mean_rate(schedule_ms: Sequence[float]) -> float | None:
    """A schedule's mean rate (requests/s over its span); None for fewer than 2 sends."""
    span_s = (schedule_ms[-1] - schedule_ms[0]) / 1e3 if len(schedule_ms) > 1 else 0.0
    return (len(schedule_ms) - 1) / span_s if span_s > 0 else None


def wilson_low(failed: int, n: int, z: float) -> float:
    """The Wilson score interval's lower bound for a proportion failed / n at z standard
    errors (Wilson 1927): (p + z²/2n - z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p, z2 = failed / n, z * z
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (p + z2 / (2 * n) - spread) / (1 + z2 / n))


def saturation(answers: list[tuple[float, float]], now_ms: float, window_ms: float,
               target_per_s: float, t: StopThresholds = STOP) -> dict[str, Any] | None:
    """The `saturated` detail when, over `answers` ((end offset ms, wait ms) of successful
    measured requests), the last window (now - window, now] completed fewer than
    t.rate_ratio * target_per_s requests per second while its median wait is t.wait_growth
    times the previous window's or more; None otherwise."""
    last = [w for end, w in answers if now_ms - window_ms < end <= now_ms]
    prev = [w for end, w in answers if now_ms - 2 * window_ms < end <= now_ms - window_ms]
    if len(last) < t.min_per_window or len(prev) < t.min_per_window:
        return None
    completed = len(last) / (window_ms / 1e3)
    wait, before = statistics.median(last), statistics.median(prev)
    if completed >= t.rate_ratio * target_per_s or wait < t.wait_growth * before:
        return None
    return {"reason": "saturated", "at_s": round(now_ms / 1e3, 3),
            "window_s": round(window_ms / 1e3, 3), "completed_per_s": round(completed, 3),
            "target_per_s": round(target_per_s, 3), "wait_p50_ms": round(wait, 1),
            "previous_wait_p50_ms": round(before, 1), "rate_ratio": t.rate_ratio,
            "wait_growth": t.wait_growth}
