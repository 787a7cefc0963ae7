"""Safe YAML loading that remembers where every value came from."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from runner.defaults import MAX_DOCUMENT_BYTES
from runner.errors import InputError, Location
from runner.inputfile import read_input
from runner.yamlhints import quote_hint

Path = tuple[str | int, ...]

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_MAX_DEPTH = 64
_MAX_ALIAS_VALUES = 100_000  # values copied through aliases (stops "billion laughs" documents)
_TAG = "tag:yaml.org,2002:"
_COLLECTION_TAGS = {_TAG + "map", _TAG + "seq"}
_Pair = tuple[yaml.Node, yaml.Node]  # (key node, value node)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader with YAML 1.2 core-schema tag resolution instead of YAML 1.1's."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {
        None: [(_TAG + "null", _NULL), (_TAG + "bool", _BOOL), (_TAG + "int", _INT),
               (_TAG + "float", _FLOAT), (_TAG + "merge", re.compile(r"^<<$"))],
        "": [(_TAG + "null", _NULL)],
    }


def _to_int(value: str) -> int:
    if not _INT.match(value):
        raise ValueError(value)
    return int(value, 0) if value[:2] in ("0o", "0x") else int(value)


def _to_float(value: str) -> float:
    if _INT.match(value):
        return float(_to_int(value))
    if not _FLOAT.match(value):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):  # a value too large for a float reads as inf too
        raise ValueError(value)
    return number


def _to_bool(value: str) -> bool:
    if not _BOOL.match(value):
        raise ValueError(value)
    return value.lower() == "true"


def _to_null(value: str) -> None:
    if not _NULL.match(value):
        raise ValueError(value)


def plain_scalar(text: str) -> Any:
    """`text` as a YAML 1.2 plain scalar: an int, float or bool when it reads as one."""
    for convert in (_to_int, _to_float, _to_bool):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


_SCALARS: dict[str, Any] = {
    _TAG + "str": str, _TAG + "int": _to_int, _TAG + "float": _to_float,
    _TAG + "bool": _to_bool, _TAG + "null": _to_null,
}


@dataclass
class Document:
    """Parsed YAML data plus the 1-based (line, col) of every value and mapping key."""

    file: str
    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path, *, key: bool = False) -> Location:
        """The location of `path`, or of its nearest ancestor that has one."""
        table = self.keys if key and path in self.keys else self.values
        probe = path
        while probe not in table and probe:
            probe = probe[:-1]
        line, col = table.get(probe, (1, 1))
        return Location(self.file, line, col, format_path(path))


def format_path(path: Path) -> str:
    """`("benchmarks", 1, "load")` -> `$.benchmarks[1].load`."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def load_text(text: str, file: str) -> Document:
    """Parse one YAML document; duplicate keys, tags and syntax errors raise InputError."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise InputError(_yaml_message(exc, text), _mark_location(exc, file)) from None
    doc = Document(file, None)
    if node is not None:
        doc.data = _Builder(doc, text).build(node, ())
    return doc


def load_file(path: str) -> Document:
    """Read and parse a YAML file; a missing or unreadable file is an InputError."""
    try:
        text = read_input(path, "a YAML file", MAX_DOCUMENT_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    return load_text(text, path)


def _yaml_message(exc: yaml.YAMLError, text: str) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"invalid YAML: {exc}"
    message = "invalid YAML: " + ", ".join(p for p in (exc.context, exc.problem) if p)
    for mark in (exc.problem_mark, exc.context_mark):
        hint = mark and quote_hint(text, mark.line + 1, mark.column + 1)
        if hint:
            return f"{message}: {hint}"
    return message


def _mark_location(exc: yaml.YAMLError, file: str) -> Location:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return Location(file)
    return Location(file, mark.line + 1, mark.column + 1)


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Turns a composed node tree into plain data, recording positions on the way."""

    def __init__(self, doc: Document, text: str) -> None:
        self.doc = doc
        self.text = text
        self.active: set[int] = set()
        self.built: set[int] = set()
        self.copies = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.doc.values[path] = _pos(node)
        if id(node) in self.active:
            raise InputError("recursive YAML alias", self.doc.where(path))
        if len(path) > _MAX_DEPTH:
            raise InputError(f"YAML nested more than {_MAX_DEPTH} levels deep",
                             self.doc.where(path))
        self._count(node, path)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            raise self._unsupported_tag(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            assert isinstance(node, yaml.ScalarNode)
            return self._scalar(node, path)
        finally:
            self.active.discard(id(node))

    def _count(self, node: yaml.Node, path: Path) -> None:
        """A node built a second time is a copy made by an alias; too many is an attack."""
        if id(node) not in self.built:
            self.built.add(id(node))
            return
        self.copies += 1
        if self.copies > _MAX_ALIAS_VALUES:
            message = f"YAML aliases expand to more than {_MAX_ALIAS_VALUES} values"
            raise InputError(message, self.doc.where(path))

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        """Plain scalars were resolved by YAML 1.2 core rules; explicit tags must fit."""
        convert = _SCALARS.get(node.tag)
        if convert is None:
            raise self._unsupported_tag(node, path)
        if node.tag == _TAG + "null" and not node.value and not node.style:
            self._check_bare_anchor(node, path)
        try:
            return convert(node.value)
        except ValueError:
            message = f"{node.value!r} is not a valid {node.tag}"
            if node.tag == _TAG + "float" and _FLOAT.match(node.value):
                message = (f"{node.value} is not a finite number: give a real value "
                           "(e.g. 10 or 0.5); NaN and infinity cannot be measured against")
            raise InputError(message, self.doc.where(path)) from None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, (key_node, value_node) in self._pairs(node, path, {id(node)}).items():
            self.doc.keys[(*path, key)] = _pos(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _pairs(self, node: yaml.MappingNode, path: Path, merging: set[int]) -> dict[str, _Pair]:
        """Key -> (key node, value node): merged (`<<`) pairs first, then own pairs, which win.

        Duplicate own keys are errors; `merging` holds the mappings being merged (no cycles)."""
        sources: list[yaml.Node] = []
        own: dict[str, _Pair] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                is_list = isinstance(value_node, yaml.SequenceNode)
                sources.extend(value_node.value if is_list else [value_node])
                continue
            key = self._key(key_node, path)
            if key in own:
                first = own[key][0].start_mark.line + 1
                where = Location(self.doc.file, *_pos(key_node), format_path((*path, key)))
                raise InputError(f"duplicate key '{key}' (first defined on line {first})", where)
            own[key] = (key_node, value_node)
        return {**self._merged(sources, path, merging), **own}

    def _merged(self, sources: list[yaml.Node], path: Path, merging: set[int]) -> dict[str, _Pair]:
        """The pairs of every merge source; earlier sources win, as in YAML's merge spec."""
        pairs: dict[str, _Pair] = {}
        for source in sources:
            where = Location(self.doc.file, *_pos(source), format_path(path))
            if not isinstance(source, yaml.MappingNode) or source.tag not in _COLLECTION_TAGS:
                raise InputError("a merge key (<<) needs a mapping or a list of mappings", where)
            if id(source) in merging:
                raise InputError("recursive YAML alias in a merge key (<<)", where)
            for key, pair in self._pairs(source, path, merging | {id(source)}).items():
                pairs.setdefault(key, pair)
        return pairs

    def _key(self, node: yaml.Node, path: Path) -> str:
        if not isinstance(node, yaml.ScalarNode):
            where = Location(self.doc.file, *_pos(node), format_path(path))
            raise self._error("mapping keys must be plain strings", node, where, hint=True)
        return str(node.value)

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def _unsupported_tag(self, node: yaml.Node, path: Path) -> InputError:
        local = node.tag.startswith("!")  # `!*-FP8`: a pattern, not one of YAML's own tags
        message = f"unsupported YAML tag {node.tag}"
        return self._error(message, node, self.doc.where(path), hint=local)

    def _check_bare_anchor(self, node: yaml.ScalarNode, path: Path) -> None:
        """`models: &Coder` is an anchor on an empty value: the user meant an `&` term."""
        line, col = _pos(node)
        if self.lines[line - 1:line] and self.lines[line - 1][col - 1:col] == "&":
            raise self._error("YAML anchor with no value", node, self.doc.where(path), hint=True)

    def _error(self, message: str, node: yaml.Node, where: Location, *,
               hint: bool) -> InputError:
        """An error at `where`, with the fix when the text at `node` was meant as a pattern
        or a template."""
        fix = quote_hint(self.text, *_pos(node)) if hint else None
        return InputError(f"{message}: {fix}" if fix else message, where)
