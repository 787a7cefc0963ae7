"""When a server asks the load to wait (429, or 503 with Retry-After): how long, and the pauses
a job keeps. Pure: times are `perf_counter_ns` values handed in by the load generator."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC

# A pause is at most this long, whatever the server asks (the OpenAI client honours at most 60 s
# too); and it never outlasts the job's duration or timeout, which stop the job regardless.
RETRY_AFTER_MAX_S = 60.0
# After this many pauses with no successful request between them, honouring the server leads
# nowhere: the job stops (`rate_limited`), so a server that always says "later" costs minutes.
PAUSES_IN_A_ROW = 3


def retry_after_s(headers: Mapping[str, str], now_s: float) -> float | None:
    """Seconds the server asked to wait: OpenAI's `retry-after-ms`, else `Retry-After` as
    delay-seconds or an HTTP-date (RFC 9110, 10.2.3) compared with `now_s` (Unix time).
    `headers` look up lower-case names (aiohttp's are case-insensitive). None when absent or
    unreadable; a date in the past is 0. Never negative; not capped here (see Pauses.ask)."""
    millis = _seconds(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, says RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_s)


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float((value or "").strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass
class Pauses:
    """A job's pauses in sending. `until_ns`: sending waits until then; `shift_ns`: how far the
    open-loop schedule has moved (the job's clock stops while paused); `spans`: every pause as
    [start, end]; `in_a_row`: pauses since the last successful request."""

    until_ns: int = 0
    shift_ns: int = 0
    spans: list[list[int]] = field(default_factory=list)
    in_a_row: int = 0

    def ask(self, wait_s: float, now_ns: int) -> bool:
        """The server asked to wait `wait_s` (capped at RETRY_AFTER_MAX_S): start or lengthen a
        pause. False, pausing nothing, when it would be the pause after PAUSES_IN_A_ROW."""
        until = now_ns + int(min(wait_s, RETRY_AFTER_MAX_S) * 1e9)
        if until <= max(self.until_ns, now_ns):
            return True  # asks for no longer than the pause already running
        if now_ns >= self.until_ns:  # a new pause
            if self.in_a_row >= PAUSES_IN_A_ROW:
                return False
            self.in_a_row += 1
            self.spans.append([now_ns, until])
            self.shift_ns += until - now_ns
        else:  # lengthens the running pause
            self.shift_ns += until - self.until_ns
            self.spans[-1][1] = until
        self.until_ns = until
        return True

    def paused_ns(self, start_ns: int, end_ns: int) -> int:
        """How much of [start_ns, end_ns] fell in pauses."""
        return sum(max(0, min(b, end_ns) - max(a, start_ns)) for a, b in self.spans)

    def lengths_s(self, end_ns: int) -> list[float]:
        """Each pause's length in seconds, cut at `end_ns` (the job ended, sending with it)."""
        return [max(0, min(b, end_ns) - a) / 1e9 for a, b in self.spans]
