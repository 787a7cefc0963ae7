"""The fix for YAML that was meant as a model pattern or a template: quote the value.

runner's own syntax invites these slips: `*Coder*` reads as an alias, `!*-FP8` as a tag,
`&term` as an anchor, `@group` is reserved, and `{{ var }}` is a mapping inside a mapping.
"""

from __future__ import annotations

_TEMPLATE_STARTS = ("{{", "{%", "{#")
_WHY = {
    "*": "YAML reads a value that starts with * as an alias",
    "&": "YAML reads a value that starts with & as an anchor",
    "!": "YAML reads a value that starts with ! as a tag",
    "@": "YAML does not allow a plain value to start with @",
    "`": "YAML does not allow a plain value to start with `",
    "%": "YAML does not allow a plain value to start with %",
}
_TEMPLATE_WHY = "YAML reads an unquoted template as a mapping"
_OPENERS = ":-?[{,"  # what a value follows on its line


def quote_hint(text: str, line: int, col: int) -> str | None:
    """`<why>; quote it: <the fixed line>` for the value at or before 1-based `line:col`
    that YAML took for an alias, anchor, tag, reserved character or mapping; else None."""
    source = _source_line(text, line)
    start = _token_start(source, col - 1)
    if start is None:
        return None
    token = source[start:_token_end(source, start)].rstrip()
    fixed = source[:start] + _quoted(token) + source[start + len(token):]
    return f"{_why(token)}; quote it: {fixed.strip()}"


def starts_like_yaml_syntax(token: str) -> bool:
    """Whether a plain value with this text would not be read as text."""
    return token[:1] in _WHY or token.startswith(_TEMPLATE_STARTS)


def _source_line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 1 <= line <= len(lines) else ""


def _token_start(source: str, col: int) -> int | None:
    """The last value start at or before `col` whose text YAML would not read as text
    (a value inside another one, as `%` in `{% if %}`, does not count)."""
    found, i = None, 0
    while i <= min(col, len(source) - 1):
        if starts_like_yaml_syntax(source[i:]) and _begins_value(source, i):
            found, i = i, _token_end(source, i)
        else:
            i += 1
    return found


def _begins_value(source: str, i: int) -> bool:
    before = source[:i]
    head = before.rstrip()
    if not head:
        return True
    spaced = len(head) < len(before)
    return head[-1] in "[{," or (head[-1] in _OPENERS and spaced)


def _token_end(source: str, start: int) -> int:
    """The end of the value: the line's end or a comment, or in a flow collection the `,`,
    `]` or `}` that closes it."""
    flow = _depth(source[:start]) > 0
    depth = 0
    for i in range(start, len(source)):
        char = source[i]
        if char == "#" and i > start and source[i - 1] in " \t":
            return i
        if char in "[{":
            depth += 1
        elif char in "]}" and depth:
            depth -= 1
        elif flow and char in ",]}":
            return i
    return len(source)


def _depth(text: str) -> int:
    return sum(text.count(c) for c in "[{") - sum(text.count(c) for c in "]}")


def _quoted(token: str) -> str:
    if '"' in token or "\\" in token:
        return "'" + token.replace("'", "''") + "'"
    return f'"{token}"'


def _why(token: str) -> str:
    return _TEMPLATE_WHY if token.startswith(_TEMPLATE_STARTS) else _WHY[token[0]]
