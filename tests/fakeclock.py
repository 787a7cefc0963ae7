"""A fake `now()` for stores: each call is `step` later, so run ids are distinct and ordered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class StepClock:
    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(minutes=1)):
        self.now = start or datetime(2026, 11, 25, 0, 0, 0, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now
