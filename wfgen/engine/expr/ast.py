"""Expression syntax tree: small frozen nodes, compiled once into closures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Node:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Const(Node):
    value: Any


@dataclass(frozen=True, slots=True)
class Var(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Attr(Node):
    obj: Node
    name: str


@dataclass(frozen=True, slots=True)
class Index(Node):
    obj: Node
    key: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str  # dotted function name, e.g. "text.split"
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit(Node):
    entries: tuple[tuple[Node, Node], ...]


def dotted_name(node: Node) -> str | None:
    """`a.b.c` as a string when node is a plain dotted path, else None."""
    parts: list[str] = []
    while isinstance(node, Attr):
        parts.append(node.name)
        node = node.obj
    if isinstance(node, Var):
        parts.append(node.name)
        return ".".join(reversed(parts))
    return None
