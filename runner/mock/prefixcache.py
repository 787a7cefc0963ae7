"""The simulator's prefix cache (issue 14 §1), block-hashed as vLLM's (vllm/v1/core/
kv_cache_utils.py, hash_block_tokens; kv_cache_manager.py, get_computed_blocks): a prompt's
tokens (here its whitespace-separated words, as count_prompt_tokens counts them) are cut into
blocks of BLOCK_SIZE; each full block's hash chains its parent's, so a block hits only when the
whole prompt before it hit too. Least recently used blocks are evicted beyond the capacity.

It counts as vLLM's Prometheus counters do (vllm/v1/metrics/loggers.py): prompt tokens looked
up (`vllm:prefix_cache_queries`) and tokens found (`vllm:prefix_cache_hits`), and serves them at
/metrics in Prometheus' text format. It changes no timing: an answer's TTFT is the same whether
its prompt hit or not (a test of the client's timing stays exact)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

BLOCK_SIZE = 16  # tokens per block: vLLM's default (CacheConfig.DEFAULT_BLOCK_SIZE)
CAPACITY_BLOCKS = 0  # no cache unless asked (runner.defaults.SERVER, --prefix-cache-blocks)
_ROOT = 0  # the parent hash of a prompt's first block


def prompt_words(prompt: object) -> list[str]:
    """The simulator's tokens of a prompt, in order: the words of every text (a chat message's
    content, a content part's text); a token id is one token (see count_prompt_tokens)."""
    if isinstance(prompt, str):
        return prompt.split()
    if isinstance(prompt, int):
        return [f"#{prompt}"]
    if isinstance(prompt, list):
        return [word for item in prompt for word in prompt_words(item)]
    if isinstance(prompt, dict):
        return prompt_words(prompt.get("content", prompt.get("text")))
    return []


class PrefixCache:
    """Full blocks of earlier prompts, least recently used first; `capacity` blocks at most
    (0: no cache: every lookup misses and nothing is kept, the counters still count queries).
    `queries` and `hits` are token counts since the simulator started."""

    def __init__(self, capacity: int = CAPACITY_BLOCKS, block_size: int = BLOCK_SIZE) -> None:
        self.capacity, self.block_size = capacity, block_size
        self.blocks: OrderedDict[int, None] = OrderedDict()
        self.queries = self.hits = 0

    def lookup(self, words: Sequence[str]) -> int:
        """Count a prompt of `words` in: the tokens of its leading blocks found in the cache
        (at most len - 1, as vLLM always computes a prompt's last token), then keep its full
        blocks. Returns the tokens found."""
        hashes = self._hashes(words)
        limit = (len(words) - 1) // self.block_size if words else 0
        found = 0
        while found < min(limit, len(hashes)) and hashes[found] in self.blocks:
            self.blocks.move_to_end(hashes[found])
            found += 1
        self.queries += len(words)
        self.hits += found * self.block_size
        self._keep(hashes)
        return found * self.block_size

    def _hashes(self, words: Sequence[str]) -> list[int]:
        if not self.capacity:
            return []
        parent, hashes, size = _ROOT, [], self.block_size
        for start in range(0, len(words) - size + 1, size):
            parent = hash((parent, tuple(words[start:start + size])))
            hashes.append(parent)
        return hashes

    def _keep(self, hashes: Sequence[int]) -> None:
        for block in hashes:
            self.blocks[block] = None
            self.blocks.move_to_end(block)
        while len(self.blocks) > self.capacity:
            self.blocks.popitem(last=False)

    def exposition(self, model: str, running: int) -> str:
        """The Prometheus text of /metrics: the counters, the cache's config and the requests
        being answered, named and labelled as vLLM 0.32 names them."""
        labels = f'engine="0",model_name="{_label(model)}"'
        caching = "True" if self.capacity else "False"
        return "".join([
            "# HELP vllm:prefix_cache_queries Prefix cache queries, in terms of number of "
            "queried tokens.\n# TYPE vllm:prefix_cache_queries counter\n",
            f"vllm:prefix_cache_queries_total{{{labels}}} {float(self.queries)}\n",
            "# HELP vllm:prefix_cache_hits Prefix cache hits, in terms of number of cached "
            "tokens.\n# TYPE vllm:prefix_cache_hits counter\n",
            f"vllm:prefix_cache_hits_total{{{labels}}} {float(self.hits)}\n",
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n",
            f"vllm:num_requests_running{{{labels}}} {float(running)}\n",
            "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
            "# TYPE vllm:cache_config_info gauge\n",
            f'vllm:cache_config_info{{block_size="{self.block_size}",enable_prefix_caching='
            f'"{caching}",engine="0",num_gpu_blocks="{self.capacity}"}} 1.0\n',
        ])


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
