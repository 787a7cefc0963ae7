"""The report's word on the probe (manifest `probe`): the models dropped before the run, and
the ids one deployment answered for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SHOWN = 10  # dropped models named in the banner, at most


def probe_notes(manifest: Mapping[str, Any]) -> list[str]:
    """Banner texts: the dropped models with their reasons, then the duplicates; [] when the
    run did not probe or dropped nothing."""
    probe = manifest.get("probe")
    if not isinstance(probe, dict):
        return []
    verdicts = [(m, v) for m, v in sorted(probe.items()) if isinstance(v, dict)]
    dropped = [(m, v) for m, v in verdicts if v.get("dropped")]
    notes = []
    if dropped:
        named = "; ".join(f"{m}: {v.get('status')} ({v.get('reason')})" for m, v in dropped[:SHOWN])
        more = f"; and {len(dropped) - SHOWN} more" if len(dropped) > SHOWN else ""
        notes.append(f"{len(dropped)} model(s) dropped by the probe before the run, their jobs "
                     f"not run: {named}{more}")
    same = sorted({tuple(sorted([m, *v["same_deployment_as"]])) for m, v in verdicts
                   if v.get("same_deployment_as")})
    notes += [f"one deployment answered for {', '.join(ids)}: duplicates, not different models"
              for ids in same]
    return notes
