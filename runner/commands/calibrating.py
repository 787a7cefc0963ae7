"""Prompt-length calibration in `runner apply` (issue 14 §6): before the jobs run, each model's
synthetic prompts are sized by what its server counts (runner.run.calibration), once per model,
endpoint and server in a run; `--no-probe` sends no calibration requests either."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from runner import defaults
from runner.load.prefixes import PrefixedPrompts
from runner.load.replay import TracePrompts
from runner.load.sizing import Calibration, WordSizer
from runner.load.synthetic import SyntheticPrompts
from runner.load.tokenizer import TokenizerSizer
from runner.run.calibration import Subject, calibrate, tokenizer_overhead
from runner.run.executor import JobSpec

CONCURRENCY = 4  # models calibrated at once, as many as the probe probes
OFF = "workload.synthetic.calibrate is off"
NOT_PROBED = "--no-probe: no requests before the run"

Sized = SyntheticPrompts | PrefixedPrompts | TracePrompts  # the prompt sources runner sizes
_Key = tuple[str, str, str, str]  # server url, model, endpoint, tokenizer path ("": none)


def calibrate_sources(specs: Sequence[JobSpec], sources: Mapping[str, Any],
                      env: Mapping[str, str], probing: bool = True) -> dict[str, Any]:
    """`sources` (job id -> prompt source) with every synthetic source sized for its job's
    model: by the model's calibration (calibrate auto), its local tokenizer (less the server's
    template overhead when calibrate is auto), or uncalibrated with the reason recorded."""
    out = dict(sources)
    wanted: dict[_Key, Subject] = {}
    sized: list[tuple[JobSpec, Sized]] = []
    for spec in specs:
        source, params = sources.get(spec.job.id), spec.job.params
        if not isinstance(source, Sized) or (
                isinstance(source, TracePrompts) and not source.synthetic):
            continue
        if params.get("calibrate", defaults.CALIBRATE) == "off" or not probing:
            if not isinstance(source.sizer, TokenizerSizer):
                out[spec.job.id] = source.sized(WordSizer(Calibration(
                    reason=OFF if probing else NOT_PROBED)))
            continue
        key = _key(spec)
        sized.append((spec, source))
        wanted.setdefault(key, Subject(spec.server, spec.job.model, key[2]))
    found = asyncio.run(_calibrate_all(wanted, sized, env)) if wanted else {}
    for spec, source in sized:
        out[spec.job.id] = source.sized(found[_key(spec)])
    return out


def _key(spec: JobSpec) -> _Key:
    params = spec.job.params
    return (spec.server.url, spec.job.model, str(params.get("endpoint", "chat")),
            str(params.get("tokenizer") or ""))


async def _calibrate_all(wanted: Mapping[_Key, Subject],
                         sized: Sequence[tuple[JobSpec, Sized]],
                         env: Mapping[str, str]) -> dict[_Key, Any]:
    """Each subject's sizer: its fit, or its local tokenizer less the server's overhead."""
    gate = asyncio.Semaphore(CONCURRENCY)
    local = {_key(spec): source.sizer for spec, source in sized}

    async def one(key: _Key, subject: Subject) -> Any:
        async with gate:
            sizer = local.get(key)
            if isinstance(sizer, TokenizerSizer):
                return await tokenizer_overhead(subject, env, sizer)
            return WordSizer(await calibrate(subject, env))

    keys = list(wanted)
    sizers = await asyncio.gather(*(one(k, wanted[k]) for k in keys))
    return dict(zip(keys, sizers, strict=True))
