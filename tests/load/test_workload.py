"""Prompt sources (synthetic, dataset, template) and request bodies."""

from __future__ import annotations

import json
import os
import pickle
import statistics
from pathlib import Path
from typing import Any

import pytest

from runner.defaults import MAX_DATASET_BYTES
from runner.errors import InputError
from runner.load.synthetic import VOCABULARY, SyntheticPrompts
from runner.load.workload import (
    DatasetPrompts,
    RequestBodies,
    TemplatePrompts,
    encode_body,
    prompt_salt,
    prompt_source,
    request_body,
)


def text_of(prompt: dict[str, Any]) -> str:
    return str(prompt["messages"][0]["content"] if "messages" in prompt else prompt["prompt"])


def synthetic(**params: Any) -> Any:
    return prompt_source({"input_tokens": 64, **params}, ".", {})


def test_synthetic_prompts_are_identical_across_calls_and_sources() -> None:
    one, two = synthetic(seed=7), synthetic(seed=7)
    assert [one.prompt(i) for i in range(5)] == [two.prompt(i) for i in range(5)]
    assert one.prompt(3) == one.prompt(3)


def test_synthetic_prompts_differ_by_index_and_seed() -> None:
    texts = {text_of(synthetic(seed=seed).prompt(i)) for seed in (0, 1) for i in range(50)}
    assert len(texts) == 100


def test_synthetic_prompt_starts_with_its_index_and_has_the_length() -> None:
    source = synthetic(input_tokens=100)
    for index in (0, 1, 12345):
        words = text_of(source.prompt(index)).split()
        assert words[0] == str(index)
        assert len(words) == 100
        assert set(words[1:]) <= set(VOCABULARY)


def test_synthetic_chat_and_completions_shapes() -> None:
    assert synthetic(endpoint="completions").prompt(0).keys() == {"prompt"}
    messages = synthetic(endpoint="chat").prompt(0)["messages"]
    assert [m["role"] for m in messages] == ["user"]


def test_synthetic_stddev_varies_lengths_around_the_mean_at_least_one() -> None:
    source = SyntheticPrompts(200, 50, 0, chat=True)
    lengths = [len(text_of(source.prompt(i)).split()) for i in range(400)]
    assert lengths == [source.length(i) for i in range(400)]
    assert 190 < statistics.mean(lengths) < 210
    assert 40 < statistics.stdev(lengths) < 60
    tiny = SyntheticPrompts(2, 50, 0, chat=True)
    assert min(tiny.length(i) for i in range(200)) == 1


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_dataset_prompt_and_messages_lines_cycle(tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    write(tmp_path, [json.dumps({"prompt": "one"}), "", json.dumps({"messages": messages})])
    source = prompt_source({"dataset": "prompts.jsonl"}, str(tmp_path), {})
    assert source.prompt(0) == {"messages": [{"role": "user", "content": "one"}]}
    assert source.prompt(1) == {"messages": messages}
    assert source.prompt(2) == source.prompt(0)


def test_dataset_for_completions(tmp_path: Path) -> None:
    write(tmp_path, [json.dumps({"prompt": "one"})])
    source = prompt_source({"dataset": "prompts.jsonl", "endpoint": "completions"},
                           str(tmp_path), {})
    assert source.prompt(5) == {"prompt": "one"}


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (['{"prompt": "ok"}', "{nope"], 2, "not JSON"),
        (['{"prompt": "ok"}', "", '["a"]'], 3, 'expected an object with "prompt" or "messages"'),
        (['{"text": "x"}'], 1, 'expected "prompt" (a non-empty string) or "messages"'),
        (['{"prompt": ""}'], 1, 'expected "prompt" (a non-empty string) or "messages"'),
        (['{"messages": []}'], 1, '"messages" must be a non-empty list of objects with a role'),
        (['{"messages": [{"content": "x"}]}'], 1, '"messages" must be a non-empty list'),
        (['{"prompt": "ok"}', '{"prompt": "hi \\ud800"}'], 2, "holds \\ud800, half of a surrogate"),
        (['{"messages": [{"role": "user", "content": "x\\udfff"}]}'], 1, "holds \\udfff"),
    ],
)
def test_dataset_bad_line_says_file_and_line(
    tmp_path: Path, lines: list[str], line: int, message: str
) -> None:
    path = write(tmp_path, lines)
    with pytest.raises(InputError) as caught:
        DatasetPrompts(str(path), chat=True)
    rendered = caught.value.lines()[0]
    assert rendered.startswith(f"{path}:{line}: ")
    assert message in rendered
    assert caught.value.exit_code == 2


def test_dataset_messages_need_chat(tmp_path: Path) -> None:
    path = write(tmp_path, ['{"messages": [{"role": "user", "content": "x"}]}'])
    with pytest.raises(InputError, match="needs endpoint chat"):
        DatasetPrompts(str(path), chat=False)


def test_dataset_empty_or_missing(tmp_path: Path) -> None:
    path = write(tmp_path, ["", "  "])
    with pytest.raises(InputError, match="no prompts"):
        DatasetPrompts(str(path), chat=True)
    with pytest.raises(InputError, match="cannot read the dataset"):
        DatasetPrompts(str(tmp_path / "missing.jsonl"), chat=True)


@pytest.mark.parametrize(("make", "message"), [
    (os.mkfifo, "must be a regular file, not a FIFO"),
    (lambda p: p.symlink_to("/dev/zero"), "must be a regular file, not a character device"),
    (lambda p: os.truncate(p.write_bytes(b"") or p, MAX_DATASET_BYTES + 1),
     "is larger than the 256 MiB runner reads"),
], ids=["fifo", "dev-zero", "too-large"])
def test_dataset_must_be_a_regular_file_of_a_bounded_size(
    tmp_path: Path, make: Any, message: str
) -> None:
    """Read when apply builds its prompts (a dataset swapped after validation): no hang."""
    path = tmp_path / "d.jsonl"
    make(path)
    with pytest.raises(InputError, match=f"^{path}: the dataset {message}"):
        DatasetPrompts(str(path), chat=True)


def test_template_renders_per_request_with_vars_and_i() -> None:
    source = prompt_source({"template": "Q{{ i }} for {{ who }}: {{ 'x' * i }}"}, ".",
                           {"who": "bob"})
    assert text_of(source.prompt(0)) == "Q0 for bob: "
    assert text_of(source.prompt(3)) == "Q3 for bob: xxx"


def test_template_for_completions() -> None:
    source = prompt_source({"template": "n={{ i }}", "endpoint": "completions"}, ".", {})
    assert source.prompt(2) == {"prompt": "n=2"}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ missing }}", "'missing' is undefined"),
        ("{{ i ", "template syntax error"),
        ("{{ ''.__class__ }}", "not allowed by the sandbox"),
        ("{{ 'x' * 1000001 }}", "not allowed by the sandbox"),
        ("{% include 'x' %}", "cannot include or import files"),
    ],
)
def test_template_errors_are_input_errors(template: str, message: str) -> None:
    with pytest.raises(InputError, match=r"workload\.template") as caught:
        prompt_source({"template": template}, ".", {})
    assert message in str(caught.value)


def test_template_error_for_one_request_index() -> None:
    source = prompt_source({"template": "{{ items[i] }}"}, ".", {"items": ["a", "b"]})
    assert text_of(source.prompt(1)) == "b"
    with pytest.raises(InputError, match=r"request 2"):
        source.prompt(2)


def test_template_making_a_lone_surrogate_is_an_input_error() -> None:
    """A Jinja escape makes one; encoding the request body crashed apply with exit 70."""
    with pytest.raises(InputError, match=r"^workload.template: .*\\ud800, half of a surrogate"):
        prompt_source({"template": '{{ "p\\ud800" }}'}, ".", {})
    source = prompt_source({"template": '{% if i == 1 %}{{ "\\udfff" }}{% endif %}{{ i }}'},
                           ".", {})
    with pytest.raises(InputError, match=r"request 1\): .*\\udfff"):
        source.prompt(1)


PROMPT = {"messages": [{"role": "user", "content": "hi"}]}


def test_chat_body_streaming() -> None:
    params = {"max_tokens": 16, "temperature": 0.5, "seed": 3, "stream": True}
    assert request_body(params, "m", PROMPT) == {
        "model": "m", "messages": PROMPT["messages"], "max_tokens": 16, "temperature": 0.5,
        "seed": 3, "stream": True, "stream_options": {"include_usage": True},
    }


def test_completions_body_not_streaming() -> None:
    params = {"max_tokens": 16, "temperature": 0, "seed": 0, "stream": False}
    assert request_body(params, "m", {"prompt": "hi"}) == {
        "model": "m", "prompt": "hi", "max_tokens": 16, "temperature": 0, "seed": 0,
        "stream": False,
    }


def test_extra_body_merges_on_top() -> None:
    params = {"max_tokens": 16, "stream": True,
              "extra_body": {"ignore_eos": True, "max_tokens": 32, "stream_options": None}}
    body = request_body(params, "m", PROMPT)
    assert body["ignore_eos"] is True
    assert body["max_tokens"] == 32
    assert body["stream_options"] is None


def test_encode_body_is_compact_utf8() -> None:
    assert encode_body({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'.encode()


@pytest.mark.parametrize(("reuse", "salt"), [
    (None, "job=b/m;run=n1"), ("none", "job=b/m;run=n1"), ("across_runs", "job=b/m"),
    ("across_jobs", "run=n1"), ("always", "")])
def test_prompt_salt_mixes_in_what_prompt_reuse_does_not_share(reuse: str | None,
                                                               salt: str) -> None:
    params = {} if reuse is None else {"prompt_reuse": reuse}
    assert prompt_salt(params, "b/m", "n1") == salt
    assert prompt_salt(params, "b/m", None) == ""  # a run recorded before nonces: as it sent


def test_salted_synthetic_prompts_differ_and_the_unsalted_ones_are_the_old_ones() -> None:
    plain, salted = synthetic(), synthetic().salted("job=x;run=1")
    assert text_of(plain.prompt(3)) != text_of(salted.prompt(3))
    assert text_of(salted.prompt(3)) == text_of(synthetic().salted("job=x;run=1").prompt(3))
    assert text_of(plain.prompt(3)).split()[0] == text_of(salted.prompt(3)).split()[0] == "3"
    assert text_of(salted.warmup(3)).split()[0] == "w3"


def test_dataset_warmups_are_marked_so_they_never_fill_a_cache_with_a_measured_prompt(
        tmp_path: Path) -> None:
    parts = [{"type": "text", "text": "look"}]
    (tmp_path / "d.jsonl").write_text(
        '{"prompt": "one"}\n'
        + json.dumps({"messages": [{"role": "system", "content": "sys"},
                                   {"role": "user", "content": "two"}]}) + "\n"
        + json.dumps({"messages": [{"role": "user", "content": parts}]}) + "\n")
    source = prompt_source({"dataset": "d.jsonl"}, str(tmp_path), {})
    assert source.salted("job=x") is source
    assert text_of(source.warmup(0)) == "(warm-up 0) one"
    assert source.warmup(1)["messages"] == [{"role": "system", "content": "(warm-up 1) sys"},
                                            {"role": "user", "content": "two"}]
    assert source.warmup(2)["messages"][0]["content"] == [
        {"type": "text", "text": "(warm-up 2) "}, *parts]
    assert source.prompt(1)["messages"][0]["content"] == "sys"  # the measured one unchanged


def test_request_bodies_count_measured_prompts_from_zero_after_the_warmups() -> None:
    params = {"input_tokens": 8, "warmup_requests": 2}
    bodies = RequestBodies(params, "m", synthetic(input_tokens=8))
    first_words = [json.loads(bodies.build(i))["messages"][0]["content"].split()[0]
                   for i in range(4)]
    assert first_words == ["w0", "w1", "0", "1"]


def test_template_prompts_travel_to_a_worker_process_by_pickle() -> None:
    """--workers hands each worker its job's prompt source pickled; the sandbox's compiled
    template held functions pickle cannot name (an internal error, exit 70, before)."""
    source = TemplatePrompts("Say {{ who }} {{ i }}", {"who": "hi"}, chat=True)
    copy = pickle.loads(pickle.dumps(source))
    assert [copy.prompt(i) for i in range(3)] == [source.prompt(i) for i in range(3)]


def test_a_dataset_line_that_is_not_utf8_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"prompt": "ok"}\n\n{"prompt": "\xff\xfe bad"}\n')
    with pytest.raises(InputError) as caught:
        DatasetPrompts(str(path), chat=True)
    assert caught.value.lines() == [f"{path}:3: not UTF-8 text (byte 0xff at column 13); "
                                    "save the dataset as UTF-8"]
