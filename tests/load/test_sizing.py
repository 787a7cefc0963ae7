"""Sizing synthetic prompts (issue 14 §6): the words/tokens fit, calibrated word counts, and a
local tokenizer.json (built here with the tokenizers library, never downloaded) that sizes each
prompt's text to exactly input_tokens of its tokens; its errors are one line with the path."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from runner.errors import InputError
from runner.load.sizing import Calibration, WordSizer, calibration_of, fit
from runner.load.synthetic import VOCABULARY, SyntheticPrompts
from runner.load.tokenizer import TokenizerSizer, load_tokenizer, local_sizer
from runner.load.workload import prompt_source

tokenizers = pytest.importorskip("tokenizers")


@pytest.fixture(autouse=True)
def fresh_tokenizers() -> Any:
    load_tokenizer.cache_clear()
    yield
    load_tokenizer.cache_clear()


def word_level(path: Path, split_digits: bool = False) -> Path:
    """A tiny WordLevel tokenizer.json: each vocabulary word one token, unknown words [UNK];
    with split_digits every digit of a number is a token of its own."""
    vocab = {w: i for i, w in enumerate(["[UNK]", *"0123456789", "w", *VOCABULARY])}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    pre = [tokenizers.pre_tokenizers.Whitespace()]
    if split_digits:
        pre.append(tokenizers.pre_tokenizers.Digits(individual_digits=True))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Sequence(pre)
    tok.save(str(path))
    return path


def small_bpe(path: Path) -> Path:
    """A byte-level BPE with 300 tokens trained on the vocabulary: most words are 2-4 tokens."""
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([" ".join(VOCABULARY)] * 3, trainer)
    tok.save(str(path))
    return path


def count(path: Path, text: str) -> int:
    tok = tokenizers.Tokenizer.from_file(str(path))
    return len(tok.encode(text, add_special_tokens=False).ids)


@pytest.mark.parametrize(("points", "per", "overhead"), [
    ([(10, 13.0), (100, 130.0)], 1 / 1.3, 0.0),
    ([(8, 20.0), (128, 140.0), (8, 20.0), (128, 140.0)], 1.0, 12.0),  # a 12-token template
    ([(16, 50.0), (256, 530.0)], 0.5, 18.0),
])
def test_fit_is_the_line_through_the_counts(points: list[tuple[int, float]], per: float,
                                            overhead: float) -> None:
    found = fit(points, "usage", 2)
    assert found.method == "usage" and found.requests_spent == 2 and found.reason is None
    assert found.words_per_token == pytest.approx(per)
    assert found.overhead_tokens == pytest.approx(overhead)


@pytest.mark.parametrize(("points", "reason"), [
    ([(10, 13.0)], "fewer than two prompt sizes measured"),
    ([(10, 13.0), (10, 14.0)], "fewer than two prompt sizes measured"),
    ([(10, 13.0), (100, 13.0)], "the server's prompt length did not grow with the words "
                                "(10 words: 13, 100 words: 13)"),
    ([(100, 13.0), (200, 14.0)], "the server's counts give 100 words per token, outside "
                                 "0.05-20: not a tokenizer"),
])
def test_a_fit_without_a_line_is_none_with_the_reason(points: list[tuple[int, float]],
                                                      reason: str) -> None:
    assert fit(points, "tokenize", 3) == Calibration(requests_spent=3, reason=reason)


def test_calibrated_words_give_the_target_and_uncalibrated_prompts_are_unchanged() -> None:
    assert WordSizer(Calibration("usage", 0.5, 18.0, 2)).words(218) == 100
    assert WordSizer(Calibration("usage", 2.0, 500.0, 2)).words(200) == 1  # at least 1
    plain = SyntheticPrompts(40, 0, 7, True, "s")
    off = plain.sized(WordSizer(Calibration(reason="off")))
    assert [off.text(i) for i in range(5)] == [plain.text(i) for i in range(5)]
    assert len(plain.text(3).split()) == 40
    calibrated = plain.sized(WordSizer(Calibration("tokenize", 1 / 1.3, 0.0, 2)))
    assert len(calibrated.text(3).split()) == round(40 / 1.3)
    assert calibrated.salted("t").sizer is calibrated.sizer  # a job's salt keeps its sizing
    assert calibration_of(calibrated) == {"method": "tokenize", "words_per_token": 0.769231,
                                          "overhead_tokens": 0.0, "requests_spent": 2,
                                          "reason": None}
    assert calibration_of(object()) is None  # dataset and template prompts


@pytest.mark.parametrize("build", [word_level, lambda p: word_level(p, split_digits=True),
                                   small_bpe], ids=["word_level", "split_digits", "bpe"])
@pytest.mark.parametrize("target", [1, 2, 7, 64, 300])
def test_a_local_tokenizer_sizes_every_prompt_exactly(tmp_path: Path, build: Any,
                                                      target: int) -> None:
    path = build(tmp_path / "tokenizer.json")
    params = {"input_tokens": target, "tokenizer": "tokenizer.json", "seed": 3}
    prompts = prompt_source(params, str(tmp_path), {}).salted("job")
    for index in (0, 5, 12, 345, 10_000):
        assert count(path, prompts.text(index)) == max(target, count(path, str(index)))
        text = prompts.warmup(index)["messages"][0]["content"]
        assert count(path, text) == max(target, count(path, f"w{index}"))
    assert calibration_of(prompts) == {"method": "tokenizer", "words_per_token": None,
                                       "overhead_tokens": 0.0, "requests_spent": 0,
                                       "reason": None}


def test_a_local_tokenizer_leaves_room_for_the_servers_overhead(tmp_path: Path) -> None:
    path = small_bpe(tmp_path / "tokenizer.json")
    sizer = TokenizerSizer(load_tokenizer(str(path))).with_overhead(9.0, 1)
    prompts = SyntheticPrompts(100, 10, 0, False, "", sizer)
    for index in range(5):
        assert count(path, prompts.text(index)) == prompts.length(index) - 9
    assert sizer.calibration()["overhead_tokens"] == 9.0


def problem(tmp_path: Path, name: str) -> str:
    with pytest.raises(InputError) as caught:
        local_sizer({"tokenizer": name}, str(tmp_path))
    [line] = caught.value.lines()
    return line


def test_a_missing_tokenizer_is_one_line_with_its_path(tmp_path: Path) -> None:
    assert problem(tmp_path, "nope.json") == (
        f"cannot read workload.tokenizer {tmp_path}/nope.json: No such file or directory; it "
        "is the path of a tokenizer.json, relative to the plan's folder")


@pytest.mark.parametrize("content", [b"{}", b"not json", json.dumps({"model": {"type": "x"}})
                                     .encode(), b"\x00\xff", b""])
def test_a_file_that_is_not_a_tokenizer_is_one_line_with_its_path(tmp_path: Path,
                                                                  content: bytes) -> None:
    (tmp_path / "t.json").write_bytes(content)
    line = problem(tmp_path, "t.json")
    assert line.startswith(f"workload.tokenizer {tmp_path}/t.json is not a tokenizer.json the "
                           "tokenizers library reads (")
    assert line.endswith("); give the tokenizer.json of the model's Hugging Face repository")


def test_a_folder_is_not_a_tokenizer(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert problem(tmp_path, "d") == (f"{tmp_path}/d: workload.tokenizer must be a file, not a "
                                      "folder; give a file in it")


def test_without_the_library_a_tokenizer_asks_for_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    word_level(tmp_path / "tokenizer.json")
    real_import = builtins.__import__

    def no_tokenizers(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "tokenizers":
            raise ImportError("No module named 'tokenizers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tokenizers)
    assert problem(tmp_path, "tokenizer.json") == (
        f"workload.tokenizer {tmp_path}/tokenizer.json needs the tokenizers library: "
        "pip install 'runner[tokenizers]'")


def test_a_local_tokenizer_sizes_a_shared_prefix_exactly_too(tmp_path: Path) -> None:
    # A prefix was `tokens` words whatever the tokenizer: with a BPE of ~1.4 tokens a word,
    # prompts of prefix 64 + 16 tokens came out near 105 (prompts_off_target).
    path = small_bpe(tmp_path / "tokenizer.json")
    params = {"input_tokens": 16, "tokenizer": "tokenizer.json", "seed": 3,
              "prefix": {"count": 2, "tokens": 64}}
    prompts = prompt_source(params, str(tmp_path), {}).salted("job")
    for which in (0, 1):
        assert count(path, prompts.prefix_text(which)) == 64  # type: ignore[attr-defined]
    for index in range(4):
        assert abs(count(path, prompts.prompt(index)["messages"][0]["content"]) - 80) <= 1
