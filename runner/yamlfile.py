"""Safe YAML loading that remembers where every value came from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from runner.errors import InputError, Location

Path = tuple[str | int, ...]

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOAT = {".inf": float("inf"), "-.inf": float("-inf"), ".nan": float("nan")}
_MAX_DEPTH = 64
_RESOLVER = yaml.resolver.Resolver()
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_EXPLICIT: dict[str, Any] = {
    "tag:yaml.org,2002:str": str,
    "tag:yaml.org,2002:int": int,
    "tag:yaml.org,2002:float": float,
    "tag:yaml.org,2002:bool": lambda v: {"true": True, "false": False}[v.lower()],
    "tag:yaml.org,2002:null": lambda v: None,
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
        raise InputError(_yaml_message(exc), _mark_location(exc, file)) from None
    doc = Document(file, None)
    if node is not None:
        doc.data = _Builder(doc).build(node, ())
    return doc


def load_file(path: str) -> Document:
    """Read and parse a YAML file; a missing or unreadable file is an InputError."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    return load_text(text, path)


def _yaml_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [exc.context, exc.problem]
        return "invalid YAML: " + ", ".join(p for p in parts if p)
    return f"invalid YAML: {exc}"


def _mark_location(exc: yaml.YAMLError, file: str) -> Location:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return Location(file)
    return Location(file, mark.line + 1, mark.column + 1)


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Turns a composed node tree into plain data, recording positions on the way."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.active: set[int] = set()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.doc.values[path] = _pos(node)
        if id(node) in self.active or len(path) > _MAX_DEPTH:
            raise InputError("recursive YAML alias", self.doc.where(path))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            raise InputError(f"unsupported YAML tag {node.tag}", self.doc.where(path))
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

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        value: str = node.value
        if node.style:  # quoted or block scalars are always strings
            return value
        implicit = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
        if node.tag == implicit:
            return _implicit_value(value)
        explicit = _EXPLICIT.get(node.tag)
        if explicit is None:
            raise InputError(f"unsupported YAML tag {node.tag}", self.doc.where(path))
        try:
            return explicit(value)
        except ValueError:
            raise InputError(f"{value!r} is not a valid {node.tag}", self.doc.where(path)) from None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in self._pairs(node, path):
            key = self._key(key_node, path)
            self.doc.keys.setdefault((*path, key), _pos(key_node))
            out[key] = self.build(value_node, (*path, key))
        return out

    def _pairs(self, node: yaml.MappingNode, path: Path) -> list[tuple[yaml.Node, yaml.Node]]:
        """Own pairs after merged (`<<`) ones, so own keys win; duplicate own keys are errors."""
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.extend(self._merge_source(value_node, path))
                continue
            key = getattr(key_node, "value", None)
            if key in seen:
                first = seen[key].start_mark.line + 1
                where = Location(self.doc.file, *_pos(key_node), format_path((*path, str(key))))
                raise InputError(f"duplicate key '{key}' (first defined on line {first})", where)
            seen[key] = key_node
            own.append((key_node, value_node))
        return merged + own

    def _merge_source(self, node: yaml.Node, path: Path) -> list[tuple[yaml.Node, yaml.Node]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for source in reversed(sources):  # earlier sources win, as in YAML's merge spec
            if not isinstance(source, yaml.MappingNode):
                raise InputError("a merge key (<<) needs a mapping or a list of mappings",
                                 Location(self.doc.file, *_pos(source), format_path(path)))
            pairs.extend(self._pairs(source, path))
        return pairs

    def _key(self, node: yaml.Node, path: Path) -> str:
        if not isinstance(node, yaml.ScalarNode):
            where = Location(self.doc.file, *_pos(node), format_path(path))
            raise InputError("mapping keys must be plain strings", where)
        return str(node.value)


def _implicit_tag(value: str) -> str:
    if _NULL.match(value):
        return "null"
    if _BOOL.match(value):
        return "bool"
    if _INT.match(value):
        return "int"
    if _FLOAT.match(value) or value.lower() in _SPECIAL_FLOAT:
        return "float"
    return "str"


def _implicit_value(value: str) -> Any:
    """YAML 1.2 core schema: `yes`/`on`/dates stay strings (no Norway problem)."""
    tag = _implicit_tag(value)
    if tag == "null":
        return None
    if tag == "bool":
        return value.lower() == "true"
    if tag == "int":
        return int(value)
    if tag == "float":
        return _SPECIAL_FLOAT.get(value.lower()) or float(value)
    return value
