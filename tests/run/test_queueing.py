"""The achieved send rate and when the client queue is material (pure)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from runner.load.arrivals import arrival_offsets
from runner.load.records import RequestRecord
from runner.run.queueing import (
    QUEUE_MATERIAL_MS,
    queue_material,
    queued_latency,
    send_rate,
)


def sent(offsets: list[tuple[float, float]]) -> list[RequestRecord]:
    return [RequestRecord(index=i, scheduled_ms=s, sent_ms=t, ok=True)
            for i, (s, t) in enumerate(offsets)]


RATES = [
    # (scheduled, sent) offsets in ms -> achieved, scheduled, ratio
    ("on time", [(0, 0), (100, 101), (200, 200), (300, 302)], 3 / 0.302, 10.0, 300 / 302),
    ("sent at half the rate", [(0, 0), (100, 200), (200, 400)], 5.0, 10.0, 0.5),
    ("one send", [(0, 3)], None, None, None),
    ("all sent at once", [(0, 5), (0, 5)], None, None, None),
]


@pytest.mark.parametrize(("offsets", "achieved", "scheduled", "ratio"),
                         [r[1:] for r in RATES], ids=[r[0] for r in RATES])
def test_send_rate(offsets: list[tuple[float, float]], achieved: float | None,
                   scheduled: float | None, ratio: float | None) -> None:
    rate = send_rate(sent(offsets), 10.0)
    assert rate == {"target_per_s": 10.0, "achieved_per_s": pytest.approx(achieved),
                    "scheduled_per_s": pytest.approx(scheduled), "ratio": pytest.approx(ratio)}


def test_a_poisson_schedule_sent_on_time_has_ratio_one_whatever_its_draw() -> None:
    """40 Poisson arrivals at 10/s draw a rate of their own (not 10); sent on time, the
    ratio is 1: the draw's noise is no shortfall."""
    offsets = [x * 1000 for x in itertools.islice(arrival_offsets({"rate": 10, "seed": 3}), 40)]
    rate = send_rate(sent([(x, x + 0.5) for x in offsets]), 10.0)
    assert rate["scheduled_per_s"] != pytest.approx(10.0, rel=0.01)
    assert rate["achieved_per_s"] == pytest.approx(rate["scheduled_per_s"])
    assert rate["ratio"] == pytest.approx(1.0)


def metrics(queue_p90: float | None, e2e_p50: float | None = 1000.0,
            **more: Any) -> dict[str, Any]:
    return {"client_queue_ms": {"p50": queue_p90, "p90": queue_p90},
            "e2e_ms": {"p50": e2e_p50}, **more}


@pytest.mark.parametrize(("queue", "e2e", "material"), [
    (None, 1000.0, False),  # no slot limit
    (0.0, 1000.0, False),
    (QUEUE_MATERIAL_MS, 1000.0, False),  # not over either bound
    (QUEUE_MATERIAL_MS + 1, 1000.0, True),
    (30.0, 200.0, True),  # 15 % of a short answer
    (30.0, None, False),
])
def test_queue_material(queue: float | None, e2e: float | None, material: bool) -> None:
    assert queue_material(metrics(queue, e2e)) is material


def test_queued_latency_note() -> None:
    shown = metrics(880.0, 340.0, ttft_from_scheduled_ms={"p50": 1180.4},
                    e2e_from_scheduled_ms={"p50": 1222.0})
    assert queued_latency(shown) == ("queued: TTFT p50 1180 ms, E2E p50 1222 ms from scheduled "
                                     "(queue p50 880 ms)")
    assert queued_latency(metrics(1.0)) is None
    assert queued_latency({}) is None
