"""Tokens of the Workflows expression language (the text inside `${...}`)."""

from __future__ import annotations

from dataclasses import dataclass


class ExprSyntaxError(Exception):
    """A malformed expression; `pos` is the 0-based offset inside the expression."""

    def __init__(self, message: str, pos: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # NUM, STR, NAME, OP, KW, EOF
    value: object
    pos: int


# Logical keywords may be lower- or upper-case, not mixed (docs).
KEYWORDS = {
    "and": "and", "AND": "and",
    "or": "or", "OR": "or",
    "not": "not", "NOT": "not",
    "in": "in",
}
LITERALS = {
    "true": True, "True": True, "TRUE": True,
    "false": False, "False": False, "FALSE": False,
    "null": None,
}
_OPS3: tuple[str, ...] = ()
_OPS2 = ("//", "==", "!=", "<=", ">=")
_OPS1 = "+-*/%<>()[]{},.:"
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def tokenize(src: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    n = len(src)
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
            continue
        start = i
        if c.isdigit():
            while i < n and src[i].isdigit():
                i += 1
            is_float = False
            if i < n and src[i] == "." and i + 1 < n and src[i + 1].isdigit():
                is_float = True
                i += 1
                while i < n and src[i].isdigit():
                    i += 1
            if i < n and src[i] in "eE":
                j = i + 1
                if j < n and src[j] in "+-":
                    j += 1
                if j < n and src[j].isdigit():
                    is_float = True
                    i = j
                    while i < n and src[i].isdigit():
                        i += 1
            text = src[start:i]
            if i < n and (src[i].isalpha() or src[i] == "_"):
                raise ExprSyntaxError(f"invalid number {src[start:i + 1]!r}", start)
            out.append(Token("NUM", float(text) if is_float else int(text), start))
            continue
        if c.isalpha() or c == "_":
            while i < n and (src[i].isalnum() or src[i] == "_"):
                i += 1
            word = src[start:i]
            if word in KEYWORDS:
                out.append(Token("KW", KEYWORDS[word], start))
            elif word in LITERALS:
                out.append(Token("LIT", LITERALS[word], start))
            else:
                out.append(Token("NAME", word, start))
            continue
        if c == '"' or c == "'":
            quote = c
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise ExprSyntaxError("unterminated string literal", start)
                ch = src[i]
                if ch == quote:
                    i += 1
                    break
                if ch == "\\":
                    if i + 1 >= n:
                        raise ExprSyntaxError("unterminated string literal", start)
                    e = src[i + 1]
                    if e == "u":
                        hexd = src[i + 2 : i + 6]
                        if len(hexd) != 4 or any(h not in "0123456789abcdefABCDEF" for h in hexd):
                            raise ExprSyntaxError("bad \\u escape", i)
                        buf.append(chr(int(hexd, 16)))
                        i += 6
                        continue
                    if e == "'" or e in _ESCAPES:
                        buf.append("'" if e == "'" else _ESCAPES[e])
                        i += 2
                        continue
                    raise ExprSyntaxError(f"bad escape \\{e}", i)
                buf.append(ch)
                i += 1
            out.append(Token("STR", "".join(buf), start))
            continue
        two = src[i : i + 2]
        if two in _OPS2:
            out.append(Token("OP", two, start))
            i += 2
            continue
        if c in _OPS1:
            out.append(Token("OP", c, start))
            i += 1
            continue
        if c == "=":
            raise ExprSyntaxError("'=' is not an operator (use == to compare)", start)
        raise ExprSyntaxError(f"unexpected character {c!r}", start)
    out.append(Token("EOF", None, n))
    return out
