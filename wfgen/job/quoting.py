"""The one quoting filter every value passes through on its way into a template.

It turns Python data into YAML flow text that (1) parses back to exactly the
same value, whatever characters a string holds, and (2) is never read by Cloud
Workflows as an expression: a string that would look like `${...}` is emitted
as an expression whose whole body is a string literal, so it still evaluates to
the same text."""

from __future__ import annotations

import json
import math
from typing import Any

from wfgen.limits import MAX_EXPRESSION_CHARS

# Characters YAML may hold raw inside a double-quoted scalar without folding:
# printable, and not one of YAML's own line breaks (NEL, LS, PS) or a BOM.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_NOT_RAW = {0x85, 0x2028, 0x2029, 0xFEFF}


class QuotingError(ValueError):
    """A value that cannot be carried safely (a bug in the caller, not user error)."""


def _raw_ok(code: int) -> bool:
    if code in _NOT_RAW:
        return False
    return (0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


def yaml_string(text: str) -> str:
    """A YAML double-quoted scalar holding exactly `text`."""
    out = ['"']
    for ch in text:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
            continue
        code = ord(ch)
        if _raw_ok(code):
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:
            raise QuotingError("text holds a lone surrogate, which is not Unicode text")
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def looks_like_expression(text: str) -> bool:
    """Would Cloud Workflows evaluate this string value as an expression?"""
    return text.startswith("${") and text.endswith("}")


def expression_literal(text: str) -> str:
    """A Workflows expression string literal (JSON escapes) for `text`."""
    return json.dumps(text, ensure_ascii=True)


def quote(value: Any) -> str:
    """YAML flow text for `value`, safe as Workflows data (the template filter `q`)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuotingError(f"{value} cannot be written in a workflow")
        return repr(value)
    if isinstance(value, str):
        if looks_like_expression(value):
            expr = "${" + expression_literal(value) + "}"
            if len(expr) > MAX_EXPRESSION_CHARS + 3:
                raise QuotingError("an expression-like string longer than an expression may be")
            return yaml_string(expr)
        return yaml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(quote(v) for v in value) + "]"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise QuotingError(f"map key {key!r} is not a string")
            items.append(f"{yaml_string(key)}: {quote(item)}")
        return "{" + ", ".join(items) + "}"
    raise QuotingError(f"cannot write a {type(value).__name__} into a workflow")


def comment(text: str) -> str:
    """Text made safe for a one-line YAML comment: line breaks and control
    characters are shown escaped, everything else as it is."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES and ch not in '"\\':
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F or code in _NOT_RAW or 0x80 <= code < 0xA0:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
