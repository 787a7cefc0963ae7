"""The simulator's prefix cache: vLLM's block-hashed hits (whole blocks, chained from the start,
never the last token), LRU eviction, and its counters at /metrics as runner's scraper reads
them."""

from __future__ import annotations

import aiohttp
import pytest
from mock.test_server import with_server

from runner.mock.prefixcache import BLOCK_SIZE, PrefixCache, prompt_words
from runner.mock.server import MockConfig
from runner.servermetrics.series import known_values, parse

WORDS = [f"w{i}" for i in range(100)]


def test_a_repeated_prompt_hits_its_whole_blocks_but_never_its_last_token() -> None:
    cache = PrefixCache(capacity=64)
    assert cache.lookup(WORDS[:40]) == 0  # cold
    assert cache.lookup(WORDS[:40]) == 32  # 2 whole blocks of 16; the 8 after them miss
    assert cache.lookup(WORDS[:32]) == 16  # 32 = 2 blocks, but the last token is computed
    assert (cache.queries, cache.hits) == (112, 48)


def test_a_block_hits_only_when_everything_before_it_hit() -> None:
    cache = PrefixCache(capacity=64)
    cache.lookup(WORDS[:48])
    changed = ["x", *WORDS[1:48]]  # the first block differs: the same later blocks miss
    assert cache.lookup(changed) == 0
    assert cache.lookup(WORDS[:16] + ["y"] * 33) == 16  # shares the first block only


def test_least_recently_used_blocks_are_evicted_beyond_the_capacity() -> None:
    cache = PrefixCache(capacity=4)
    first, second = WORDS[:33], WORDS[50:83]  # 2 blocks each
    cache.lookup(first)
    cache.lookup(second)
    assert cache.lookup(first) == 32  # 4 blocks fit: both kept; first is now the most recent
    cache.lookup(WORDS[20:53])  # 2 new blocks evict second's, the least recently used
    assert cache.lookup(first) == 32
    assert cache.lookup(second) == 0


def test_no_capacity_is_no_cache_whose_queries_still_count() -> None:
    cache = PrefixCache(capacity=0)
    cache.lookup(WORDS[:40])
    assert cache.lookup(WORDS[:40]) == 0 and (cache.queries, cache.hits) == (80, 0)


@pytest.mark.parametrize(("prompt", "words"), [
    ("a b  c", ["a", "b", "c"]),
    ([{"role": "user", "content": "a b"}, {"role": "user",
                                           "content": [{"type": "text", "text": "c"}]}],
     ["a", "b", "c"]),
    ([1, 2], ["#1", "#2"]),
    (None, []),
])
def test_prompt_words_are_what_count_prompt_tokens_counts(prompt: object,
                                                          words: list[str]) -> None:
    from runner.mock.requests import count_prompt_tokens

    assert prompt_words(prompt) == words and count_prompt_tokens(prompt) == len(words)


def test_metrics_serve_vllm_named_counters_that_runner_reads() -> None:
    prompt = " ".join(WORDS[:40])
    body = {"model": "m1", "messages": [{"role": "user", "content": prompt}], "max_tokens": 2}

    async def scenario(session: aiohttp.ClientSession, url: str) -> list[str]:
        texts = []
        for _ in range(3):
            async with session.post(url + "/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
            async with session.get(url + "/metrics") as resp:
                assert resp.status == 200
                texts.append(await resp.text())
        return texts

    config = MockConfig(models=("m1",), ttft_ms=0, itl_ms=0, output_tokens=2,
                        prefix_cache_blocks=4096)
    texts = with_server(config, scenario)
    readings = [known_values(parse(text)) for text in texts]
    assert [(r["prefix_cache_queries"], r["prefix_cache_hits"]) for r in readings] == [
        (40, 0), (80, 2 * BLOCK_SIZE), (120, 4 * BLOCK_SIZE)]
    samples = parse(texts[0])
    assert samples['vllm:cache_config_info{block_size="16",enable_prefix_caching="True",'
                   'engine="0",num_gpu_blocks="4096"}'] == 1.0


def test_by_default_the_simulator_has_no_cache_and_serves_no_metrics() -> None:
    async def scenario(session: aiohttp.ClientSession, url: str) -> int:
        async with session.get(url + "/metrics") as resp:
            return resp.status

    assert with_server(MockConfig(models=("m1",)), scenario) == 404


def test_runner_reads_the_counters_untyped_too() -> None:
    # an exposition without `# TYPE ... counter` shows a counter's name without `_total`
    untyped = 'vllm:prefix_cache_queries{engine="0"} 56\nvllm:prefix_cache_hits{engine="0"} 40\n'
    assert known_values(parse(untyped)) == {"prefix_cache_queries": 56, "prefix_cache_hits": 40}

