"""The `text` namespace: string functions over Unicode code points.

Regular expressions: the docs specify RE2 syntax, and RE2 itself does the
matching (Google's bindings, google-re2): the syntax is exactly RE2's
(no backreferences or lookaround, \\Q...\\E, \\pL, POSIX classes), an RE2
syntax error is a ValueError, and matching runs in time linear in the text,
so no pattern can stall an execution. Texts are matched as UTF-8 and the
offsets turned back into code point indexes in one pass.

Matching all occurrences (find_all_regex, replace_all_regex) follows the docs:
leftmost matches, and of the matches starting at one index the longest. Here
"longest" is applied across the pattern's top-level alternatives (`a|ab`
matches "ab"); inside groups and for lazy quantifiers RE2's leftmost-first
choice remains. As in RE2, an empty match right after the previous match is
not reported."""

from __future__ import annotations

import codecs
import functools
import re
import urllib.parse
from typing import Any

import re2

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import type_error, want_int, want_str


class _Pattern:
    """A compiled RE2 pattern, and its top-level alternatives when there are several."""

    __slots__ = ("alternatives", "regexp")

    def __init__(self, regexp: Any, alternatives: tuple[Any, ...]) -> None:
        self.regexp = regexp
        self.alternatives = alternatives


@functools.lru_cache(maxsize=256)
def _compile(fn: str, pattern: str) -> _Pattern:
    """Compile with RE2 (linear-time matching, RE2's own syntax); errors are ValueError."""
    try:
        regexp = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise make_error(
            "ValueError", f"{fn}: invalid regular expression {pattern!r}: {exc}"
        ) from None
    return _Pattern(regexp, _alternatives(pattern))


def _regex(fn: str, pattern: Any) -> _Pattern:
    return _compile(fn, want_str(fn, "regexp", pattern))


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_GLOBAL_FLAGS = re.compile(r"\(\?[imsU]+\)")


def _top_level_branches(pattern: str) -> list[str]:
    """Split a pattern at the `|` that are outside groups and character classes."""
    branches: list[str] = []
    depth = 0
    in_class = False
    begin = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if pattern.startswith("Q", i + 1):  # \Q...\E is literal text
                end = pattern.find("\\E", i + 2)
                i = len(pattern) if end < 0 else end + 2
                continue
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif pattern.startswith("[:", i):  # [[:alpha:]] inside a class
                close = pattern.find(":]", i + 2)
                i = len(pattern) if close < 0 else close + 2
                continue
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":  # a leading "]" is a literal
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            branches.append(pattern[begin:i])
            begin = i + 1
        i += 1
    branches.append(pattern[begin:])
    return branches


def _alternatives(pattern: str) -> tuple[Any, ...]:
    """The top-level alternatives of a pattern, compiled, when there are several."""
    flags = _GLOBAL_FLAGS.match(pattern)
    prefix = flags.group(0) if flags else ""
    parts = _top_level_branches(pattern[len(prefix):])
    if len(parts) < 2:
        return ()
    try:
        return tuple(re2.compile(prefix + part, _OPTIONS) for part in parts)
    except re2.error:
        return ()


def _encode(source: str) -> bytes:
    return source.encode("utf-8", "surrogatepass")


def _byte_spans(pattern: _Pattern, data: bytes) -> list[tuple[int, int]]:
    """Byte (start, end) of every match, leftmost-longest, RE2's rule for empty matches."""
    regexp = pattern.regexp
    alternatives = pattern.alternatives
    n = len(data)
    spans: list[tuple[int, int]] = []
    pos = 0
    prev_end = -1
    while pos <= n:
        m = regexp.search(data, pos)
        if m is None:
            break
        start, end = m.span()
        for alternative in alternatives:  # the longest of the alternatives here
            other = alternative.match(data, start)
            if other is not None and other.end() > end:
                end = other.end()
        if end == pos:  # empty match where the search began
            accept = start != prev_end
            pos = _next_char(data, pos)
        else:
            accept = True
            pos = end
        prev_end = end
        if accept:
            spans.append((start, end))
    return spans


def _next_char(data: bytes, pos: int) -> int:
    """The byte offset of the code point after the one at pos (UTF-8)."""
    pos += 1
    while pos < len(data) and data[pos] & 0xC0 == 0x80:
        pos += 1
    return pos


def _spans(pattern: _Pattern, source: str) -> list[tuple[int, int]]:
    """Code point (start, end) of every match; one pass over the text, so linear."""
    data = _encode(source)
    spans = _byte_spans(pattern, data)
    if len(data) == len(source):  # ASCII: bytes are code points
        return spans
    out: list[tuple[int, int]] = []
    last_b = last_c = 0

    def chars(b: int) -> int:
        nonlocal last_b, last_c
        last_c += len(data[last_b:b].decode("utf-8", "surrogatepass"))
        last_b = b
        return last_c

    for start, end in spans:
        out.append((chars(start), chars(end)))
    return out


@builtin("text.split")
def split(rt: Any, source: Any, separator: Any) -> list[str]:
    """Substrings between the separators (leftmost, non-overlapping; empty ones
    kept); an empty separator is a ValueError."""
    want_str("text.split", "source", source)
    want_str("text.split", "separator", separator)
    if separator == "":
        raise make_error("ValueError", "text.split: separator must not be empty")
    return source.split(separator)


@builtin("text.substring")
def substring(rt: Any, source: Any, start: Any, end: Any) -> str:
    """Code points [start, end). A negative index counts from the end of the
    string; indexes outside the string are clamped to it; an empty range is ""."""
    want_str("text.substring", "source", source)
    want_int("text.substring", "start", start)
    want_int("text.substring", "end", end)
    n = len(source)
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = min(max(start, 0), n)
    end = min(max(end, 0), n)
    return source[start:end] if start < end else ""


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
    return [{"index": a, "match": source[a:b]} for a, b in _spans(pattern, source)]


@builtin("text.match_regex")
def match_regex(rt: Any, source: Any, regexp: Any) -> bool:
    """Whether the regular expression matches anywhere in source."""
    want_str("text.match_regex", "source", source)
    return _regex("text.match_regex", regexp).regexp.search(_encode(source)) is not None


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
    out: list[str] = []
    last = 0
    for start, end in _spans(pattern, source):
        out.append(source[last:start])
        out.append(repl)
        last = end
    out.append(source[last:])
    return "".join(out)


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
        info = codecs.lookup(charset)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise make_error("ValueError", f"{fn}: unsupported charset {charset!r}")
    return info.name


@builtin("text.encode")
def encode(rt: Any, text: Any, charset: Any = "UTF-8") -> bytes:
    """String to bytes in the given charset (default UTF-8)."""
    want_str("text.encode", "text", text)
    name = _codec("text.encode", charset)
    try:
        return text.encode(name)
    except UnicodeEncodeError as exc:
        raise make_error("ValueError", f"text.encode: {exc}") from None


def _one_per_byte(exc: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: one U+FFFD for each byte that does not decode."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\ufffd" * (exc.end - exc.start), exc.end


codecs.register_error("wfgen-replace-bytes", _one_per_byte)


def decode_bytes(data: bytes, codec: str = "utf-8") -> str:
    """Bytes to text; each undecodable byte becomes U+FFFD (as the docs say)."""
    return data.decode(codec, errors="wfgen-replace-bytes")


@builtin("text.decode")
def decode(rt: Any, data: Any, charset: Any = "UTF-8") -> str:
    """Bytes to string in the given charset (default UTF-8); bytes that do not
    decode become U+FFFD; only an unsupported charset is an error."""
    if not isinstance(data, (bytes, bytearray)):
        type_error("text.decode", "data", "bytes", data)
    return decode_bytes(bytes(data), _codec("text.decode", charset))


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
    """Undo percent-encoding and turn "+" into a space; the bytes are read as
    UTF-8 (a byte that does not decode becomes U+FFFD). A "%" not followed by
    two hex digits is a ValueError."""
    want_str("text.url_decode", "source", source)
    if _BAD_PERCENT.search(source):
        raise make_error("ValueError", f"text.url_decode: malformed escape in {source!r}")
    return urllib.parse.unquote_plus(source, errors="wfgen-replace-bytes")
