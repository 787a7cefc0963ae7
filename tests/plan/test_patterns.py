from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from runner.errors import InputError
from runner.plan.patterns import PatternError, Selection, check, intersect, resolve, split_terms

CODER = "Qwen/Qwen3-Coder-30B-A3B-Instruct"
QWEN3 = "Qwen/Qwen3-8B"
QWEN25 = "Qwen/Qwen2.5-7B-Instruct"
META = "meta-llama/Llama-3.1-8B-Instruct"
L8, L70, MISTRAL = "llama3.1:8b", "llama3.1:70b", "mistral:7b"
GPT, MINI = "gpt-4o", "gpt-4o-mini"
ODD, ODD1 = "odd[1]", "odd1"
IDS = [CODER, QWEN3, QWEN25, META, L8, L70, MISTRAL, GPT, MINI, ODD, ODD1]
ALL = tuple(sorted(IDS))

GROUPS: dict[str, Sequence[str]] = {
    "coders": ["Qwen/*Coder*"],
    "ollama": "llama3.1:*, mistral:*",
    "small": ["@ollama", "!llama3.1:70b", GPT],
    "mixed": ["@coders,@small", "&~[a-z]"],
    "empty": [],
}


def models(
    spec: str | Sequence[str], groups: dict[str, Sequence[str]] | None = None
) -> tuple[str, ...]:
    return resolve(spec, IDS, groups if groups is not None else GROUPS).models


@pytest.mark.parametrize(
    ("spec", "terms"),
    [
        ("a,b", ["a", "b"]),
        (" a , b ,", ["a", "b"]),
        ("a,,b", ["a", "b"]),
        ("", []),
        ("~foo{1,3},bar", ["~foo{1,3}", "bar"]),
        ("[a,b]*,c", ["[a,b]*", "c"]),
        ("~(a|b,c),d", ["~(a|b,c)", "d"]),
        ("~x[(,]y,z", ["~x[(,]y", "z"]),
        (r"~a\(,b", [r"~a\(", "b"]),
        ("llama3.1:8b,Qwen/Qwen3-8B", ["llama3.1:8b", "Qwen/Qwen3-8B"]),
        (["a, b", " c ", ""], ["a", "b", "c"]),
        (("!a", "&b,c"), ["!a", "&b", "c"]),
        ([], []),
    ],
)
def test_split_terms(spec: str | Sequence[str], terms: list[str]) -> None:
    assert split_terms(spec) == terms


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("all", ALL),
        ("*", ALL),
        ("", ()),
        ([], ()),
        (L8, (L8,)),
        (QWEN3, (QWEN3,)),
        (f"{L8}, {MISTRAL}", (L8, MISTRAL)),
        ([L8, MISTRAL], (L8, MISTRAL)),
        ("llama3.1:*", (L70, L8)),
        ("Qwen/*", (QWEN25, QWEN3, CODER)),
        ("*Instruct", (QWEN25, CODER, META)),
        ("*/*8B*", (QWEN3, META)),
        ("qwen/*", ()),
        ("*llama*", (L70, L8, META)),
        ("*Llama*", (META,)),
        ("gpt-4?", (GPT,)),
        ("gpt-4?*", (GPT, MINI)),
        ("llama3.1:?b", (L8,)),
        ("llama3.1:[78]*", (L70, L8)),
        ("llama3.1:[!7]*", (L8,)),
        ("odd[1]", (ODD,)),
        ("odd[0-9]", (ODD1,)),
        ("odd[[]1]", (ODD,)),
        ("*1]", (ODD,)),
        ("*[]]*", (ODD,)),
        ("odd[1", ()),
        ("~llama", (L70, L8)),
        ("~.*llama", (L70, L8, META)),
        ("~gpt-4o", (GPT, MINI)),
        ("~gpt-4o$", (GPT,)),
        ("~8b", ()),
        ("~(?i)qwen/qwen3", (QWEN3, CODER)),
        ("~mistral|gpt-4o-", (MINI, MISTRAL)),
        ("~llama3.1:7?8b", (L8,)),
        ("~gpt-4x*o", (GPT, MINI)),
        ("~gpt-4ox{0,1}$", (GPT,)),
        ("~Qwen/Qwen3-8B+$", (QWEN3,)),
        ("~^odd\\[", (ODD,)),
        ("~[lm]\\w+[\\d.]*:\\d+b", (L70, L8, MISTRAL)),
        ("!gpt*", tuple(m for m in ALL if not m.startswith("gpt"))),
        ("&~Qwen", (QWEN25, QWEN3, CODER)),
        ("&~Qwen,&*Instruct", (QWEN25, CODER)),
        ("Qwen/*,!*Coder*", (QWEN25, QWEN3)),
        ("*8*,&~Qwen,!*Coder*", (QWEN3,)),
        ("gpt*,~gpt,gpt-4o,gpt-4o", (GPT, MINI)),
        ("all,!all", ()),
    ],
)
def test_resolve(spec: str | Sequence[str], expected: tuple[str, ...]) -> None:
    assert models(spec) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("!gpt-4o,gpt*", "gpt*,!gpt-4o"),
        ("&~Qwen,*8B*", "*8B*,&~Qwen"),
        ("!*Coder*,&Qwen/*,all", "all,&Qwen/*,!*Coder*"),
        (["!@ollama", "@small"], "@small,!@ollama"),
        ("!llama3.1:8b,llama3.1:8b", "llama3.1:8b,!llama3.1:8b"),
    ],
)
def test_order_does_not_matter(one: str | Sequence[str], other: str | Sequence[str]) -> None:
    assert models(one) == models(other)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("@coders", (CODER,)),
        ("@ollama", (L70, L8, MISTRAL)),
        ("@small", (GPT, L8, MISTRAL)),
        ("@mixed", (GPT, L8, MISTRAL)),
        ("@coders,@ollama", (CODER, L70, L8, MISTRAL)),
        ("!@ollama", tuple(m for m in ALL if m not in (L70, L8, MISTRAL))),
        ("&@small", (GPT, L8, MISTRAL)),
        ("@ollama,&@small", (L8, MISTRAL)),
        ("@small,!@ollama", (GPT,)),
        ("all,!@small,!@coders,!~[a-z]", (QWEN25, QWEN3)),
        ("@empty", ()),
    ],
)
def test_groups(spec: str, expected: tuple[str, ...]) -> None:
    assert models(spec) == expected


@pytest.mark.parametrize(
    ("spec", "groups", "message"),
    [
        ("~(", None, "invalid regex '~(': missing ), unterminated subpattern at position 0"),
        ("a,~[a-", None, "invalid regex '~[a-': unterminated character set"),
        ("~a{2,1}", None, "invalid regex '~a{2,1}': min repeat greater than max repeat"),
        ("@codrs", GROUPS, "unknown model group '@codrs' (did you mean '@coders'?)"),
        ("@zzz", {"a": ["x"]}, "unknown model group '@zzz' (known groups: @a)"),
        ("@a", None, "unknown model group '@a' (no model groups are defined)"),
        ("@a", {"a": ["@missing"]}, "unknown model group '@missing' in group '@a'"),
        ("@a", {"a": ["@b"], "b": ["x, @a"]}, "model group cycle: @a -> @b -> @a"),
        ("@x", {"x": ["@a"], "a": ["@a"]}, "model group cycle: @a -> @a"),
        (
            "@g",
            {"g": ["~[a"]},
            "invalid regex '~[a': unterminated character set at position 0 (in group '@g')",
        ),
        ("!", None, "pattern term '!' has nothing after '!'"),
        ("a,&", None, "pattern term '&' has nothing after '&'"),
        ("~", None, "pattern term '~' has nothing after '~'"),
        ("@", None, "pattern term '@' has nothing after '@'"),
        ("!~", None, "pattern term '!~' has nothing after '~'"),
        ("&@", None, "pattern term '&@' has nothing after '@'"),
        ("!!a", None, "pattern term '!!a' has more than one '!' or '&' prefix"),
    ],
)
def test_errors(spec: str, groups: dict[str, Sequence[str]] | None, message: str) -> None:
    for call in (lambda: check(spec, groups), lambda: resolve(spec, IDS, groups)):
        with pytest.raises(PatternError) as info:
            call()
        assert message in str(info.value)
        assert isinstance(info.value, InputError)


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (r"~(a)\1", "invalid escape sequence: \\1"),
        ("~(?P<x>a)(?P=x)", "invalid perl operator: (?P"),
        ("~(?=Qwen)", "invalid perl operator: (?="),
        ("~.*(?<!FP8)$", "invalid perl operator: (?<!"),
        ("~a{1001}", "invalid repetition size: {1001}"),
    ],
)
def test_python_regex_syntax_that_re2_lacks_says_so(spec: str, said: str) -> None:
    with pytest.raises(PatternError) as info:
        check(spec)
    assert str(info.value) == (
        f"regex '{spec}' is not RE2 syntax ({said}): runner matches regexes with RE2, in linear "
        "time, so backreferences, lookaround and repeats over 1000 are not available; rewrite "
        "it without them")


@pytest.mark.parametrize(
    ("pattern", "ids", "expected"),
    [
        ("~(a+)+$", ["a" * 29 + "!", "a" * 29], ("a" * 29,)),  # hung Python's re
        ("~(x+x+)+y", ["x" * 40], ()),
        ("~(.*a){12}", ["a" * 11 + "b" * 30], ()),
        ("~(\\w|\\d)*$", ["1" * 40 + "-"], ()),
    ],
)
def test_regexes_match_in_linear_time(pattern: str, ids: list[str],
                                      expected: tuple[str, ...]) -> None:
    start = time.process_time()
    assert resolve(pattern, ids).models == expected
    assert time.process_time() - start < 2  # ~0.001 s; Python's re needed minutes to hours


@pytest.mark.parametrize(
    "spec",
    ["all", "", "Qwen/*,!~x,&@coders", "@mixed", "odd[1", "llama3.1:8b", ["@small", "~a{1,3}"]],
)
def test_check_accepts(spec: str | Sequence[str]) -> None:
    check(spec, GROUPS)


@pytest.mark.parametrize(
    ("spec", "unmatched", "suggestions"),
    [
        ("all", (), {}),
        ("Qwen/Qwen3-Coder", ("Qwen/Qwen3-Coder",), {"Qwen/Qwen3-Coder": (CODER,)}),
        ("llama3.1:8B", ("llama3.1:8B",), {"llama3.1:8B": (L8,)}),
        ("gpt4o", ("gpt4o",), {"gpt4o": (GPT, MINI)}),
        ("qwen/*", ("qwen/*",), {"qwen/*": (QWEN25, QWEN3, CODER)}),
        ("~LLAMA", ("~LLAMA",), {"~LLAMA": (L70, L8)}),
        (
            "!GPT-4o,&Mistral:7b",
            ("!GPT-4o", "&Mistral:7b"),
            {"!GPT-4o": (GPT,), "&Mistral:7b": (MISTRAL,)},
        ),
        ("zzzz", ("zzzz",), {"zzzz": ()}),
        ("@empty", ("@empty",), {"@empty": ()}),
        ("gpt*,nope,nope", ("nope",), {"nope": ()}),
        ("!gpt*,&~Qwen", (), {}),
    ],
)
def test_unmatched(
    spec: str, unmatched: tuple[str, ...], suggestions: dict[str, tuple[str, ...]]
) -> None:
    selection = resolve(spec, IDS, GROUPS)
    assert selection.unmatched == unmatched
    assert dict(selection.suggestions) == suggestions


@pytest.mark.parametrize(
    ("spec", "warnings"),
    [
        ("gpt*", []),
        (
            "Qwen/Qwen3-Coder",
            [f"pattern term 'Qwen/Qwen3-Coder' matched no model (did you mean '{CODER}'?)"],
        ),
        (
            "gpt4o",
            ["pattern term 'gpt4o' matched no model (did you mean 'gpt-4o' or 'gpt-4o-mini'?)"],
        ),
        (
            "qwen/*",
            [
                "pattern term 'qwen/*' matched no model"
                f" (did you mean '{QWEN25}', '{QWEN3}' or '{CODER}'?)"
            ],
        ),
        (
            "!zzzz,@empty",
            ["pattern term '!zzzz' matched no model", "pattern term '@empty' matched no model"],
        ),
    ],
)
def test_warnings(spec: str, warnings: list[str]) -> None:
    assert resolve(spec, IDS, GROUPS).warnings() == warnings


def test_empty_inventory_matches_nothing() -> None:
    selection = resolve("all,!gpt*", [], GROUPS)
    assert selection.models == ()
    assert selection.unmatched == ("all", "!gpt*")
    assert selection.warnings() == [
        "pattern term 'all' matched no model",
        "pattern term '!gpt*' matched no model",
    ]


def test_result_is_sorted_and_deduplicated() -> None:
    selection = resolve(["gpt-4o-mini", "gpt*", "~gpt"], [MINI, GPT, MINI, "a"])
    assert selection.models == (GPT, MINI)


@pytest.mark.parametrize(
    ("spec", "limit", "expected"),
    [
        ("all", "gpt*", (GPT, MINI)),
        ("Qwen/*", "*8B*", (QWEN3,)),
        ("Qwen/*", "!*Coder*", (QWEN25, QWEN3)),
        ("@ollama", "@small", (L8, MISTRAL)),
        ("gpt*", "llama*", ()),
        ("gpt*", ["all", "!gpt-4o"], (MINI,)),
    ],
)
def test_intersect(spec: str, limit: str | Sequence[str], expected: tuple[str, ...]) -> None:
    selection = resolve(f"{spec},nope", IDS, GROUPS)
    limited = intersect(selection, limit, IDS, GROUPS)
    assert limited.models == expected
    assert limited.unmatched == ("nope",)


def test_selection_defaults() -> None:
    assert Selection(("a",)).warnings() == []
    assert hash(Selection(("a",))) == hash(Selection(("a",)))


SYNTHETIC = [
    f"org{i % 50}/model-{i}-{'instruct' if i % 3 else 'base'}:{i % 7}b" for i in range(10_000)
]


@pytest.mark.parametrize(
    ("term", "suggested"),
    [
        ("org7/modle-7-instruct:0b", "org7/model-7-instruct:0b"),
        ("0rg7/model-7-instruct:0b", "org7/model-7-instruct:0b"),
        ("org7/model-7-Instruct:0b", "org7/model-7-instruct:0b"),
        ("org7/model-7", "org7/model-7-instruct:0b"),
        ("*/model-77-instruct:0B", "org27/model-77-instruct:0b"),
        ("~ORG7/model-7-", "org7/model-7-instruct:0b"),
    ],
)
def test_suggestions_in_a_large_inventory(term: str, suggested: str) -> None:
    assert resolve(term, SYNTHETIC).suggestions[term][0] == suggested


def test_fifty_resolves_over_ten_thousand_ids() -> None:
    # Speed is measured by benchmarks/bench_plan.py; this checks the cached paths stay right.
    ids = [*SYNTHETIC, "fresh"]  # an inventory not seen yet, so that nothing is cached
    groups = {"some": ["org1/*", "org2/*,!*base*"], "more": ["@some", "~org3/"]}
    specs = [
        [f"org{n}/*", f"~org{n + 1}/model-1", "@more", "!*:3b", "&*instruct*", "nope"]
        for n in range(50)
    ]
    for spec in specs:
        found = resolve(spec, ids, groups)
        assert found.models and all("instruct" in m and not m.endswith(":3b") for m in found.models)
        assert found.unmatched[-1] == "nope"


# --- metadata terms and wildcard expansions (issue 12) ----------------------------------------

META_IDS = ("chat-a", "chat-b", "emb", "nomode", "openai/gpt-x", "openai/real")
MODES = {"chat-a": "chat", "chat-b": "chat", "emb": "embedding", "nomode": None,
         "openai/gpt-x": "chat", "openai/real": "chat"}
HIDDEN = ("openai/gpt-x",)  # a wildcard expansion


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mode=embedding", ("emb",)),
        ("mode=chat", ("chat-a", "chat-b", "openai/real")),  # the expansion is left out
        ("mode=unknown", ("nomode",)),
        ("mode=emb*", ("emb",)),
        ("all, !mode=chat", ("emb", "nomode")),
        ("chat-*, emb, &mode=chat", ("chat-a", "chat-b")),
        ("@embeds", ("emb",)),
        ("all", ("chat-a", "chat-b", "emb", "nomode", "openai/real")),
        ("openai/*", ("openai/real",)),
        ("~openai/.*", ("openai/real",)),
        ("openai/gpt-x", ("openai/gpt-x",)),  # named exactly
        ("openai/*, openai/gpt-x, !mode=embedding", ("openai/gpt-x", "openai/real")),
    ],
)
def test_metadata_terms_and_hidden_expansions(spec: str, expected: tuple[str, ...]) -> None:
    found = resolve(spec, META_IDS, {"embeds": ["mode=embedding"]}, MODES, HIDDEN)
    assert found.models == expected


def test_without_facts_a_mode_term_matches_unknown_only() -> None:
    assert resolve("mode=unknown", META_IDS).models == tuple(sorted(META_IDS))
    assert resolve("mode=chat", META_IDS).models == ()


@pytest.mark.parametrize("spec", ["colour=red", "!modes=chat", "a, &max_len=9"])
def test_an_unknown_metadata_key_is_an_error(spec: str) -> None:
    with pytest.raises(PatternError, match=r"unknown metadata key .* \(known: mode=VALUE\)"):
        check(spec)


@pytest.mark.parametrize("spec", ["mode=", "!mode=", "a, &mode= "])
def test_a_metadata_term_without_a_value_is_an_error(spec: str) -> None:
    # Before: accepted by validate, it matched nothing (a mode is never empty): exit 3 later.
    with pytest.raises(PatternError, match=r"no value after '=': .* mode=unknown"):
        check(spec)


def test_an_id_holding_equals_is_named_by_a_glob_class() -> None:
    check("Mode=chat")  # keys are lower-case: this is an id
    assert resolve("a[=]b", ["a=b", "c"]).models == ("a=b",)


def test_a_term_matching_only_expansions_says_so() -> None:
    found = resolve("openai/gpt-*, chat-a", META_IDS, None, MODES, HIDDEN)
    assert found.models == ("chat-a",)
    assert found.warnings() == [
        "pattern term 'openai/gpt-*' matched only 1 wildcard expansion, which are left out; "
        "name them exactly or set `inventory: {include_wildcard_expansions: true}`"]
