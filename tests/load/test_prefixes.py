"""Shared prefixes: which prefix each request takes, what a priming request sends, how salts
keep runs apart, and the expected prefix-cache hit rate computed from the records (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from runner.load.prefixes import PrefixedPrompts, prefix_tokens, with_priming
from runner.load.records import RequestRecord
from runner.load.workload import prompt_source
from runner.run.prefixhits import (
    achieved_rate,
    expected_rate,
    merged_prefix_cache,
    prefix_cache,
)
from runner.run.tokens import Expectation

PARAMS: dict[str, Any] = {"endpoint": "completions", "input_tokens": 8, "seed": 3,
                          "prefix": {"count": 3, "tokens": 20}}


def source(salt: str = "", **prefix: Any) -> PrefixedPrompts:
    made = prompt_source({**PARAMS, "prefix": {**PARAMS["prefix"], **prefix}}, ".", {}, salt)
    assert isinstance(made, PrefixedPrompts)
    return made


def words(prompt: dict[str, Any]) -> list[str]:
    return str(prompt["prompt"]).split()


def test_a_prompt_is_its_prefix_then_its_own_part_round_robin() -> None:
    prompts = source()
    texts = [words(prompts.prompt(i)) for i in range(6)]
    assert all(len(t) == 28 for t in texts)
    assert [t[20] for t in texts] == ["0", "1", "2", "3", "4", "5"]  # the own part's index
    assert texts[0][:20] == texts[3][:20] != texts[1][:20]
    assert len({" ".join(t[:20]) for t in texts}) == 3


def test_a_random_pick_is_seeded_and_uses_every_prefix() -> None:
    picks = [source(pick="random").which(i) for i in range(60)]
    assert picks == [source(pick="random").which(i) for i in range(60)]
    assert set(picks) == {0, 1, 2} and picks != [i % 3 for i in range(60)]


def test_priming_sends_each_prefix_once_before_the_plans_warmups() -> None:
    prompts = source()
    firsts = [words(prompts.warmup(i)) for i in range(4)]
    assert [w[:20] for w in firsts[:3]] == [words(prompts.prompt(k))[:20] for k in range(3)]
    assert [w[20:] for w in firsts[:3]] == [["prime", "0"], ["prime", "1"], ["prime", "2"]]
    assert firsts[3][0] == "w3" and len(firsts[3]) == 8  # the plan's warm-up: no prefix
    assert with_priming({**PARAMS, "warmup_requests": 1})["warmup_requests"] == 4
    unprimed = {**PARAMS, "prefix": {"count": 3, "tokens": 20, "prime": False}}
    assert with_priming(unprimed) is unprimed


def test_salts_give_other_prefixes_as_prompt_reuse_asks() -> None:
    a, b = source("job=x;run=1"), source("job=x;run=2")
    assert words(a.prompt(0))[:20] != words(b.prompt(0))[:20]
    assert words(a.prompt(0)) == words(source("job=x;run=1").prompt(0))
    assert words(a.salted("job=x;run=2").prompt(0)) == words(b.prompt(0))


def test_the_prompt_length_target_counts_the_prefix() -> None:
    assert prefix_tokens(PARAMS) == 20
    assert Expectation.from_params(PARAMS).input_tokens == 28
    assert prefix_tokens({**PARAMS, "dataset": "d.jsonl"}) == 0


def records(prompt_tokens: int | None, n: int = 6, warmups: int = 3) -> list[RequestRecord]:
    return [RequestRecord(index=i, warmup=i < warmups, ok=True, prompt_tokens=prompt_tokens)
            for i in range(n + warmups)]


@pytest.mark.parametrize(("prime", "tokens", "block", "expected"), [
    (True, 28, 16, 16 / 28),  # 20 prefix tokens: one whole block of 16 hits
    (True, 28, 4, 20 / 28),
    (True, 56, 16, 32 / 56),  # the server counts twice the words: 40 prefix tokens, 2 blocks
    (False, 28, 4, 3 * 20 / (6 * 28)),  # 6 requests round robin over 3: the first 3 miss
])
def test_the_expected_rate(prime: bool, tokens: int, block: int, expected: float) -> None:
    prompts = source(prime=prime)
    rate, origin = expected_rate(prompts, records(tokens, warmups=3 if prime else 0), block,
                                 3 if prime else 0)
    assert rate == pytest.approx(expected) and origin == "usage"


def test_without_usage_the_expected_rate_counts_runners_words() -> None:
    rate, origin = expected_rate(source(), records(None), 4, 3)
    assert rate == pytest.approx(20 / 28) and origin == "plan"


@pytest.mark.parametrize(("server", "reason"), [
    (None, "not scraped"),
    ({"url": "http://x/metrics", "error": "HTTP 404"}, "no server metrics: HTTP 404"),
    ({"url": "http://x/metrics", "series": {}}, "no prefix-cache counters"),
    ({"url": "http://x/metrics", "series": {"prefix_cache_hits": {"delta": 0},
                                            "prefix_cache_queries": {"delta": 0}}},
     "no prefix-cache queries"),
])
def test_an_unknown_achieved_rate_says_why(server: Any, reason: str) -> None:
    achieved, _, _, why = achieved_rate(server)
    assert achieved is None and why is not None and reason in why


def test_a_later_repetition_finds_every_prefix_an_earlier_one_sent() -> None:
    server = {"url": "http://x/metrics", "series": {"prefix_cache_hits": {"delta": 40},
                                                    "prefix_cache_queries": {"delta": 56}}}
    cold = {**PARAMS, "prefix": {"count": 3, "tokens": 20, "prime": False}, "repeat": 2}
    first = prefix_cache(cold, source(prime=False), records(28, warmups=0), server, 4)
    later = prefix_cache(cold, source(prime=False), records(28, warmups=0), server, 4,
                         sent=True)
    assert first is not None and first["expected"] == pytest.approx(60 / 168, abs=1e-4)
    assert later is not None and later["expected"] == pytest.approx(20 / 28, abs=1e-4)
    # each repetition has its achieved rate, over its own window
    assert first["achieved"] == later["achieved"] == round(40 / 56, 4)
    assert later["gap"] == 0 and first["exceeded"] is True


def test_a_repeated_jobs_gap_is_the_one_of_its_median_rates() -> None:
    block = {"expected": 0.8, "achieved": 0.65, "gap": 0.01, "exceeded": False}
    merged = merged_prefix_cache(block)
    assert merged is not None and merged["gap"] == -0.15 and merged["exceeded"] is True
    assert merged_prefix_cache(None) is None


def test_a_job_without_a_prefix_has_no_block() -> None:
    plain = {k: v for k, v in PARAMS.items() if k != "prefix"}
    assert prefix_cache(plain, prompt_source(plain, ".", {}), records(28), None, None) is None


def test_the_models_limit_counts_the_prefix() -> None:
    from runner.inventory.listing import Model
    from runner.plan.limits import model_limits

    limits = model_limits({**PARAMS, "max_tokens": 4}, Model("m", max_input_tokens=30))
    assert limits["exceeded"] and limits["detail"] == (
        "input_tokens 8 + prefix.tokens 20 + max_tokens 4 = 32 > max_input_tokens 30")


def session_records(sessions: int = 2) -> list[RequestRecord]:
    """Primed (3 warm-ups), 3 turns a session: turn 1 is 28 tokens (20 prefix + 8), each answer
    8 tokens and each later user message 8, so turns 2 and 3 send 44 and 60 tokens."""
    made = [RequestRecord(index=i, warmup=True, ok=True, prompt_tokens=22) for i in range(3)]
    for s in range(sessions):
        for turn in (1, 2, 3):
            made.append(RequestRecord(index=3 + s * 3 + turn - 1, ok=True, session=s, turn=turn,
                                      prompt_tokens=28 + 16 * (turn - 1), output_tokens=8))
    return made


def test_a_sessions_later_turns_expect_to_hit_the_previous_prompt() -> None:
    # Turn t > 1 starts with turn t - 1's prompt, which the cache kept: 28 tokens of turn 2,
    # 44 of turn 3 (blocks of 4). Only the prefix (20) was expected before, and the gap made
    # every session job with a prefix degraded. The answers are not expected to hit (the real
    # engine's did not re-tokenize alike), so a session's block is one-sided.
    rate, origin = expected_rate(source(), session_records(), 4, 3)
    assert origin == "usage"
    assert rate == pytest.approx((20 + 28 + 44) / (28 + 44 + 60))
    server = {"url": "http://x/metrics", "series": {
        "prefix_cache_hits": {"delta": 120}, "prefix_cache_queries": {"delta": 132}}}
    block = prefix_cache({**PARAMS, "session": {"turns": 3}}, source(), session_records(),
                         server, 4)
    assert block is not None and block["one_sided"] and not block["exceeded"]


@pytest.mark.parametrize(("reuse", "achieved", "flagged"), [
    ("none", 50 / 56, True), ("across_jobs", 50 / 56, False), ("always", 50 / 56, False),
    ("across_runs", 10 / 56, True),  # below the plan's: a cache that lost the prefixes
])
def test_prompts_reused_on_purpose_may_hit_more_than_the_plan_expects(
        reuse: str, achieved: float, flagged: bool) -> None:
    # Seen: with prompt_reuse: across_jobs the second job re-sent the first one's prompts, the
    # cache answered them whole (0.88 vs 0.50 expected), and the job was degraded.
    from runner.run.validity import judge_validity
    server = {"url": "http://x/metrics", "series": {
        "prefix_cache_hits": {"delta": achieved * 56}, "prefix_cache_queries": {"delta": 56}}}
    block = prefix_cache({**PARAMS, "prompt_reuse": reuse}, source(), records(28), server, 4)
    assert block is not None and block["exceeded"] is flagged
    assert block["one_sided"] is (reuse != "none")
    reasons = judge_validity({"prefix_cache": block})["reasons"]
    assert ("prefix_cache_gap" in [r["code"] for r in reasons]) is flagged
