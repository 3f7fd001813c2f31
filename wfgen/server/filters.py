"""The filter language of Cloud Logging `entries:list` and Compute Engine
`list` calls (AIP-160 style), over JSON resources.

    resource.type="gce_instance" labels."compute.googleapis.com/resource_name"="vm-1"
    timestamp>="2024-05-01T00:00:00Z" AND (severity>=WARNING OR textPayload:"error")
    name eq "wfgen-.*" status != TERMINATED

Comparisons `=`, `!=`, `<`, `<=`, `>`, `>=`, `:` (has: case-insensitive
substring, a map key, or `:*` for present), `=~` / `!~` (regular expression
search) and the compute list's `eq` / `ne` (full regular-expression match).
Terms combine with AND (or mere juxtaposition), OR and NOT / `-`; as in both
services, NOT binds tightest, then OR, then AND. A bare value is a global
restriction: some string in the resource contains it. Times compare as times,
numbers as numbers, and a caller may give its own order for a field (severity)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

OPERATORS = ("=~", "!~", "!=", ">=", "<=", "=", ">", "<", ":")
WORD_OPERATORS = ("eq", "ne")
MISSING = object()
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?([Zz]|[+-]\d{2}:?\d{2})?")


class FilterError(ValueError):
    """A filter that does not parse: the message names the column."""


@dataclass
class Token:
    kind: str  # "(", ")", "op", "word", "string"
    text: str
    column: int
    path: tuple[str, ...] = ()


def _tokens(text: str) -> Iterator[Token]:
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            yield Token(ch, ch, i + 1)
            i += 1
            continue
        op = next((o for o in OPERATORS if text.startswith(o, i)), None)
        if op:
            yield Token("op", op, i + 1)
            i += len(op)
            continue
        start, parts, quoted_only, current = i, [], True, ""
        while i < len(text) and not text[i].isspace() and text[i] not in "()" and not any(
                text.startswith(o, i) for o in OPERATORS):
            if text[i] in "\"'":
                value, i = _string(text, i)
                current += value
            else:
                quoted_only = False
                if text[i] == ".":
                    parts.append(current)
                    current = ""
                else:
                    current += text[i]
                i += 1
        parts.append(current)
        raw = text[start:i]
        if quoted_only and raw[:1] in "\"'" and len(parts) == 1:
            yield Token("string", parts[0], start + 1)
        else:
            yield Token("word", raw, start + 1, tuple(parts))


def _string(text: str, i: int) -> tuple[str, int]:
    """A quoted string from text[i] on: its value and the index after it."""
    quote, begin, out = text[i], i, []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterError(f"unterminated string starting at column {begin + 1}")


# -- the tree -----------------------------------------------------------------
@dataclass
class Compare:
    path: tuple[str, ...]
    op: str
    value: str


@dataclass
class Search:
    value: str


@dataclass
class Not:
    node: Any


@dataclass
class All:
    nodes: list[Any]


@dataclass
class Any_:
    nodes: list[Any]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = list(_tokens(text))
        self.at = 0

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of filter")
        self.at += 1
        return token

    def fail(self, token: Token | None, what: str) -> FilterError:
        if token is None:
            return FilterError(f"unexpected end of filter, expected {what}")
        return FilterError(f"syntax error at column {token.column}, token '{token.text}': "
                           f"expected {what}")

    def parse(self) -> Any:
        if not self.tokens:
            return All([])
        node = self.conjunction()
        if self.peek() is not None:
            raise self.fail(self.peek(), "AND, OR or the end of the filter")
        return node

    def conjunction(self) -> Any:
        nodes = [self.disjunction()]
        while (token := self.peek()) is not None and token.kind != ")":
            if token.kind == "word" and token.text == "AND":
                self.take()
            nodes.append(self.disjunction())
        return nodes[0] if len(nodes) == 1 else All(nodes)

    def disjunction(self) -> Any:
        nodes = [self.unary()]
        while (token := self.peek()) is not None and token.kind == "word" and token.text == "OR":
            self.take()
            nodes.append(self.unary())
        return nodes[0] if len(nodes) == 1 else Any_(nodes)

    def unary(self) -> Any:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text == "NOT":
            self.take()
            return Not(self.unary())
        if token is not None and token.kind == "word" and token.text == "-":
            self.take()
            return Not(self.unary())
        if token is not None and token.kind == "word" and token.text.startswith("-") and \
                len(token.text) > 1 and not token.text[1].isdigit():
            self.at += 1
            rest = token.text[1:]
            parts = (token.path[0][1:], *token.path[1:])
            return Not(self.term(Token("word", rest, token.column + 1, parts)))
        return self.primary()

    def primary(self) -> Any:
        token = self.take()
        if token.kind == "(":
            node = self.conjunction()
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise self.fail(closing, "')'")
            self.take()
            return node
        if token.kind in ("word", "string"):
            if token.kind == "word" and token.text in ("AND", "OR"):
                raise self.fail(token, "a comparison")
            return self.term(token)
        raise self.fail(token, "a comparison or '('")

    def term(self, left: Token) -> Any:
        nxt = self.peek()
        if nxt is not None and (nxt.kind == "op" or (
                nxt.kind == "word" and nxt.text in WORD_OPERATORS)):
            if left.kind == "string":
                raise self.fail(left, "a field name")
            self.take()
            value = self.take()
            if value.kind not in ("word", "string"):
                raise self.fail(value, "a value")
            return Compare(left.path, nxt.text, value.text)
        return Search(left.text)


def parse(text: str) -> Any:
    """The filter's tree; FilterError when it does not parse."""
    return _Parser(text or "").parse()


# -- evaluation ---------------------------------------------------------------
def lookup(resource: Any, path: tuple[str, ...]) -> Any:
    value = resource
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return MISSING
    return value


def parse_time(text: str) -> datetime | None:
    """A filter's time value (RFC 3339, or a date), UTC when it names no zone;
    None when the text is not a time."""
    if not _TIME.fullmatch(text.strip()):
        return None
    try:
        stamp = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ordered(left: str, right: str) -> tuple[Any, Any]:
    """Comparable forms of two values: times, then numbers, then text."""
    lt, rt = parse_time(left), parse_time(right)
    if lt is not None and rt is not None:
        return lt, rt
    try:
        return float(left), float(right)
    except ValueError:
        return left, right


Order = Callable[[str], Any]


class Matcher:
    """A parsed filter, evaluated against JSON resources."""

    def __init__(self, text: str, *, orders: dict[str, Order] | None = None) -> None:
        self.text = text
        self.tree = parse(text)
        self.orders = orders or {}

    def __call__(self, resource: Any) -> bool:
        return self._eval(self.tree, resource)

    def fields(self) -> Iterator[Compare]:
        """Every comparison in the filter (to narrow a search before evaluating)."""
        stack = [self.tree]
        while stack:
            node = stack.pop()
            if isinstance(node, Compare):
                yield node
            elif isinstance(node, Not):
                stack.append(node.node)
            elif isinstance(node, All | Any_):
                stack.extend(node.nodes)

    def conjuncts(self) -> list[Any]:
        """The top-level terms that must all hold."""
        return list(self.tree.nodes) if isinstance(self.tree, All) else [self.tree]

    def about_only(self, node: Any, roots: tuple[str, ...]) -> bool:
        """Does `node` look only at fields under these roots (no global search)?"""
        if isinstance(node, Compare):
            return node.path[0] in roots
        if isinstance(node, Not):
            return self.about_only(node.node, roots)
        if isinstance(node, All | Any_):
            return all(self.about_only(n, roots) for n in node.nodes)
        return False

    def holds(self, node: Any, resource: Any) -> bool:
        """One term of this filter, against a resource."""
        return self._eval(node, resource)

    def _eval(self, node: Any, resource: Any) -> bool:
        if isinstance(node, All):
            return all(self._eval(n, resource) for n in node.nodes)
        if isinstance(node, Any_):
            return any(self._eval(n, resource) for n in node.nodes)
        if isinstance(node, Not):
            return not self._eval(node.node, resource)
        if isinstance(node, Search):
            needle = node.value.lower()
            return any(needle in leaf.lower() for leaf in _leaves(resource))
        value = lookup(resource, node.path)
        if node.op in ("!=", "!~", "ne"):
            positive = {"!=": "=", "!~": "=~", "ne": "eq"}[node.op]
            return not self._compare(Compare(node.path, positive, node.value), value)
        return self._compare(node, value)

    def _compare(self, node: Compare, value: Any) -> bool:
        if value is MISSING or value is None:
            return False
        if isinstance(value, list):
            return any(self._compare(node, item) for item in value)
        if node.op == ":":
            if node.value == "*":
                return True
            if isinstance(value, dict):
                return node.value in value
            return node.value.lower() in _scalar(value).lower()
        if isinstance(value, dict):
            return False
        text = _scalar(value)
        if node.op in ("=~", "eq"):
            try:
                pattern = re.compile(node.value)
            except re.error as exc:
                raise FilterError(f"bad regular expression {node.value!r}: {exc}") from None
            found = pattern.search(text) if node.op == "=~" else pattern.fullmatch(text)
            return found is not None
        order = self.orders.get(".".join(node.path))
        if order is not None:
            left, right = order(text), order(node.value)
        elif node.op == "=" and not isinstance(value, int | float):
            lt, rt = parse_time(text), parse_time(node.value)
            left, right = (lt, rt) if lt is not None and rt is not None else (text, node.value)
        else:
            left, right = _ordered(text, node.value)
        try:
            return {"=": left == right, "<": left < right, "<=": left <= right,
                    ">": left > right, ">=": left >= right}[node.op]
        except TypeError:
            return False


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield _scalar(value)
