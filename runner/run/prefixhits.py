"""A shared-prefix job's prefix-cache hit rate (issue 14 §1): the one its plan implies, the one
the server's counters achieved over the measured window, and the gap between them (the summary
key `prefix_cache`, see schemas/result.schema.json)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.defaults import PROMPT_REUSE
from runner.load.prefixes import Prefix, PrefixedPrompts, with_priming
from runner.load.records import RequestRecord

# vLLM's default block size (vllm/config/cache.py, CacheConfig.DEFAULT_BLOCK_SIZE): the unit its
# prefix cache hits in, used when the server does not say its own (vllm:cache_config_info).
DEFAULT_BLOCK_SIZE = 16
# |achieved - expected| above this share of prompt tokens is the validity reason
# prefix_cache_gap. What moves the achieved rate off the plan's, by design: the chat template's
# tokens (a few before the prefix hit, a few after the prompt miss: ~5 of hundreds), a block
# boundary that the template shifts (one block of the prefix), words that tokenize a little
# longer in the prefix than in the rest (same vocabulary: ~1%), and without priming, requests
# sent while a prefix's first use was still being computed. Together a few percent; a cache
# that is off, too small for the prefixes, or prompts that do not share them miss by 30-100%.
GAP = 0.10
_INFO = "vllm:cache_config_info"
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def prefix_cache(
    params: Mapping[str, Any], prompts: Any, records: Sequence[RequestRecord],
    server_metrics: Mapping[str, Any] | None, block_size: int | None, *, sent: bool = False,
) -> dict[str, Any] | None:
    """The job's `prefix_cache` block, or one repetition's; None when it has no shared prefix.
    `prompts`: its prompt source (PrefixedPrompts: which prefix each request used); `records`
    and `server_metrics`: one repetition's, over its own window; `block_size`: the engine's,
    from its metrics (None: unknown, DEFAULT_BLOCK_SIZE is used and said); `sent`: an earlier
    repetition of the job sent its prefixes already (the same ones), so every one hits."""
    prefix = Prefix.of(params)
    if prefix is None or not isinstance(prompts, PrefixedPrompts):
        return None
    block = block_size or DEFAULT_BLOCK_SIZE
    warmups = int(with_priming(params).get("warmup_requests") or 0)
    expected, source = expected_rate(prompts, records, block, warmups, sent=sent)
    achieved, hits, queries, why = achieved_rate(server_metrics)
    return with_gap({"count": prefix.count, "tokens": prefix.tokens, "pick": prefix.pick,
                     "primed": prefix.prime, "block_size": block,
                     "block_size_source": "server" if block_size else "default",
                     "expected": _round(expected), "expected_source": source,
                     "achieved": _round(achieved), "achieved_reason": why,
                     "hit_tokens": hits, "queried_tokens": queries,
                     "one_sided": _one_sided(params)})


def with_gap(block: dict[str, Any]) -> dict[str, Any]:
    """`block` with its gap (achieved - expected; None when either is), the threshold and
    whether the gap exceeds it."""
    achieved, expected = block.get("achieved"), block.get("expected")
    gap = None if achieved is None or expected is None else round(achieved - expected, 4)
    return {**block, "gap": gap, "threshold": GAP,
            "exceeded": _beyond(gap, GAP, bool(block.get("one_sided")))}


def merged_prefix_cache(block: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A repeated job's `prefix_cache` from the repetitions' medians (repeat.merge_metrics:
    expected, achieved and the token counts are medians): its gap and `exceeded` computed
    again from these medians, so they agree with the rates the block shows."""
    return None if block is None else with_gap(dict(block))


def _one_sided(params: Mapping[str, Any]) -> bool:
    """Prompts reused on purpose (prompt_reuse) may be in the cache from an earlier job or
    run, and a session's answers may hit too (history_hit): hitting more than the plan
    expects is then no fault, hitting less still is."""
    return params.get("prompt_reuse", PROMPT_REUSE) != PROMPT_REUSE or isinstance(
        params.get("session"), Mapping)


def _beyond(gap: float | None, threshold: float, one_sided: bool) -> bool:
    """The gap (achieved - expected) is past the threshold: either way, or only below when
    `one_sided`."""
    return gap is not None and (-gap if one_sided else abs(gap)) > threshold


def expected_rate(prompts: PrefixedPrompts, records: Sequence[RequestRecord], block: int,
                  warmups: int, *, sent: bool = False) -> tuple[float | None, str]:
    """(Σ expected hit tokens / Σ prompt tokens over the measured ok requests, source).

    A request's prefix hits when it was primed, when an earlier repetition sent the job's
    prefixes (`sent`), or else when an earlier measured request (by index) used the same
    prefix; its hit is the prefix's tokens rounded down to whole blocks. Prompt tokens are the
    server's usage (source `usage`), the prefix's tokens scaled by the ratio of the server's
    prompt tokens to runner's words over the job's first prompts (the server's tokenizer and
    chat template), else the words runner sent (source `plan`). A session's later turn
    (workload.session) hits at least the previous turn's prompt (history_hit)."""
    measured = sorted((r for r in records if not r.warmup and r.ok), key=lambda r: r.index)
    if not measured:
        return None, "plan"
    usage = all(r.prompt_tokens is not None for r in measured)
    firsts = [r for r in measured if (r.turn or 1) == 1]
    planned = [prompts.prefix.tokens + prompts.own.length(_unit(r, warmups)) for r in firsts]
    scale = (math.fsum(float(r.prompt_tokens or 0) for r in firsts) / math.fsum(planned)
             if usage and firsts else 1.0)
    hit = math.floor(prompts.prefix.tokens * scale / block) * block
    turns: dict[tuple[int | None, int | None], RequestRecord] = {
        (r.session, r.turn): r for r in measured if r.session is not None}
    seen: set[int] = set()
    hits = 0.0
    for record in measured:
        which = prompts.which(_unit(record, warmups))
        prefix_hit = hit if prompts.prefix.prime or sent or which in seen else 0
        hits += max(prefix_hit, history_hit(record, turns, block)) if usage else prefix_hit
        seen.add(which)
    totals = [float(r.prompt_tokens) if usage and r.prompt_tokens is not None else float(
        prompts.prefix.tokens + prompts.own.length(_unit(r, warmups))) for r in measured]
    return hits / math.fsum(totals), "usage" if usage else "plan"


def _unit(record: RequestRecord, warmups: int) -> int:
    """The measured prompt a request was built from: its session's, else its own index."""
    return record.session if record.session is not None else record.index - warmups


def history_hit(record: RequestRecord, turns: Mapping[tuple[int | None, int | None],
                RequestRecord], block: int) -> int:
    """Tokens of a session's turn 2+ that the previous turn's prompt left in the cache, in
    whole blocks (never the turn's own last token): that prompt is where this one starts.
    Its answer's blocks may hit too, when the engine's chat template repeats the tokens it
    generated; often it does not (a template that drops the reasoning or the empty think
    block; the CI engine's answers did not re-tokenize alike: 33 blocks achieved, 32 expected
    by prompts, 40 by prompts and answers), so they are not expected: see prefix_cache's
    one_sided. 0 for a turn 1, or when the previous turn's record is not there."""
    before = turns.get((record.session, (record.turn or 1) - 1))
    if before is None or before.prompt_tokens is None or record.prompt_tokens is None:
        return 0
    cached = min(before.prompt_tokens, record.prompt_tokens - 1)
    return max(cached, 0) // block * block


def achieved_rate(
    server_metrics: Mapping[str, Any] | None,
) -> tuple[float | None, float | None, float | None, str | None]:
    """(hits / queries, hit tokens, queried tokens, why None) from the server's prefix-cache
    counters over the measured window (server_metrics.series)."""
    if not server_metrics or not server_metrics.get("url"):
        return None, None, None, "the server was not scraped (servers.yaml metrics_url; a " \
            "kind: mock server needs metrics_url: true)"
    series = server_metrics.get("series")
    if not isinstance(series, Mapping):
        error = server_metrics.get("error") or "no scrape gave metrics"
        return None, None, None, f"no server metrics: {error}"
    hits = (series.get("prefix_cache_hits") or {}).get("delta")
    queries = (series.get("prefix_cache_queries") or {}).get("delta")
    if hits is None or queries is None:
        return None, None, None, "the server exposes no prefix-cache counters " \
            "(vllm:prefix_cache_queries_total, vllm:prefix_cache_hits_total)"
    if queries <= 0:
        return None, hits, queries, "the server counted no prefix-cache queries in the window"
    return hits / queries, hits, queries, None


def engine_block_size(path: str) -> int | None:
    """The engine's prefix-cache unit in tokens from the first scrape stored at `path` (the
    job's server-metrics JSONL): vLLM's `vllm:cache_config_info` labels prefix_match_unit,
    else block_size. None when the file or the series is not there."""
    try:
        with open(path, encoding="utf-8") as lines:
            first = json.loads(lines.readline() or "{}")
    except (OSError, ValueError):
        return None
    samples = first.get("samples") if isinstance(first, dict) else None
    for key in samples if isinstance(samples, dict) else ():
        if key.startswith(_INFO + "{"):
            labels = dict(_LABEL.findall(key))
            for name in ("prefix_match_unit", "block_size"):
                if labels.get(name, "").isdigit() and int(labels[name]) > 0:
                    return int(labels[name])
    return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def gap_reason(metrics: Mapping[str, Any], threshold: float) -> str | None:
    """The figure of validity reason prefix_cache_gap: the achieved and expected hit rates
    when they differ by more than `threshold`; None when they do not, or achieved is unknown."""
    block = metrics.get("prefix_cache")
    if not isinstance(block, Mapping):
        return None
    achieved, expected = block.get("achieved"), block.get("expected")
    if not isinstance(achieved, int | float) or not isinstance(expected, int | float):
        return None
    gap = round(achieved - expected, 4)  # as the block holds it: 0.7 - 0.8 is not -0.1
    if not _beyond(gap, threshold, bool(block.get("one_sided"))):
        return None
    return (f"prefix-cache hit rate {achieved:.2f} achieved vs {expected:.2f} expected from "
            f"the plan (gap {gap:+.2f}, beyond ±{threshold:g})")
