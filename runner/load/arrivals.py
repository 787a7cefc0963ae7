"""When open-loop requests arrive: a seeded Poisson schedule or a constant rate."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping
from typing import Any


def arrival_offsets(params: Mapping[str, Any]) -> Iterator[float]:
    """Open loop: every arrival's offset (seconds) from the job start, the first at 0."""
    rate = float(params["rate"])
    if params.get("arrival", "poisson") == "constant":
        return (i / rate for i in itertools.count())
    rng = random.Random(params.get("seed", 0))
    return itertools.accumulate((rng.expovariate(rate) for _ in itertools.count()), initial=0.0)
