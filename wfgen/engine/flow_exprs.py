"""Expressions written unquoted inside YAML flow collections: `[${a}, "x"]`.

Strict YAML ends a plain scalar at `{` inside `[...]` or `{...}`, so
`args: [${myVar}, "ERROR"]` is not valid YAML; Google's reader accepts it and
its reference shows it (reference/stdlib/sys/log, "argsList"). wfgen loads
the file as written first; only when the YAML reader stops at a `{` right
after a `$` that starts a scalar in a flow collection is that `${...}` (braces
balanced, string literals inside it respected) turned into a single-quoted
scalar on the same line, the next such spot found by libyaml's C parser (a
few milliseconds a pass), and the file read strictly again at the end.
Everything else about the YAML stays strict, and a file that needs no such
help is read exactly once."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from wfgen import limits, yamlload

# Each quoted expression costs one pass of the C parser over the file: at most
# this many characters read in all (so at least 32 expressions in a 128 KB
# file, about a second), and none for a file over the source limit (refused
# anyway). Past the bound the file's YAML error stands.
REWRITE_BUDGET_CHARS = 4_000_000
MAX_REWRITES = 1000


def load(text: str) -> Any:
    """yamlload.load, accepting unquoted `${...}` items in flow collections."""
    try:
        return yamlload.load(text)  # the one read of every file that needs no help
    except MarkedYAMLError as exc:
        error = exc
    if len(text) > limits.MAX_SOURCE_BYTES:
        raise error
    for _ in range(min(MAX_REWRITES, max(32, REWRITE_BUDGET_CHARS // max(len(text), 1)))):
        # the C parser finds the next spot in milliseconds; the strict reader
        # (slower, but the one whose verdict counts) decides when it sees none
        fixed = _quote_expression_at(text, _fast_error_offset(text))
        if fixed is None:
            try:
                return yamlload.load(text)
            except MarkedYAMLError as exc:
                error = exc
                mark = exc.problem_mark
                fixed = _quote_expression_at(text, mark.index if mark is not None else -1)
                if fixed is None:
                    raise  # the file's own problem (quoting never makes one)
        text = fixed
    raise error


_FAST = YAML(typ="safe", pure=False)  # libyaml through ruamel.yaml.clib


def _fast_error_offset(text: str) -> int:
    """Character offset where the C parser stops reading text, or -1."""
    try:
        for _event in _FAST.parse(text):
            pass
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        if mark is None:
            return -1
        lines = text.split("\n")
        if mark.line >= len(lines):
            return -1
        return sum(len(x) + 1 for x in lines[:mark.line]) + mark.column
    except Exception:  # any other refusal: leave the verdict to the strict reader
        return -1
    return -1


def _quote_expression_at(text: str, brace: int) -> str | None:
    """text with the `${...}` whose `{` is at index `brace` single-quoted, or
    None when that `{` does not open an expression that starts a scalar."""
    if not (0 < brace < len(text)) or text[brace] != "{" or text[brace - 1] != "$":
        return None
    before = text[:brace - 1].rstrip()
    if not before or before[-1] not in "[,{:":
        return None
    end = _closing_brace(text, brace)
    if end is None:
        return None
    expression = text[brace - 1:end + 1]
    if "\n" in expression:
        return None  # keep line numbers exact: only one-line expressions
    quoted = "'" + expression.replace("'", "''") + "'"
    return text[:brace - 1] + quoted + text[end + 1:]


def _closing_brace(text: str, brace: int) -> int | None:
    """Index of the `}` that closes the `{` at `brace` (string literals skipped)."""
    depth = 0
    quote = ""
    i = brace
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        elif ch == "\n":
            return None
        i += 1
    return None
