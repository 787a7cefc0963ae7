"""The JSON Schemas in schemas/: loading, validation with file positions, type look-ups."""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Any

import jsonschema
from referencing import Registry, Resource

from runner.errors import InputError, InstallationError, Problem
from runner.redaction import hide_url_credentials
from runner.yamlfile import Document, Path

SCHEMA_NAMES = ("plan", "servers", "models", "result", "lock")
_TYPE_NAMES = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}
_BOUNDS = {
    "minimum": "at least", "maximum": "at most",
    "exclusiveMinimum": "greater than", "exclusiveMaximum": "less than",
}

_SIZES = {
    "minItems": "needs at least {n} item{s}", "maxItems": "allows at most {n} item{s}",
    "minLength": "needs at least {n} character{s}", "maxLength": "allows at most {n} character{s}",
    "minProperties": "needs at least {n} key{s}", "maxProperties": "allows at most {n} key{s}",
}


def schema_dir() -> FsPath:
    """The folder of the JSON Schemas: inside the installed package (a wheel carries a copy of the
    repository's schemas/), else schemas/ beside the package (a checkout or an editable install).

    Raises InstallationError when neither exists."""
    here = FsPath(__file__).resolve().parent
    for candidate in (here / "schemas", here.parent / "schemas"):
        if (candidate / "plan.schema.json").is_file():
            return candidate
    raise InstallationError.missing("JSON Schemas (plan.schema.json)")


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema `schemas/<name>.schema.json`."""
    try:
        data: dict[str, Any] = json.loads(schema_bytes(name))
    except ValueError:
        raise InstallationError.missing(f"readable JSON Schema {name}.schema.json") from None
    return data


@functools.cache
def schema_bytes(name: str) -> bytes:
    """The schema file's bytes (cache keys change when a schema does).

    Raises InputError for an unknown name, InstallationError when the file is missing."""
    if name not in SCHEMA_NAMES:
        raise InputError(f"unknown schema '{name}'; choose one of {', '.join(SCHEMA_NAMES)}")
    try:
        return (schema_dir() / f"{name}.schema.json").read_bytes()
    except OSError:
        raise InstallationError.missing(f"JSON Schema {name}.schema.json") from None


@functools.cache
def _validator(name: str) -> Any:
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=_registry())


@functools.cache
def _registry() -> Registry:
    """Every schema by its $id, so one may refer to another (`plan.schema.json#/$defs/...`),
    as editors resolve it beside the file."""
    return Registry().with_resources(
        (load_schema(name)["$id"], Resource.from_contents(load_schema(name)))
        for name in SCHEMA_NAMES)


def validate(doc: Document, name: str) -> list[Problem]:
    """Every schema violation of `doc`, one Problem each, in document order."""
    problems: list[Problem] = []
    for error in _validator(name).iter_errors(doc.data):
        problems.extend(_describe(doc, error, name))
    return sorted(problems, key=_order)


def _order(problem: Problem) -> tuple[int, int, str]:
    return (problem.where.line or 0, problem.where.col or 0, problem.message)


def _describe(doc: Document, error: Any, name: str) -> Iterator[Problem]:
    path: Path = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        yield from _unknown_keys(doc, error, path, name)
        return
    if "propertyNames" in error.schema_path:  # the error is about a key, not a value
        message = f"key {_message(error)}"
        yield Problem(message, doc.where((*path, error.instance), key=True))
        return
    custom = error.schema.get("x-error") if isinstance(error.schema, dict) else None
    if custom and "{key}" in custom:  # a rule on keys that may not come together: at each key
        for key in _together(error):
            yield Problem(custom.replace("{key}", key), doc.where((*path, key), key=True))
        return
    yield Problem(custom or _message(error), doc.where(path))


def _together(error: Any) -> list[str]:
    """The keys a `not: {anyOf: [{required: [a, b]}, ...]}` rule refused in its instance: the
    last key of each pair the instance holds (the first is the one they may not join)."""
    pairs = ((error.schema.get("not") or {}).get("anyOf") or []) \
        if isinstance(error.instance, dict) else []
    found = [pair["required"][-1] for pair in pairs if isinstance(pair, dict)
             and all(k in error.instance for k in pair.get("required", []))]
    return list(dict.fromkeys(found))


def _unknown_keys(doc: Document, error: Any, path: Path, name: str) -> Iterator[Problem]:
    properties = error.schema.get("properties", {})
    owner = _owners().get(id(error.schema), name)  # a lock's slo is the plan schema's
    for key, value in error.instance.items():
        if key not in properties:
            hint = _key_hint(str(key), value, properties, owner)
            yield Problem(f"unknown key '{key}'{hint}", doc.where((*path, key), key=True))


@functools.cache
def _owners() -> dict[int, str]:
    """The name of the schema each subschema object belongs to (its $refs are relative to it)."""
    found: dict[int, str] = {}
    for name in SCHEMA_NAMES:
        stack: list[Any] = [load_schema(name)]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                found.setdefault(id(node), name)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return found


def _key_hint(key: str, value: Any, properties: dict[str, Any], name: str) -> str:
    """Where a misplaced key and its value belong, else the closest key, else every key."""
    root = load_schema(name)
    homes = [home for home, sub in properties.items() for base, node in _resolve(root, sub)
             if key in node.get("properties", {})
             and _validator(_name_of(base)).evolve(schema=node["properties"][key]).is_valid(value)]
    if homes:
        return f" (it belongs under {' or '.join(repr(h + ':') for h in homes)})"
    allowed = sorted(properties)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f"; allowed: {', '.join(allowed)}"


def _message(error: Any) -> str:
    kind, value, inst = error.validator, error.validator_value, error.instance
    if kind == "required":  # one error per missing key; jsonschema names it only in the text
        missing = [k for k in value if isinstance(inst, dict) and k not in inst]
        named = [k for k in missing if error.message == f"{k!r} is a required property"]
        return f"missing required key '{(named or missing or value)[0]}'"
    if kind == "type":
        wanted = value if isinstance(value, list) else [value]
        names = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in wanted)
        return f"expected {names}, got {_show(inst)}"
    if kind == "enum":
        close = difflib.get_close_matches(str(inst), [str(v) for v in value], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{_show(inst)} is not one of {', '.join(map(str, value))}{hint}"
    if kind == "const":
        return f"must be {json.dumps(value)}, got {_show(inst)}"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {value}, got {_show(inst)}"
    if kind in ("anyOf", "oneOf"):
        about = error.schema.get("description", "see the schema")
        return f"{_show(inst)} is not valid here: {about}"
    if kind == "pattern":  # patternErrorMessage: the words editors show too (VS Code's YAML/JSON)
        said = error.schema.get("patternErrorMessage", f"does not match the pattern {value}")
        return f"{_show(inst)} {said}"
    if kind in _SIZES:
        return f"{_show(inst)} {_SIZES[kind].format(n=value, s='' if value == 1 else 's')}"
    if kind == "uniqueItems":
        return f"{_show(inst)} has duplicate items"
    return str(error.message)


def _show(value: Any) -> str:
    text = hide_url_credentials(json.dumps(value, default=str))
    return text if len(text) <= 60 else text[:57] + "..."


def whole_numbers_as_int(doc: Document, name: str) -> None:
    """Make every float the schema wants as an integer an int, in place: JSON Schema's integer
    admits 4.0 (and -0.0), which Python's range() and friends refuse."""
    stack: list[tuple[Any, Path]] = [(doc.data, ())]
    while stack:
        node, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, child in items:
            if isinstance(child, dict | list):
                stack.append((child, (*path, key)))
            elif isinstance(child, float) and child.is_integer() and _integer(name, (*path, key)):
                node[key] = int(child)


def _integer(name: str, path: Path) -> bool:
    types = expected_types(name, path)
    return "integer" in types and "number" not in types


def expected_types(name: str, path: Path) -> set[str]:
    """JSON types the schema allows at `path` (empty when it does not say)."""
    root = load_schema(name)
    nodes: list[_Node] = [(root, root)]
    for part in path:
        nodes = [child for base, node in nodes for child in _children(base, node, part)]
    return {t for base, node in nodes for t in _types(base, node)}


_Node = tuple[dict[str, Any], Any]  # (the schema a subschema is in, the subschema)


def _resolve(root: dict[str, Any], node: Any) -> list[_Node]:
    """`node` with its $ref followed (into another schema for `plan.schema.json#/...`) and
    its allOf/anyOf/oneOf branches, each with the schema its own $refs are relative to."""
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        document, _, pointer = node["$ref"].partition("#")
        base = load_schema(document.removesuffix(".schema.json")) if document else root
        target: Any = base
        for part in filter(None, pointer.split("/")):
            target = target[part]
        return _resolve(base, target)
    out: list[_Node] = [(root, node)]
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key, []):
            out.extend(_resolve(root, sub))
    return out


def _children(root: dict[str, Any], node: Any, part: str | int) -> list[_Node]:
    out: list[_Node] = []
    for base, sub in _resolve(root, node):
        if isinstance(part, int):
            child = sub.get("items")
        elif part in sub.get("properties", {}):
            child = sub["properties"][part]
        else:
            child = sub.get("additionalProperties")
        if isinstance(child, dict):
            out.append((base, child))
    return out


def _types(root: dict[str, Any], node: Any) -> set[str]:
    found: set[str] = set()
    for _, sub in _resolve(root, node):
        kind = sub.get("type")
        found.update(kind if isinstance(kind, list) else [kind] if kind else [])
        for choice in sub.get("enum", []) + ([sub["const"]] if "const" in sub else []):
            found.add("string" if isinstance(choice, str) else "number")
    return found


def _name_of(schema: dict[str, Any]) -> str:
    """The name of a loaded schema (its $id ends in <name>.schema.json)."""
    return str(schema["$id"]).rsplit("/", 1)[-1].removesuffix(".schema.json")
