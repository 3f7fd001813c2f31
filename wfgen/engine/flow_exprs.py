"""Expressions written unquoted inside YAML flow collections: `[${a}, "x"]`.

Strict YAML ends a plain scalar at `{` inside `[...]` or `{...}`, so
`args: [${myVar}, "ERROR"]` is not valid YAML; Google's reader accepts it and
its reference shows it (reference/stdlib/sys/log, "argsList"). wfgen loads
the file as written first; only when the YAML reader stops at a `{` right
after a `$` that starts a scalar in a flow collection is that one `${...}`
(braces balanced, string literals inside it respected) turned into a
single-quoted scalar, and the file read again. Everything else about the YAML
stays strict, and a file that needs no such help is read exactly once (one
more read per expression so quoted, at most 32)."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.error import MarkedYAMLError

from wfgen import limits, yamlload

# each rewrite costs one more read of the file: at most this many, and none for
# a file over the source limit (refused anyway); past it the first error stands
MAX_REWRITES = 32


def load(text: str) -> Any:
    """yamlload.load, accepting unquoted `${...}` items in flow collections."""
    first: MarkedYAMLError | None = None
    for _ in range(MAX_REWRITES):
        try:
            return yamlload.load(text)
        except MarkedYAMLError as exc:
            first = first or exc
            mark = exc.problem_mark
            fixed = None
            if mark is not None and len(text) <= limits.MAX_SOURCE_BYTES:
                fixed = _quote_expression_at(text, mark.index)
            if fixed is None:
                raise  # the file's own next problem (quoting never makes one)
            text = fixed
    try:
        return yamlload.load(text)
    except MarkedYAMLError:
        assert first is not None
        raise first from None


def _quote_expression_at(text: str, brace: int) -> str | None:
    """text with the `${...}` whose `{` is at index `brace` single-quoted, or
    None when that `{` does not open an expression that starts a scalar."""
    if not (0 < brace < len(text)) or text[brace] != "{" or text[brace - 1] != "$":
        return None
    before = text[:brace - 1].rstrip(" \t")
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
