"""How many worker processes send a job's load (`runner apply --workers N|auto`)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from runner.defaults import WORKER_RATE, WORKER_STREAMS

AUTO = "auto"


def parse_workers(text: str) -> int | str:
    """`--workers`' value: a whole number from 1, or `auto`.

    Raises:
        ValueError: anything else (argparse turns it into a usage error, exit 2)."""
    if text == AUTO:
        return AUTO
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"give a whole number from 1, or auto, not {text!r}")
    return int(text)


def workers_for(params: Mapping[str, Any], asked: int | str, cpus: int | None = None) -> int:
    """The worker processes that send a job with `params`, for `--workers asked`.

    `auto`: a closed loop gets one per WORKER_STREAMS streams (concurrency), an open loop one
    per WORKER_RATE req/s of its rate (a replay: 1), at most `cpus` (default os.cpu_count()).
    Either way never more than the job's streams (concurrency, or an open loop's
    max_concurrency) nor its measured requests, so that no worker is left without load; and
    1 for a job of multi-turn sessions or an open loop with neither requests nor duration_s."""
    if params.get("session") or _endless_open_loop(params):
        return 1
    wanted = _auto(params, cpus or os.cpu_count() or 1) if asked == AUTO else int(asked)
    caps = [params.get("max_concurrency") if _open(params) else params.get("concurrency", 1),
            params.get("requests")]
    return max(1, min([wanted, *(int(cap) for cap in caps if cap is not None)]))


def _auto(params: Mapping[str, Any], cpus: int) -> int:
    if params.get("rate") is not None:
        wanted = math.ceil(float(params["rate"]) / WORKER_RATE)
    elif _open(params):  # a replay: its rate is its trace's
        wanted = 1
    else:
        wanted = math.ceil(int(params.get("concurrency", 1)) / WORKER_STREAMS)
    return min(wanted, cpus)


def _open(params: Mapping[str, Any]) -> bool:
    return params.get("rate") is not None or params.get("replay") is not None


def _endless_open_loop(params: Mapping[str, Any]) -> bool:
    return _open(params) and params.get("requests") is None and params.get("duration_s") is None \
        and params.get("replay") is None
