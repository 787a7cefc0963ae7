"""The pure parts of `runner new`: answers, pattern proposals, presets and the plan's YAML."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.inventory.listing import Model
from runner.plan import patterns
from runner.yamlfile import plain_scalar

NAME_MAX = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # the schema's pattern for a plan name
_NUMBERED = re.compile(r"^([!&]?)(\d+)(?:-(\d+))?$")  # 3, 1-3, !2: positions in the listing
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./*-]*$")  # strings safe to write unquoted
_WIDTH = 96

Groups = Mapping[str, Sequence[str]]
Caps = Mapping[str, tuple[int, str]]  # metadata key -> (smallest known value, the model with it)


class AnswerError(ValueError):
    """An answer that cannot be used; the message says why and the question is asked again."""


# --- choosing models ------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """The models an answer selects, and the pattern terms as typed (None if it used numbers)."""

    models: tuple[str, ...]
    typed: tuple[str, ...] | None


def parse_selection(
    text: str, ids: Sequence[str], groups: Groups | None = None, numbers: bool = True
) -> Choice:
    """Numbers and ranges of the listing (`1-3,7`, `!2`) and/or any runner pattern (`Qwen/*`)."""
    terms = patterns.split_terms(text)
    if not terms:
        raise AnswerError("choose at least one model: numbers such as 1-3,7 or a pattern")
    expanded = [t for term in terms for t in _expand(term, ids)] if numbers else terms
    try:
        found = patterns.resolve(expanded, ids, groups)
    except patterns.PatternError as err:
        raise AnswerError(str(err)) from None
    for term in found.unmatched:
        if not term.startswith("!"):  # an exclusion may be there for models still to come
            raise AnswerError(_no_match(term, found.suggestions.get(term, ())))
    if not found.models:
        raise AnswerError(f"'{', '.join(terms)}' selects no model")
    return Choice(found.models, None if expanded != terms else tuple(terms))


def _expand(term: str, ids: Sequence[str]) -> list[str]:
    found = _NUMBERED.match(term.replace(" ", ""))
    if found is None:
        return [term]
    op, first, last = found.group(1), int(found.group(2)), int(found.group(3) or found.group(2))
    for n in (first, last):
        if not 1 <= n <= len(ids):
            raise AnswerError(f"{n} is not in 1-{len(ids)}")
    if first > last:
        raise AnswerError(f"{first}-{last} runs backwards; write {last}-{first}")
    return [op + patterns.literal_term(ids[n - 1]) for n in range(first, last + 1)]


def _no_match(term: str, close: Sequence[str]) -> str:
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f"no model matches '{term}'{hint}"


def propose_pattern(choice: Choice, ids: Sequence[str]) -> tuple[str, ...]:
    """A pattern for the chosen models: the one typed, else a glob or prefix that selects
    exactly them now (new models it matches join later), else their exact ids."""
    if choice.typed is not None:
        return choice.typed
    exact = choice.models
    literal = tuple(map(patterns.literal_term, exact))
    if len(exact) == 1:
        return literal
    plain = [b for b in _bases(exact, ids) if _selects(b, ids) == exact]
    trimmed = [c for b in _bases(exact, ids) for c in _trimmed(b, exact, ids)]
    return min([*plain, literal, *trimmed], key=len)  # the first of the shortest


def _bases(models: tuple[str, ...], ids: Sequence[str]) -> list[tuple[str, ...]]:
    """Patterns that may select a superset of `models`."""
    orgs = tuple(dict.fromkeys(m.split("/", 1)[0] + "/*" if "/" in m else m for m in models))
    prefix = _common_start(models)
    common = [(prefix + "*",)] if prefix else []
    return [("all",), orgs, *common]


def _trimmed(
    base: tuple[str, ...], models: tuple[str, ...], ids: Sequence[str]
) -> list[tuple[str, ...]]:
    """`base` minus what it selects beyond `models`: by an ending two or more of those share
    (`!*-FP8`), else id by id."""
    found = _selects(base, ids)
    extra = [m for m in found if m not in models]
    if not extra or not set(models) <= set(found):
        return []
    by_end = [(*base, f"!*{end}") for end in _endings(extra)] if len(extra) > 1 else []
    exact = (*base, *(f"!{patterns.literal_term(m)}" for m in extra))
    fitting = [c for c in by_end if _selects(c, ids) == models]
    return [*fitting[:1], exact]


def _endings(ids: Sequence[str]) -> list[str]:
    """The endings the ids share that start at a separator, shortest first (`-FP8`, ...)."""
    tail = _common_start([i[::-1] for i in ids])[::-1]
    cuts = sorted({i for i, char in enumerate(tail) if char in "-_./"}, reverse=True)
    return [tail[i:] for i in cuts]


def _common_start(texts: Sequence[str]) -> str:
    first, last = min(texts), max(texts)
    same = [a == b for a, b in zip(first, last, strict=False)]
    return first[: same.index(False) if False in same else len(same)]


def _selects(terms: Sequence[str], ids: Sequence[str]) -> tuple[str, ...]:
    """What `terms` select; nothing when a candidate made from odd ids (`a=*`) is no pattern."""
    try:
        return patterns.resolve(list(terms), ids).models
    except patterns.PatternError:
        return ()


def parse_choice(text: str, options: Sequence[str]) -> str:
    """One of `options`, by its number (1-based) or its name."""
    if text.isdigit():
        if not 1 <= int(text) <= len(options):
            raise AnswerError(f"{text} is not in 1-{len(options)}")
        return options[int(text) - 1]
    if text in options:
        return text
    raise AnswerError(f"'{text}' is not one of {', '.join(options)} (or 1-{len(options)})")


def parse_yes_no(text: str) -> bool:
    """y/yes or n/no, any case."""
    answer = text.strip().lower()
    if answer in ("y", "yes", "n", "no"):
        return answer.startswith("y")
    raise AnswerError(f"'{text}': answer y or n")


DEFAULT_MODELS = "all"  # `--yes` without --models, or Enter at the question: every model


def free_name(base: str, taken: Callable[[str], bool]) -> str:
    """`base`, else `base-2`, `base-3`...: the first name not `taken` (offered as the default,
    so a refused name is never offered again)."""
    name, n = base, 1
    while taken(name):
        n += 1
        name = f"{base}-{n}"
    return name


def check_name(text: str) -> str:
    """A valid plan name (a trailing .yaml is dropped: the file is <name>.yaml)."""
    name = text.strip().removesuffix(".yaml").removesuffix(".yml")
    if not name:
        raise AnswerError("give the plan a name")
    if len(name) > NAME_MAX:
        raise AnswerError(f"'{name}' is longer than {NAME_MAX} characters")
    if not _NAME.match(name):
        raise AnswerError(f"'{name}' is not a valid plan name: use letters, digits, '_', '.' "
                          "and '-', starting with a letter or digit")
    return name


# --- presets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A number a preset asks for."""

    key: str
    question: str
    default: Any  # a number, or a list of numbers when `many`
    whole: bool = True  # integers >= 1; else numbers > 0
    many: bool = False
    maximum: float | None = None
    cap: str | None = None  # model metadata that bounds it, e.g. max_input_tokens


@dataclass(frozen=True)
class Preset:
    """A benchmark shape: the numbers it asks for, those it sets, and where they go."""

    name: str
    summary: str
    fields: tuple[Field, ...]
    fixed: Mapping[str, Any]  # written into the plan without asking
    load: tuple[str, ...]  # the keys of the benchmark's `load`
    matrix: str | None  # the key swept by the matrix
    describe: str  # the plan's description, formatted with the values

    def benchmark(self, models: tuple[str, ...], v: Mapping[str, Any]) -> dict[str, Any]:
        """The benchmark entry of the plan, for these model terms and values."""
        workload = {"endpoint": "chat", "synthetic": {"input_tokens": v["input_tokens"]},
                    "max_tokens": v["max_tokens"], "temperature": 0}
        bench = {"name": self.name, "models": models[0] if len(models) == 1 else list(models),
                 "tags": [self.name], "workload": workload, "load": {k: v[k] for k in self.load}}
        return bench | ({"matrix": {self.matrix: list(v[self.matrix])}} if self.matrix else {})


_TOKENS = 10_000_000
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("latency", "closed loop at a few concurrencies", (
        Field("concurrency", "Concurrencies", [1, 4, 16], many=True, maximum=100_000),
        Field("max_tokens", "Output tokens (max_tokens)", 256, maximum=_TOKENS,
              cap="max_output_tokens"),
        Field("input_tokens", "Input tokens", 512, maximum=_TOKENS, cap="max_input_tokens"),
        Field("requests", "Requests per job", 100, maximum=100_000_000),
    ), {}, ("requests",), "concurrency", "Closed-loop latency at concurrency {concurrency}."),
    Preset("throughput", "open-loop sweep of request rates", (
        Field("rate", "Request rates (req/s)", [1, 4, 16], whole=False, many=True),
        Field("duration_s", "Seconds per rate (duration_s)", 60, whole=False),
        Field("max_concurrency", "Max requests in flight (max_concurrency)", 256),
    ), {"input_tokens": 512, "max_tokens": 256, "arrival": "poisson"},
        ("arrival", "max_concurrency", "duration_s"), "rate",
        "Open-loop throughput at {rate} req/s."),
    Preset("long-context", "long prompts at low concurrency", (
        Field("input_tokens", "Input tokens", 32768, maximum=_TOKENS, cap="max_input_tokens"),
        Field("concurrency", "Concurrency", 1, maximum=100_000),
        Field("requests", "Requests", 20, maximum=100_000_000),
    ), {"max_tokens": 128}, ("concurrency", "requests"), None,
        "Long-context prompts of {input_tokens} tokens."),
)}


def caps_for(models: Sequence[Model]) -> dict[str, tuple[int, str]]:
    """The smallest known max_input_tokens / max_output_tokens among `models`, and whose."""
    caps: dict[str, tuple[int, str]] = {}
    for key in ("max_input_tokens", "max_output_tokens"):
        known = [(getattr(m, key), m.id) for m in models if getattr(m, key) is not None]
        if known:
            caps[key] = min(known)
    return caps


def default_for(field: Field, caps: Caps) -> Any:
    """The field's default, lowered to the models' limit when one is known."""
    cap = caps.get(field.cap) if field.cap else None
    return min(field.default, cap[0]) if cap is not None else field.default


def parse_value(field: Field, text: str, caps: Caps | None = None) -> Any:
    """A field's answer: one number, or several separated by commas or spaces."""
    parts = [p for p in re.split(r"[\s,]+", text.strip().strip("[]")) if p]
    if not parts:
        raise AnswerError("give one or more numbers" if field.many else "give a number")
    if len(parts) > 1 and not field.many:
        raise AnswerError(f"give one number, not {len(parts)}")
    values = [_number(field, p, caps or {}) for p in parts]
    for i, value in enumerate(values):
        if value in values[:i]:
            raise AnswerError(f"{parts[i]} is given twice")
    return values if field.many else values[0]


def _number(field: Field, text: str, caps: Caps) -> int | float:
    try:
        value: int | float = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    except ValueError:
        value = math.nan
    if field.whole and (not isinstance(value, int) or value < 1):
        raise AnswerError(f"'{text}' is not a whole number of at least 1")
    if not math.isfinite(value) or value <= 0:
        raise AnswerError(f"'{text}' is not a number above 0")
    if field.maximum is not None and value > field.maximum:
        raise AnswerError(f"{text} is more than {field.maximum:g}")
    cap = caps.get(field.cap) if field.cap else None
    if cap is not None and value > cap[0]:
        raise AnswerError(f"{text} is more than {cap[0]}, the {field.cap} of {cap[1]}")
    return value


# --- the plan document ----------------------------------------------------------------------


def build_plan(name: str, server: str, models: tuple[str, ...], preset: Preset,
               values: Mapping[str, Any]) -> dict[str, Any]:
    """The plan as data, ready for `render_plan`."""
    merged = {**preset.fixed, **values}
    shown = {k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in merged.items()}
    return {"version": 1, "name": name, "description": preset.describe.format(**shown),
            "inventory": {"server": server, "fallback": True},
            "benchmarks": [preset.benchmark(models, merged)]}


NOTES = {
    ("name",): "results go to results/<name>/",
    ("inventory", "server"): "--server and RUNNER_SERVER win",
    ("inventory", "fallback"): "use models.yaml, with a WARNING, when the server is down",
}


def render_plan(plan: Mapping[str, Any], schema_ref: str, header: Sequence[str] = (),
                notes: Mapping[tuple[str, ...], str] | None = None) -> str:
    """The plan as YAML text (see `render_yaml`), with the standard NOTES on its keys."""
    return render_yaml(plan, schema_ref, header, {**NOTES, **(notes or {})})


def render_yaml(data: Mapping[str, Any], schema_ref: str, header: Sequence[str] = (),
                notes: Mapping[tuple[str, ...], str] | None = None) -> str:
    """YAML text: the schema modeline, `header` as comments, then `data` with end-of-line
    comments from `notes` (keyed by mapping keys; list positions are left out)."""
    lines = [f"# yaml-language-server: $schema={schema_ref}", *(f"# {h}" for h in header)]
    lines += _block(data, notes or {}, (), 0)
    return "\n".join(lines) + "\n"


def schema_ref(plans_dir: str, schema_file: str) -> str:
    """The modeline's path: `schema_file` relative to the folder of the plan."""
    return os.path.relpath(os.path.abspath(schema_file), os.path.abspath(plans_dir)).replace(
        os.sep, "/")


def _block(data: Mapping[str, Any], notes: Mapping[tuple[str, ...], str],
           path: tuple[str, ...], indent: int) -> list[str]:
    lines: list[str] = []
    for key, value in data.items():
        at, pad = (*path, key), " " * indent
        note = f"  # {notes[at]}" if at in notes else ""
        if _inline(value, notes, at, indent + len(key)):
            lines.append(f"{pad}{key}: {_flow(value)}{note}")
        elif isinstance(value, dict):
            lines += [f"{pad}{key}:{note}", *_block(value, notes, at, indent + 2)]
        else:
            lines += [f"{pad}{key}:{note}", *_items(value, notes, at, indent + 2)]
    return lines


def _inline(value: Any, notes: Mapping[tuple[str, ...], str], at: tuple[str, ...],
            used: int) -> bool:
    """Scalars, lists of scalars and small mappings of scalars fit on the key's line."""
    if isinstance(value, dict):
        small = len(value) <= 2 and not any((*at, k) in notes for k in value)
        if not small or any(isinstance(v, dict | list) for v in value.values()):
            return False
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return False
    return used + len(_flow(value)) + 2 <= _WIDTH


def _items(values: Sequence[Any], notes: Mapping[tuple[str, ...], str], path: tuple[str, ...],
           indent: int) -> list[str]:
    lines: list[str] = []
    for value in values:
        if isinstance(value, dict):
            body = _block(value, notes, path, indent + 2)
            lines += [" " * indent + "- " + body[0].lstrip(), *body[1:]]
        else:
            lines.append(" " * indent + "- " + _flow(value))
    return lines


def _flow(value: Any) -> str:
    """One value in YAML flow style, read back the same by a YAML 1.2 loader."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    plain = _PLAIN.match(text) and plain_scalar(text) == text and text.lower() != "null"
    return text if plain else json.dumps(text, ensure_ascii=False)
