"""A session job's metrics by turn index (workload.session, issue 14 §2): whether a long
conversation's later turns are served as fast as its first (TTFT of turn 5 against turn 1
shows whether the server's prefix cache kept the history)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from runner.load.records import RequestRecord

CANCELLED = "cancelled"  # as runner.run.metrics: cut by the client, no outcome


def by_turn(measured: Sequence[RequestRecord],
            distribution: Callable[[Sequence[float]], dict[str, Any]]) -> dict[str, Any] | None:
    """The `by_turn` summary key (schemas/result.schema.json) of a job's measured records;
    None for a job without sessions. `distribution`: runner.run.metrics.distribution."""
    turns: dict[int, list[RequestRecord]] = {}
    last: dict[int, RequestRecord] = {}
    for record in measured:
        if record.session is None or record.turn is None:
            continue
        turns.setdefault(record.turn, []).append(record)
        if record.session not in last or (last[record.session].turn or 0) < record.turn:
            last[record.session] = record
    if not turns:
        return None
    rows = [_turn(n, turns[n], distribution) for n in sorted(turns)]
    answered = [row for row in rows if row["ttft_ms"]["count"]]
    first = answered[0]["ttft_ms"]["p50"] if answered and answered[0]["turn"] == 1 else None
    final = answered[-1]["ttft_ms"]["p50"] if answered else None
    ends = [r.error_kind for r in last.values() if not r.ok]
    return {
        "sessions": {"count": len(last), "ended_by_failure": sum(k != CANCELLED for k in ends),
                     "ended_by_cancel": ends.count(CANCELLED), "max_turn": max(turns)},
        "ttft_p50": {"first": first, "last": final,
                     "last_turn": answered[-1]["turn"] if answered else None,
                     "last_over_first": final / first if first and final is not None else None},
        "turns": rows,
    }


def _turn(number: int, records: Sequence[RequestRecord],
          distribution: Callable[[Sequence[float]], dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    cancelled = sum(r.error_kind == CANCELLED for r in records if not r.ok)
    return {"turn": number, "requests": len(records), "ok": len(ok),
            "failed": len(records) - len(ok) - cancelled, "cancelled": cancelled,
            **{name: distribution(_values(ok, name))
               for name in ("ttft_ms", "tpot_ms", "e2e_ms", "prompt_tokens")}}


def _values(records: Sequence[RequestRecord], attr: str) -> list[float]:
    return [v for v in map(attrgetter(attr), records) if v is not None]
