"""JSON that remembers where every value came from, as yamlfile does for YAML: plan locks are
JSON, and their problems are reported at file:line:col like a plan's.

The data is read by the json module; a second pass over the same text records the position of
every value and key (PyYAML cannot: it refuses long keys and surrogate escapes, which
`json.dumps` writes for any character outside the BMP)."""

from __future__ import annotations

import bisect
import json
import math
import re
from typing import Any

from runner.errors import InputError, Location
from runner.printable import lone_surrogate
from runner.yamlfile import Document, Path, format_path

MAX_DEPTH = 64
_SPACE = re.compile(r"[ \t\n\r]*")
_LITERAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null"
                      r"|NaN|-?Infinity")


class _NotFinite(str):
    """NaN, Infinity or a number too large for a float, kept as its text until it is located."""


def load_json_text(text: str, file: str) -> Document:
    """Parse JSON text into a Document with positions. Syntax errors, duplicate keys, nesting
    deeper than MAX_DEPTH and non-finite numbers (NaN, Infinity, 1e999) raise InputError at
    their line and column."""
    try:
        data = json.loads(text, parse_constant=_NotFinite, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", Location(file, exc.lineno, exc.colno)) \
            from None
    except RecursionError:
        raise InputError(f"JSON nested more than {MAX_DEPTH} levels deep", Location(file)) \
            from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"invalid JSON: {exc}", Location(file)) from None
    doc = Document(file, data)
    _Positions(doc, text).value(_SPACE.match(text, 0).end(), ())  # type: ignore[union-attr]
    _refuse_not_finite(doc, data, ())
    return doc


def _float(text: str) -> float | _NotFinite:
    number = float(text)
    return number if math.isfinite(number) else _NotFinite(text)


def _refuse_not_finite(doc: Document, value: Any, path: Path) -> None:
    if isinstance(value, _NotFinite):
        raise InputError(f"{value} is not a finite number: give a real value (e.g. 10 or 0.5); "
                         "NaN and infinity cannot be measured against", doc.where(path))
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, child in items:
        _refuse_not_finite(doc, child, (*path, key))


def _refuse_surrogate(text: str, where: Location) -> None:
    bad = lone_surrogate(text)
    if bad is not None:
        raise InputError(f"the string holds {bad}, half of a surrogate pair, which no file or "
                         "request can carry: write the character itself, or both halves", where)


class _Positions:
    """Walks valid JSON text, recording the (line, col) of every value and key in `doc`."""

    def __init__(self, doc: Document, text: str) -> None:
        self.doc, self.text = doc, text
        self.lines = [0] + [m.end() for m in re.finditer("\n", text)]

    def pos(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.lines, index)
        return line, index - self.lines[line - 1] + 1

    def value(self, i: int, path: Path) -> int:
        """Record the value starting at `i`; returns the index after it (and its spaces)."""
        self.doc.values[path] = self.pos(i)
        if len(path) > MAX_DEPTH:
            raise InputError(f"JSON nested more than {MAX_DEPTH} levels deep", self.doc.where(path))
        char = self.text[i]
        if char == "{":
            end = self._object(self._skip(i + 1), path)
        elif char == "[":
            end = self._array(self._skip(i + 1), path)
        elif char == '"':
            string, end = json.decoder.scanstring(self.text, i + 1)  # type: ignore[attr-defined]
            _refuse_surrogate(string, self.doc.where(path))
        else:
            end = _LITERAL.match(self.text, i).end()  # type: ignore[union-attr]
        return self._skip(end)

    def _object(self, i: int, path: Path) -> int:
        first: dict[str, int] = {}
        while self.text[i] != "}":
            key, after = json.decoder.scanstring(self.text, i + 1)  # type: ignore[attr-defined]
            if key in first:
                where = Location(self.doc.file, *self.pos(i), format_path((*path, key)))
                line = self.pos(first[key])[0]
                raise InputError(f"duplicate key '{key}' (first defined on line {line})", where)
            first[key] = i
            self.doc.keys[(*path, key)] = self.pos(i)
            _refuse_surrogate(key, Location(self.doc.file, *self.pos(i), format_path((*path, key))))
            i = self.value(self._skip(self._skip(after) + 1), (*path, key))  # past the ':'
            i = self._skip(i + 1) if self.text[i] == "," else i
        return i + 1

    def _array(self, i: int, path: Path) -> int:
        index = 0
        while self.text[i] != "]":
            i = self.value(i, (*path, index))
            i = self._skip(i + 1) if self.text[i] == "," else i
            index += 1
        return i + 1

    def _skip(self, i: int) -> int:
        return _SPACE.match(self.text, i).end()  # type: ignore[union-attr]
