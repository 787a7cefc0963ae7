"""Retry-After parsing and the pauses a job keeps (pure); the load generator honouring them is
tested against real servers in test_loadgen.py."""

from __future__ import annotations

import email.utils

import pytest

from runner.load.pacing import PAUSES_IN_A_ROW, RETRY_AFTER_MAX_S, Pauses, retry_after_s

NOW = 1_700_000_000.0  # Unix time the dates below are compared with
S = 1_000_000_000  # one second in ns


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "1"}, 1.0),
        ({"retry-after": " 120 "}, 120.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),  # not RFC delay-seconds, but sent; OpenAI's client reads it
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),  # in the past
        ({"retry-after": "Tue, 14 Nov 2023 22:13:50 -0000"}, 30.0),  # no zone: UTC
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # OpenAI's finer header wins
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "-5"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "Fri, 99 Foo 2023 99:99:99 GMT"}, None),
    ],
)
def test_retry_after_seconds_and_dates(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(headers, NOW) == pytest.approx(expected)


def test_a_pause_starts_and_answers_during_it_lengthen_it() -> None:
    pauses = Pauses()
    assert pauses.ask(1.0, 10 * S)
    assert (pauses.until_ns, pauses.shift_ns, pauses.in_a_row) == (11 * S, S, 1)
    assert pauses.ask(0.5, 10 * S + S // 10)  # ends before the running pause: nothing changes
    assert pauses.ask(1.0, 10 * S + S // 2)  # ends later: the same pause, longer
    assert (pauses.until_ns, pauses.shift_ns, pauses.in_a_row) == (11 * S + S // 2, S + S // 2, 1)
    assert pauses.spans == [[10 * S, 11 * S + S // 2]]
    assert pauses.lengths_s(100 * S) == [1.5]


def test_a_pause_is_capped_and_cut_at_the_jobs_end() -> None:
    pauses = Pauses()
    assert pauses.ask(3600.0, 0)
    assert pauses.until_ns == int(RETRY_AFTER_MAX_S * S)
    assert pauses.lengths_s(5 * S) == [5.0]  # the job ended 5 s in


def test_no_pause_for_zero_seconds() -> None:
    pauses = Pauses()
    assert pauses.ask(0.0, 7 * S)
    assert (pauses.spans, pauses.in_a_row, pauses.shift_ns) == ([], 0, 0)


def test_after_pauses_in_a_row_the_next_ask_is_refused_until_a_success_resets() -> None:
    pauses = Pauses()
    for i in range(PAUSES_IN_A_ROW):
        assert pauses.ask(1.0, 10 * i * S)
    assert not pauses.ask(1.0, 100 * S)
    assert len(pauses.spans) == PAUSES_IN_A_ROW  # the refused one paused nothing
    pauses.in_a_row = 0  # what the load generator does after a successful request
    assert pauses.ask(1.0, 200 * S)


def test_paused_time_within_a_window() -> None:
    pauses = Pauses(spans=[[10 * S, 12 * S], [20 * S, 21 * S]])
    assert pauses.paused_ns(0, 100 * S) == 3 * S
    assert pauses.paused_ns(11 * S, 20 * S + S // 2) == S + S // 2
    assert pauses.paused_ns(13 * S, 19 * S) == 0
