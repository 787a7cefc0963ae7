"""A job's load dealt out to workers: together they send exactly the plan's requests, on the
plan's one schedule."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from runner.load.arrivals import arrival_offsets, slot_openings
from runner.load.deal import Deal, deal_load


@pytest.mark.parametrize("lanes", [1, 2, 3, 7])
@pytest.mark.parametrize("params", [
    {"rate": 50.0, "requests": 40, "seed": 7},
    {"rate": 50.0, "requests": 40, "arrival": "gamma", "burstiness": 0.5, "seed": 1},
    {"rate": 20.0, "requests": 30, "ramp_up": {"duration_s": 1.0}, "seed": 2},
    {"rate": 20.0, "arrival": "constant", "duration_s": 2.0},
])
def test_open_loop_arrivals_together_are_the_plan_s(params: dict[str, Any], lanes: int) -> None:
    deals = deal_load(params, lanes, warmup=3)
    dealt = sorted(a for deal in deals for a in deal.arrivals or ())
    planned = list(itertools.islice(arrival_offsets(params), params.get("requests", 40)))
    if "duration_s" in params:
        planned = [t for t in planned if t < params["duration_s"]]
    assert dealt == [(3 + j, t) for j, t in enumerate(planned)]
    assert [len(d.arrivals or ()) for d in deals] == [len(planned[k::lanes]) for k in range(lanes)]


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_closed_loop_streams_and_indices_are_dealt_in_turn(lanes: int) -> None:
    params = {"concurrency": 10, "requests": 50, "ramp_up": {"duration_s": 2.0}}
    deals = deal_load(params, lanes, warmup=5)
    assert sorted(t for d in deals for t in d.openings) == sorted(slot_openings(params))
    assert sum(len(d.openings) for d in deals) == 10
    indices = sorted(i for d in deals for i in d.indices(55))
    assert indices == list(range(55))  # warm-ups 0-4 and measured 5-54, each sent once


def test_a_lane_s_indices_keep_the_job_s_numbering() -> None:
    deal = Deal(lane=1, lanes=3, warmup=4)
    assert list(deal.indices(14)) == [1, 5, 8, 11]  # warm-ups 1; measured 4+1, 4+4, 4+7
    assert list(itertools.islice(deal.indices(None), 5)) == [1, 5, 8, 11, 14]
    assert deal.mine(8) and not deal.mine(4)


def test_a_replay_deals_its_trace_s_offsets() -> None:
    trace = [0.0, 0.5, 0.5, 2.0, 3.0]
    deals = deal_load({"replay": {}, "requests": 4}, 2, warmup=0, replay=trace)
    assert deals[0].arrivals == ((0, 0.0), (2, 0.5))
    assert deals[1].arrivals == ((1, 0.5), (3, 2.0))


def test_an_endless_open_loop_cannot_be_dealt() -> None:
    with pytest.raises(ValueError, match="requests or duration_s"):
        deal_load({"rate": 5.0}, 2, warmup=0)
