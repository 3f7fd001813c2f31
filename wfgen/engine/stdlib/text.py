"""The `text` namespace: string functions over Unicode code points.

Regular expressions: the docs specify RE2 syntax. Python's `re` is used with
re.ASCII (RE2's \\d, \\w, \\s and \\b are ASCII-only). Differences that remain:
RE2 rejects backreferences and lookaround, so we reject them too (ValueError);
RE2 constructs that Python spells differently are rewritten (\\Q...\\E,
\\z, (?<name>...), POSIX [[:alpha:]] classes); RE2's Unicode classes \\pL /
\\p{Greek} have no `re` equivalent and raise ValueError here.

Matching all occurrences (find_all_regex, replace_all_regex) follows the docs:
leftmost matches, and of the matches starting at one index the longest. Here
"longest" is applied across the pattern's top-level alternatives (`a|ab`
matches "ab"); inside groups and for lazy quantifiers Python's first-match
choice remains. As in RE2, an empty match right after the previous match is
not reported."""

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
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_CLASS = re.compile(r"\[:(\w+):\]")
_FLAG_GROUP = re.compile(r"\(\?([imsU]*(?:-[imsU]+)?)\)")


class _RE2SyntaxError(Exception):
    """A construct RE2 rejects (so the builtin raises ValueError)."""


def _posix_class(m: re.Match[str]) -> str:
    ranges = _POSIX_CLASSES.get(m.group(1))
    if ranges is None:
        raise _RE2SyntaxError(m.group(0))
    return ranges


def _translate_re2(pattern: str) -> str:
    """Rewrite the RE2 constructs that Python spells differently: \\Q...\\E
    literals, \\z, named groups (?<name>...), POSIX [[:alpha:]] classes, and
    flags set in mid-pattern ((?i) there applies to the rest of the enclosing
    group, which Python spells as a scoped group (?i:...)). \\Z and the
    ungreedy flag U have no equivalent and are refused."""
    out: list[str] = []
    scoped: list[list[str]] = [[]]  # per open group: its scoped-flag groups
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            if nxt == "z":
                out.append("\\Z")
            elif nxt == "Z":
                raise _RE2SyntaxError("\\Z")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            j = i + 1
            if pattern[j : j + 1] == "^":
                j += 1
            if pattern[j : j + 1] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\":
                    j += 2
                elif pattern.startswith("[:", j):
                    close = pattern.find(":]", j + 2)
                    j = n if close < 0 else close + 2
                else:
                    j += 1
            out.append(_POSIX_CLASS.sub(_posix_class, pattern[i : j + 1]))
            i = j + 1
            continue
        if c == "(":
            flags = _FLAG_GROUP.match(pattern, i)
            if flags:
                if "U" in flags.group(1):
                    raise _RE2SyntaxError("the U (ungreedy) flag")
                if i == 0 and "-" not in flags.group(1):
                    out.append(flags.group(0))  # leading global flags: same in re
                else:
                    out.append(f"(?{flags.group(1)}:")
                    scoped[-1].append(flags.group(1))
                i = flags.end()
                continue
            scoped.append([])
            if pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
                out.append("(?P<")
                i += 3
                continue
        elif c == ")" and len(scoped) > 1:
            out.append(")" * len(scoped.pop()))
        elif c == "|" and scoped[-1]:
            # the flags carry on into the next alternative, not across the "|"
            out.append(")" * len(scoped[-1]) + "|")
            out.extend(f"(?{f}:" for f in scoped[-1])
            i += 1
            continue
        out.append(c)
        i += 1
    out.append(")" * len(scoped[0]))
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _compile(fn: str, pattern: str) -> re.Pattern[str]:
    """Compile an RE2-syntax pattern with `re`, refusing what RE2 refuses."""
    if _UNSUPPORTED_RE2.search(pattern):
        raise make_error(
            "ValueError", f"{fn}: invalid regular expression (RE2 syntax): {pattern!r}"
        )
    try:
        return re.compile(_translate_re2(pattern), re.ASCII)
    except _RE2SyntaxError as exc:
        raise make_error(
            "ValueError", f"{fn}: invalid regular expression {pattern!r}: {exc} is not RE2"
        ) from None
    except re.error as exc:
        raise make_error(
            "ValueError", f"{fn}: invalid regular expression {pattern!r}: {exc}"
        ) from None


def _regex(fn: str, pattern: Any) -> re.Pattern[str]:
    return _compile(fn, want_str(fn, "regexp", pattern))


_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")


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
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
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


@functools.lru_cache(maxsize=256)
def _alternatives(pattern: str) -> tuple[re.Pattern[str], ...]:
    """The top-level alternatives of a pattern, compiled, when there are several."""
    flags = _GLOBAL_FLAGS.match(pattern)
    prefix = flags.group(0) if flags else ""
    parts = _top_level_branches(pattern[len(prefix):])
    if len(parts) < 2:
        return ()
    try:
        return tuple(re.compile(prefix + part, re.ASCII) for part in parts)
    except re.error:
        return ()


def _spans(pattern: re.Pattern[str], source: str) -> list[tuple[int, int]]:
    """(start, end) of every match, leftmost-longest, RE2's rule for empty matches."""
    alternatives = _alternatives(pattern.pattern)
    n = len(source)
    spans: list[tuple[int, int]] = []
    pos = 0
    prev_end = -1
    while pos <= n:
        m = pattern.search(source, pos)
        if m is None:
            break
        start, end = m.span()
        for alternative in alternatives:  # the longest of the alternatives here
            other = alternative.match(source, start)
            if other is not None and other.end() > end:
                end = other.end()
        if end == pos:  # empty match where the search began
            accept = start != prev_end
            pos += 1
        else:
            accept = True
            pos = end
        prev_end = end
        if accept:
            spans.append((start, end))
    return spans


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
