"""The `text` namespace: string functions over Unicode code points.

Regular expressions: the docs specify RE2 syntax. Python's `re` is used with
re.ASCII (RE2's \\d, \\w, \\s and \\b are ASCII-only). Differences that remain:
RE2 rejects backreferences and lookaround, so we reject them too (ValueError);
RE2's \\pL / \\p{Greek} classes and POSIX [[:alpha:]] classes are not
supported by `re` (they raise ValueError here); where alternatives match at the
same position, Python picks the first alternative while the docs describe
leftmost-longest for find_all_regex / replace_all_regex."""

from __future__ import annotations

import codecs
import functools
import re
import urllib.parse
from typing import Any

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import type_error, want_int, want_str

_UNSUPPORTED_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=")


@functools.lru_cache(maxsize=256)
def _compile(fn: str, pattern: str) -> re.Pattern[str]:
    """Compile an RE2-syntax pattern with `re`, refusing what RE2 refuses."""
    if _UNSUPPORTED_RE2.search(pattern):
        raise make_error(
            "ValueError", f"{fn}: invalid regular expression (RE2 syntax): {pattern!r}"
        )
    try:
        return re.compile(pattern, re.ASCII)
    except re.error as exc:
        raise make_error(
            "ValueError", f"{fn}: invalid regular expression {pattern!r}: {exc}"
        ) from None


def _regex(fn: str, pattern: Any) -> re.Pattern[str]:
    return _compile(fn, want_str(fn, "regexp", pattern))


@builtin("text.split")
def split(rt: Any, source: Any, separator: Any) -> list[str]:
    """Split at every separator; an empty separator splits into code points."""
    want_str("text.split", "source", source)
    want_str("text.split", "separator", separator)
    if separator == "":
        return list(source)
    return source.split(separator)


@builtin("text.substring")
def substring(rt: Any, source: Any, start: Any, end: Any) -> str:
    """Code points [start, end); indexes are clamped into the string, an empty
    range gives "" (never negative-from-the-end as in Python slicing)."""
    want_str("text.substring", "source", source)
    want_int("text.substring", "start", start)
    want_int("text.substring", "end", end)
    n = len(source)
    start = min(max(start, 0), n)
    end = min(max(end, 0), n)
    if start >= end:
        return ""
    return source[start:end]


@builtin("text.find_all")
def find_all(rt: Any, source: Any, substr: Any) -> list[int]:
    """Indexes of the non-overlapping occurrences, leftmost first."""
    want_str("text.find_all", "source", source)
    want_str("text.find_all", "substr", substr)
    found: list[int] = []
    step = len(substr) or 1
    at = source.find(substr)
    while at != -1:
        found.append(at)
        nxt = at + step
        if nxt > len(source):
            break
        at = source.find(substr, nxt)
    return found


@builtin("text.find_all_regex")
def find_all_regex(rt: Any, source: Any, regexp: Any) -> list[dict[str, Any]]:
    """Every match as {"index": int, "match": str}, sorted by index."""
    want_str("text.find_all_regex", "source", source)
    pattern = _regex("text.find_all_regex", regexp)
    return [{"index": m.start(), "match": m.group(0)} for m in pattern.finditer(source)]


@builtin("text.match_regex")
def match_regex(rt: Any, source: Any, regexp: Any) -> bool:
    """Whether the regular expression matches anywhere in source."""
    want_str("text.match_regex", "source", source)
    return _regex("text.match_regex", regexp).search(source) is not None


@builtin("text.replace_all")
def replace_all(rt: Any, source: Any, substr: Any, repl: Any) -> str:
    """Replace every non-overlapping occurrence (an empty substr matches between
    all code points, k+1 replacements)."""
    want_str("text.replace_all", "source", source)
    want_str("text.replace_all", "substr", substr)
    want_str("text.replace_all", "repl", repl)
    return source.replace(substr, repl)


@builtin("text.replace_all_regex")
def replace_all_regex(rt: Any, source: Any, regexp: Any, repl: Any) -> str:
    """Replace every match with `repl` taken literally (no backreferences)."""
    want_str("text.replace_all_regex", "source", source)
    want_str("text.replace_all_regex", "repl", repl)
    pattern = _regex("text.replace_all_regex", regexp)
    return pattern.sub(lambda _m: repl, source)


@builtin("text.to_lower")
def to_lower(rt: Any, source: Any) -> str:
    """Lower-case copy."""
    return want_str("text.to_lower", "source", source).lower()


@builtin("text.to_upper")
def to_upper(rt: Any, source: Any) -> str:
    """Upper-case copy."""
    return want_str("text.to_upper", "source", source).upper()


def _codec(fn: str, charset: Any) -> str:
    want_str(fn, "charset", charset)
    try:
        return codecs.lookup(charset).name
    except LookupError:
        raise make_error("ValueError", f"{fn}: unknown charset {charset!r}") from None


@builtin("text.encode")
def encode(rt: Any, text: Any, charset: Any = "UTF-8") -> bytes:
    """String to bytes in the given charset (default UTF-8)."""
    want_str("text.encode", "text", text)
    name = _codec("text.encode", charset)
    try:
        return text.encode(name)
    except UnicodeEncodeError as exc:
        raise make_error("ValueError", f"text.encode: {exc}") from None


@builtin("text.decode")
def decode(rt: Any, data: Any, charset: Any = "UTF-8") -> str:
    """Bytes to string in the given charset (default UTF-8); invalid input is a ValueError."""
    if not isinstance(data, (bytes, bytearray)):
        type_error("text.decode", "data", "bytes", data)
    name = _codec("text.decode", charset)
    try:
        return bytes(data).decode(name)
    except UnicodeDecodeError as exc:
        raise make_error("ValueError", f"text.decode: {exc}") from None


@builtin("text.url_encode")
def url_encode(rt: Any, source: Any) -> str:
    """Percent-encode all but letters, digits and ".-_" (space -> %20, "~" -> %7E)."""
    text = want_str("text.url_encode", "source", source)
    return urllib.parse.quote(text, safe="").replace("~", "%7E")


@builtin("text.url_encode_plus")
def url_encode_plus(rt: Any, source: Any) -> str:
    """Like url_encode, but a space becomes "+" (form encoding)."""
    text = want_str("text.url_encode_plus", "source", source)
    return urllib.parse.quote_plus(text, safe="").replace("~", "%7E")


_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@builtin("text.url_decode")
def url_decode(rt: Any, source: Any) -> str:
    """Undo percent-encoding; a malformed escape or non-UTF-8 result is a ValueError.
    "+" is kept as is (it is only a space in form encoding)."""
    want_str("text.url_decode", "source", source)
    if _BAD_PERCENT.search(source):
        raise make_error("ValueError", f"text.url_decode: malformed escape in {source!r}")
    try:
        return urllib.parse.unquote(source, errors="strict")
    except UnicodeDecodeError as exc:
        raise make_error("ValueError", f"text.url_decode: {exc}") from None
