"""A job split into shares: each worker's params are its part of the job's."""

from __future__ import annotations

from runner.load.arrivals import arrival_offsets
from runner.load.exchange import Target
from runner.load.synthetic import SyntheticPrompts
from runner.run.workersplit import shares_for, total_requests

TARGET = Target("http://127.0.0.1:1", {"Authorization": "Bearer k"}, "m")


def prompts(params: object) -> SyntheticPrompts:
    return SyntheticPrompts(16, 0, 0, chat=True)


def test_an_open_loop_worker_checks_itself_against_its_share_of_the_rate() -> None:
    """Its early stop (saturation) compares its completions with the rate it is sent: the
    job's rate over the workers, not the whole job's (which it could never reach)."""
    params = {"rate": 90.0, "requests": 30, "max_concurrency": 5, "seed": 4,
              "ramp_up": {"duration_s": 2.0, "start": 9.0}}
    shares = shares_for(TARGET, params, prompts(params), 3)
    assert [s.params["rate"] for s in shares] == [30.0, 30.0, 30.0]
    assert [s.params["ramp_up"]["start"] for s in shares] == [3.0, 3.0, 3.0]
    assert [s.params["max_concurrency"] for s in shares] == [2, 2, 1]
    offsets = [t for s in shares for _, t in s.deal.arrivals or ()]
    planned = arrival_offsets(params)
    assert sorted(offsets) == sorted(next(planned) for _ in range(30))


def test_a_closed_loop_worker_gets_its_streams() -> None:
    params = {"concurrency": 5, "requests": 20, "warmup_requests": 3}
    shares = shares_for(TARGET, params, prompts(params), 2)
    assert [s.params["concurrency"] for s in shares] == [3, 2]
    assert all(s.params["warmup_requests"] == 3 and s.deal.warmup == 3 for s in shares)
    assert total_requests(params) == 23
    assert shares[0].target.headers == {"Authorization": "Bearer k"}  # in memory, see Share
