"""Build a tiny Qwen3-shaped model with random weights and a tokenizer trained here, for tests.

usage: python tiny_model.py OUT_DIR [--partial-bytes] [--layers N] [--hidden H] [--vocab V]

Nothing is downloaded. The tokenizer is a byte-level BPE (any text encodes, as with Qwen's own)
trained on sentences generated from a seeded word list; its chat template is ChatML and its end of
sequence `<|im_end|>`. The weights are seeded, so one set of arguments always gives the same files.

A random model likes to repeat one token. When that token is a lone byte that is not a whole UTF-8
character, vLLM streams tokens with no text while it holds the bytes back. By default the output
layer's rows for such tokens are zeroed so they never win; `--partial-bytes` scales them up, to
serve that case on purpose.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

_WORD_LIST = (
    "the a of and to in is was for on that with as by at from it an were are be this has had not"
    " one two three first new after but who they have she when there all into time may year more"
    " most only over city world would where later such used many can state about out known then"
    " made see team part well both life could these between while name under house back right"
    " same long still work each power high much through early before since water light music"
    " game story line place group number area point side book river home field word order form"
    " class paper table voice plan money hand head room door road child friend night week month"
    " market south north east west model system level price value rate sound color space small"
    " large great good old young what how why answer question explain write tell describe list"
    " short poem code function server token cache request latency queue batch"
)
WORDS = _WORD_LIST.split()
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
CONTEXT = 4096


def training_text(seed: int = 0, lines: int = 20000) -> list[str]:
    """Sentences of the word list and rows of numbers, from a seeded generator."""
    rng = random.Random(seed)
    text = []
    for _ in range(lines):
        words = rng.choices(WORDS, k=rng.randint(4, 20))
        text.append(" ".join(words).capitalize() + rng.choice(".?!,;:"))
    text += [" ".join(str(rng.randint(0, 99999)) for _ in range(10)) for _ in range(lines // 10)]
    return text


def build_tokenizer(out: Path, vocab: int) -> Any:
    """Train the byte-level BPE and save it with its chat template; returns the fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(training_text(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        model_max_length=CONTEXT,
    )
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(out)
    config_path = out / "tokenizer_config.json"  # some clients read the template only here
    config = json.loads(config_path.read_text())
    config["chat_template"] = CHATML
    config_path.write_text(json.dumps(config, indent=2))
    return tokenizer


PARTIAL_BOOST = 1.5  # measured: 2 to 21 of 48 greedy tokens are lone bytes; 2.5 makes nearly all


def build_weights(out: Path, tokenizer: Any, layers: int, hidden: int, partial_bytes: bool) -> None:
    """Seeded random Qwen3 weights in bfloat16, saved as safetensors with a greedy config."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    vocab = len(tokenizer)
    heads = max(1, hidden // 64)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen3Config(
        vocab_size=(vocab + 63) // 64 * 64, hidden_size=hidden, intermediate_size=hidden * 3,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
        head_dim=64, max_position_embeddings=CONTEXT, rope_theta=1_000_000.0,
        tie_word_embeddings=False, bos_token_id=None, eos_token_id=eos, pad_token_id=pad,
        torch_dtype="bfloat16",
    )
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[vocab:] = 0.0  # padding rows: never picked
        partial = [i for i in range(vocab) if "\ufffd" in tokenizer.decode([i])]
        # A zero logit never beats thousands of random ones; scaled-up rows win often, so
        # stretches of tokens with no whole character (no text yet) come in most answers.
        model.lm_head.weight[partial] *= PARTIAL_BOOST if partial_bytes else 0.0
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    GenerationConfig(eos_token_id=eos, pad_token_id=pad, do_sample=False).save_pretrained(out)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"tiny model: {layers} layers, hidden {hidden}, vocab {vocab}, {params:.1f}M params"
          f" -> {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--partial-bytes", action="store_true")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=8192)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(args.out, args.vocab)
    build_weights(args.out, tokenizer, args.layers, args.hidden, args.partial_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
