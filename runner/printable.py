"""Untrusted text (model ids, server messages, names read from files) made safe to show.

A model id or an error message comes from a server runner does not control. Printed raw, its
control characters act on the terminal: `\\x1b[2J` clears the screen, an OSC sequence sets the
window title or hides a link, `\\r` and a newline overwrite or forge lines (`FAKE: ok=999`),
and a bidi override reverses what follows. The same characters make an XML file unparseable.
Here every such character becomes a visible escape (`\\x1b`, `\\n`, `\\u202e`), so the text
reads as what it is, on one line, and is valid in XML 1.0.

Text that is not Unicode at all is found here too (`lone_surrogate`): a lone surrogate, from a
JSON or Jinja escape (`"\\ud800"`) or from bytes of argv that are not UTF-8, fits no file,
request or database, and crashed the first write that met it.
"""

from __future__ import annotations

from typing import Any

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object) -> str:
    """`str(text)` on one line with every character a terminal would act on escaped: C0 and C1
    controls, DEL, newlines, bidi and other format characters, line and paragraph separators,
    surrogates, private-use and unassigned code points (all that `str.isprintable` refuses,
    except the space). The result is also valid XML 1.0 character data."""
    value = str(text)
    if value.isprintable():  # the usual case, checked in C
        return value
    return "".join(c if c.isprintable() else _escape(c) for c in value)


def printable_lines(text: str) -> str:
    """`text` whose newlines are its own structure (a table, a report): each line made
    printable, the newlines kept. Use `printable` on each untrusted field first, or a field
    with a newline in it can still start a line of its own."""
    if text.isprintable():
        return text
    return "\n".join(printable(line) for line in text.split("\n"))


def lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate in `value` (a string, or lists and dicts of them, keys
    included), escaped as `\\ud800`; None when every string in it encodes as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return _escape(value[exc.start])
        return None
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else \
        value if isinstance(value, list) else ()
    return next((bad for bad in map(lone_surrogate, items) if bad is not None), None)


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
