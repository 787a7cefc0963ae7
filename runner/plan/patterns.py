"""Model patterns: select model ids with Ansible-style host patterns."""

from __future__ import annotations

import difflib
import fnmatch
import re
from bisect import bisect_left
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Protocol, cast

from runner.errors import InputError

Groups = Mapping[str, Sequence[str]]
Modes = Mapping[str, str | None]  # model id -> its mode (LiteLLM's `mode`), None if unknown

_CLOSER = {"(": ")", "[": "]", "{": "}"}
_GLOB_META = re.compile(r"[*?\[]")
_REGEX_META = re.compile(r"[.^$*+?{}\[\]\\|()]")
_GLOB_PIECE = re.compile(r"\[!?\]?[^\]]*\]|[*?\[]")  # a class, a wildcard or a lone `[`
_EVERYTHING = ("all", "*")
_LAST_CHAR = chr(0x10FFFF)
_NEIGHBOURS = 10  # ids taken on each side of a misspelt term, by start and by end
# `KEY=VALUE` selects by metadata; VALUE is a glob over the model's value of KEY.
_METADATA_TERM = re.compile(r"([a-z_]+)=(.*)", re.DOTALL)
METADATA_KEYS = ("mode",)
UNKNOWN = "unknown"  # the VALUE of a metadata term matching models without that metadata


class PatternError(InputError):
    """A pattern that cannot be evaluated: bad regex, unknown group, group cycle, empty term."""


@dataclass(frozen=True)
class Selection:
    """The models a spec selects, and the terms that selected nothing."""

    models: tuple[str, ...]
    unmatched: tuple[str, ...] = ()
    suggestions: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    hidden: Mapping[str, int] = field(default_factory=dict, hash=False)  # term -> expansions

    def warnings(self) -> list[str]:
        """One line per unmatched term, with close matches when there are some, or the number
        of wildcard expansions it would have matched."""
        return [_warning(term, self.suggestions.get(term, ()), self.hidden.get(term, 0))
                for term in self.unmatched]


def split_terms(spec: str | Sequence[str]) -> list[str]:
    """Split a spec into stripped, non-empty terms; commas inside (), [], {} do not split."""
    items = [spec] if isinstance(spec, str) else spec
    return [term for item in items for term in _split(item)]


def literal_term(model_id: str) -> str:
    """A term that selects exactly `model_id` wherever it stands in a spec: the id itself when
    it reads as one, else an anchored regex of it (an id such as `a=b`, `mode=chat`, `~x`,
    `!y`, `all`, `[ab]` or `r(1` would read as another kind of term, or split the spec)."""
    plain = (model_id[:1] not in ("!", "&", "~", "@") and model_id not in _EVERYTHING
             and not _METADATA_TERM.fullmatch(model_id) and not _GLOB_META.search(model_id)
             and "\\" not in model_id and split_terms(f"{model_id},x") == [model_id, "x"])
    return model_id if plain else "~" + re.escape(model_id).replace(",", "\\,") + "$"


def check(spec: str | Sequence[str], groups: Groups | None = None) -> None:
    """Raise PatternError for syntax problems (bad regex, unknown group, cycle, empty prefix,
    unknown metadata key)."""
    _Resolver(_inventory(()), groups).terms(split_terms(spec))


def resolve(
    spec: str | Sequence[str],
    ids: Sequence[str],
    groups: Groups | None = None,
    modes: Modes | None = None,
    hidden: Collection[str] = (),
) -> Selection:
    """Select from `ids` the models `spec` names; report the terms that matched nothing.

    `modes` gives each id's mode for `mode=VALUE` terms. `hidden` ids (wildcard expansions)
    are selected only by a term naming them exactly, never by `all`, a glob, a regex or a
    metadata term."""
    inv_modes = tuple(sorted((modes or {}).items()))
    inv = _inventory(tuple(ids), inv_modes, frozenset(hidden))
    pairs = _Resolver(inv, groups).terms(split_terms(spec))
    unmatched = tuple(dict.fromkeys(term.text for term, found in pairs if not found))
    suggestions = {text: inv.suggest(_parse(text).body) for text in unmatched}
    hidden_found: dict[str, int] = {}
    if hidden and unmatched:
        every = _inventory(tuple(ids), inv_modes)
        for text in unmatched:
            body = _parse(text).body
            if body[0] != "@" and (count := len(every.match(body))):
                hidden_found[text] = count
    return Selection(tuple(sorted(_combine(pairs, inv.set))), unmatched, suggestions,
                     hidden_found)


def intersect(
    selection: Selection,
    limit: str | Sequence[str],
    ids: Sequence[str],
    groups: Groups | None = None,
) -> Selection:
    """Apply a --limit pattern: keep only models that the limit also selects.

    The limit's own unmatched terms are not added; resolve the limit once to report them.
    """
    keep = set(resolve(limit, ids, groups).models)  # --limit: every listed id may be named
    return replace(selection, models=tuple(m for m in selection.models if m in keep))


def _split(text: str) -> list[str]:
    terms: list[str] = []
    closers: list[str] = []
    start, escaped = 0, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":  # so that `~a\(,b` still splits
            escaped = True
        elif char in _CLOSER and closers[-1:] != ["]"]:  # in a class only `]` is special
            closers.append(_CLOSER[char])
        elif closers and char == closers[-1]:
            closers.pop()
        elif char == "," and not closers:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return [term.strip() for term in terms if term.strip()]


@dataclass(frozen=True)
class _Term:
    text: str  # as written, prefix included
    op: str  # "", "!" or "&"
    body: str  # `all`, `*`, `~regex`, `@group`, an id or a glob


_Matched = list[tuple[_Term, frozenset[str]]]


@lru_cache(maxsize=4096)
def _parse(text: str) -> _Term:
    op = text[0] if text[0] in "!&" else ""
    body = text[len(op) :].strip()
    if body in ("", "~", "@"):
        raise PatternError(f"pattern term {text!r} has nothing after {text.rstrip()[-1]!r}")
    if body[0] in "!&":
        raise PatternError(f"pattern term {text!r} has more than one '!' or '&' prefix")
    if body[0] == "~":
        _regex(body[1:])
    if (meta := _METADATA_TERM.fullmatch(body)) and meta[1] not in METADATA_KEYS:
        known = ", ".join(f"{k}=VALUE" for k in METADATA_KEYS)
        raise PatternError(f"pattern term {text!r} selects by an unknown metadata key "
                           f"{meta[1]!r} (known: {known}); to name an id holding '=', write "
                           "it as a glob such as a[=]b")
    if meta and not meta[2].strip():
        raise PatternError(f"pattern term {text!r} gives no value after '=': write a mode "
                           f"such as {meta[1]}=chat, a glob ({meta[1]}=*gen*) or "
                           f"{meta[1]}={UNKNOWN}")
    return _Term(text, op, body)


class _Matcher(Protocol):
    """A compiled regex or glob: `match` is anchored at the start, as `re.match`."""

    def match(self, text: str) -> object | None: ...


@lru_cache(maxsize=4096)
def _regex(source: str, ignore_case: bool = False) -> _Matcher:
    """`~regex` compiled by RE2, which matches in linear time: with Python's backtracking
    engine `~(a+)+$` took minutes against a 29-character id. RE2 has no backreferences or
    lookaround; such a pattern is a PatternError that says so."""
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would write its own line on stderr
    options.case_sensitive = not ignore_case
    try:
        return cast(_Matcher, re2.compile(source, options))
    except re2.error as err:
        raise PatternError(_regex_problem(source, err)) from None


def _regex_problem(source: str, err: Exception) -> str:
    """Python's words for a regex that is wrong in any syntax; else what RE2 lacks."""
    try:
        re.compile(source)
    except re.error as python_err:
        return f"invalid regex '~{source}': {python_err}"
    detail = err.args[0] if err.args else err
    said = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
    return (f"regex '~{source}' is not RE2 syntax ({said}): runner matches regexes with RE2, "
            "in linear time, so backreferences, lookaround and repeats over 1000 are not "
            "available; rewrite it without them")


@lru_cache(maxsize=4096)
def _glob(pattern: str, flags: int = 0) -> re.Pattern[str]:
    # fnmatch.fnmatch would fold case on some platforms; ids are case-sensitive everywhere.
    # fnmatch.translate emulates atomic groups, so a glob never backtracks catastrophically.
    return re.compile(fnmatch.translate(pattern), flags)


class _Inventory:
    """Sorted ids, their set, and what each non-group term matches or suggests, memoized."""

    def __init__(self, ids: tuple[str, ...], modes: tuple[tuple[str, str | None], ...] = (),
                 hidden: frozenset[str] = frozenset()) -> None:
        self.named = frozenset(ids)  # every id a term may name exactly
        self.ids = tuple(sorted(self.named - hidden))  # those `all`, globs and regexes see
        self.set = frozenset(self.ids)
        self.modes = dict(modes)
        self.exact = _Index(self.ids, self.ids)
        self.matches: dict[str, frozenset[str]] = {}
        self.suggestions: dict[str, tuple[str, ...]] = {}

    def match(self, body: str) -> frozenset[str]:
        if body not in self.matches:
            self.matches[body] = frozenset(_match(body, self))
        return self.matches[body]

    def suggest(self, body: str) -> tuple[str, ...]:
        if body not in self.suggestions:
            self.suggestions[body] = _suggest(body, self)
        return self.suggestions[body]

    @cached_property
    def folded(self) -> _Index:
        return _Index.by(self.ids, str.casefold)

    @cached_property
    def reversed(self) -> _Index:
        return _Index.by(self.ids, lambda i: i.casefold()[::-1])


@dataclass(frozen=True)
class _Index:
    """Ids in the order of a key, so that a key prefix is one slice found by bisection."""

    keys: tuple[str, ...]
    ids: tuple[str, ...]

    @classmethod
    def by(cls, ids: Sequence[str], key: Callable[[str], str]) -> _Index:
        pairs = sorted((key(i), i) for i in ids)
        return cls(tuple(k for k, _ in pairs), tuple(i for _, i in pairs))

    def narrow(self, prefix: str, needle: str = "") -> Sequence[str]:
        """The ids whose key starts with `prefix` and contains `needle` (or a few more)."""
        start = bisect_left(self.keys, prefix)
        end = len(self.keys)
        if prefix and prefix[-1] < _LAST_CHAR:
            end = bisect_left(self.keys, prefix[:-1] + chr(ord(prefix[-1]) + 1), start)
        if not needle:
            return self.ids[start:end]
        pairs = zip(self.ids[start:end], self.keys[start:end], strict=True)
        return [i for i, key in pairs if needle in key]  # `in` is much cheaper than a regex

    def near(self, key: str) -> tuple[str, ...]:
        """The ids whose keys sort next to `key`: those sharing the longest start with it."""
        at = bisect_left(self.keys, key)
        return self.ids[max(at - _NEIGHBOURS, 0) : at + _NEIGHBOURS]


@lru_cache(maxsize=8)
def _inventory(ids: tuple[str, ...], modes: tuple[tuple[str, str | None], ...] = (),
               hidden: frozenset[str] = frozenset()) -> _Inventory:
    return _Inventory(ids, modes, hidden)


def _match(body: str, inv: _Inventory) -> Sequence[str]:
    if body in _EVERYTHING:
        return inv.ids
    if body in inv.named:
        return [body]
    if meta := _METADATA_TERM.fullmatch(body):
        value = _glob(meta[2])
        return [i for i in inv.ids if value.match(inv.modes.get(i) or UNKNOWN)]
    if body[0] == "~":
        return list(filter(_regex(body[1:]).match, inv.exact.narrow(_regex_prefix(body[1:]))))
    if body in inv.set or not _GLOB_META.search(body):
        return [body] if body in inv.set else []
    candidates = inv.exact.narrow(_glob_prefix(body), _literal(body))
    return list(filter(_glob(body).match, candidates))


def _regex_prefix(source: str) -> str:
    """Plain characters every match starts with; empty when unsure (alternation, flags)."""
    if "|" in source:
        return ""
    meta = _REGEX_META.search(source)
    if meta is None:
        return source
    end = meta.start()
    if source[end] in "*?{":  # the character before it may be absent
        end -= 1
    return source[:end]


def _glob_prefix(glob: str) -> str:
    return _GLOB_META.split(glob, maxsplit=1)[0]


def _literal(glob: str) -> str:
    """The longest run of plain characters in a glob: every id it matches contains it."""
    return max(_GLOB_PIECE.split(glob), key=len)


class _Resolver:
    """Evaluates terms against one inventory, resolving each group once."""

    def __init__(self, inv: _Inventory, groups: Groups | None) -> None:
        self.inv = inv
        self.groups = groups or {}
        self.resolved: dict[str, frozenset[str]] = {}
        self.stack: list[str] = []

    def terms(self, texts: list[str]) -> _Matched:
        return [self.term(text) for text in texts]

    def term(self, text: str) -> tuple[_Term, frozenset[str]]:
        try:
            term = _parse(text)
        except PatternError as err:
            inside = f" (in group '@{self.stack[-1]}')" if self.stack else ""
            raise PatternError(f"{err}{inside}") from None
        if term.body[0] == "@":
            return term, self.group(term.body[1:])
        return term, self.inv.match(term.body)

    def group(self, name: str) -> frozenset[str]:
        if name in self.stack:
            chain = " -> ".join(f"@{g}" for g in [*self.stack[self.stack.index(name) :], name])
            raise PatternError(f"model group cycle: {chain}")
        if name not in self.resolved:
            if name not in self.groups:
                raise PatternError(_unknown_group(name, self.groups, self.stack))
            self.stack.append(name)
            pairs = self.terms(split_terms(self.groups[name]))
            self.resolved[name] = _combine(pairs, self.inv.set)
            self.stack.pop()
        return self.resolved[name]


def _combine(pairs: _Matched, everything: frozenset[str]) -> frozenset[str]:
    """Ansible's order: union of plain terms (or everything), then each `&`, then each `!`."""
    if not pairs:
        return frozenset()
    plain = [found for term, found in pairs if not term.op]
    result = frozenset[str]().union(*plain) if plain else everything
    for term, found in pairs:
        if term.op == "&":
            result &= found
    for term, found in pairs:
        if term.op == "!":
            result -= found
    return result


def _suggest(body: str, inv: _Inventory) -> tuple[str, ...]:
    """Ids the term would match ignoring case (or as a prefix), else the closest by spelling."""
    if body[0] == "@" or body in _EVERYTHING or _METADATA_TERM.fullmatch(body):
        return ()
    if body[0] == "~":
        candidates = inv.folded.narrow(_regex_prefix(body[1:]).casefold())
        return _first_matching([_regex(body[1:], ignore_case=True)], candidates)
    candidates = inv.folded.narrow(_glob_prefix(body).casefold(), _literal(body).casefold())
    exact = _glob(body, re.IGNORECASE)
    loose = [exact] if body.endswith("*") else [exact, _glob(body + "*", re.IGNORECASE)]
    return _first_matching(loose, candidates) or _close(body, inv)


def _first_matching(patterns: Sequence[_Matcher], ids: Sequence[str]) -> tuple[str, ...]:
    """Up to 3 ids matched by the first of `patterns` that matches any."""
    for rx in patterns:
        found = sorted(filter(rx.match, ids))
        if found:
            return tuple(found[:3])
    return ()


def _close(text: str, inv: _Inventory) -> tuple[str, ...]:
    """Up to 3 ids spelt like `text`, chosen among those sharing its start or its end.

    difflib over every id takes seconds on a large inventory of similar ids; a typo
    rarely spoils both ends of an id, so the close matches are among these few.
    """
    folded = text.casefold()
    pool = dict.fromkeys([*inv.folded.near(folded), *inv.reversed.near(folded[::-1])])
    return tuple(difflib.get_close_matches(text, pool, n=3))


def _unknown_group(name: str, groups: Groups, stack: list[str]) -> str:
    close = difflib.get_close_matches(name, list(groups), n=3)
    if close:
        hint = f"did you mean {_either(['@' + c for c in close])}?"
    elif groups:
        hint = "known groups: " + ", ".join(f"@{g}" for g in sorted(groups))
    else:
        hint = "no model groups are defined"
    inside = f" in group '@{stack[-1]}'" if stack else ""
    return f"unknown model group '@{name}'{inside} ({hint})"


def _warning(term: str, close: Sequence[str], expansions: int = 0) -> str:
    line = f"pattern term {term!r} matched no model"
    if expansions:
        return (f"pattern term {term!r} matched only {expansions} wildcard expansion"
                f"{'s' if expansions != 1 else ''}, which are left out; name them exactly or "
                "set `inventory: {include_wildcard_expansions: true}`")
    return f"{line} (did you mean {_either(close)}?)" if close else line


def _either(names: Sequence[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
