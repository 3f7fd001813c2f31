"""The parsed definition: subworkflows and steps with their source positions.

Plain data, built by parse.py and turned into closures by runtime.py; lint walks
the same tree, so there is one parser for both running and validating."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wfgen.engine.expr.ast import Node


@dataclass
class Expr:
    """An expression `${src}` found in the definition."""

    src: str
    node: Node
    line: int
    column: int


@dataclass
class DynMap:
    """A map in the definition with at least one `${...}` key (docs: dynamic keys)."""

    entries: list[tuple[Any, Any]]  # (str | Expr key, template value)


# A "template" is definition data in which every `${...}` string was replaced by
# an Expr: dict/list/scalars/Expr, evaluated afresh each time the step runs.
Template = Any


@dataclass
class Target:
    """Left-hand side of an assignment: `root` then keys (Exprs or constant strings/ints)."""

    text: str
    root: str
    path: list[Any]  # each item: ("attr", "name") or ("index", Node)


@dataclass
class Step:
    name: str
    line: int
    column: int
    kind: str  # assign call switch for parallel try raise return steps next
    next: str | None = None
    assign: list[tuple[Target, Template, int]] = field(default_factory=list)
    call: str | None = None
    args: dict[str, Template] | None = None
    result: str | None = None
    conditions: list[Condition] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    loop: Loop | None = None
    parallel: Parallel | None = None
    try_body: list[Step] | None = None
    try_single: bool = False
    retry: Template | None = None
    except_as: str | None = None
    except_steps: list[Step] | None = None
    value: Template = None  # raise / return value


@dataclass
class Condition:
    line: int
    condition: Template
    next: str | None = None
    steps: list[Step] | None = None
    assign: list[tuple[Target, Template, int]] | None = None
    has_return: bool = False
    return_value: Template = None
    has_raise: bool = False
    raise_value: Template = None
    inline: bool = False  # steps is the one step written in the condition itself


@dataclass
class Loop:
    value: str
    index: str | None
    items: Template | None  # `in`
    range: Template | None
    steps: list[Step]


@dataclass
class Parallel:
    shared: list[str]
    exception_policy: str | None
    concurrency_limit: Template | None
    branches: list[tuple[str, int, list[Step]]] | None
    loop: Loop | None
    shared_pos: tuple[int, int] = (0, 0)  # (line, column) of the `shared` list


@dataclass
class Subworkflow:
    name: str
    line: int
    params: list[tuple[str, bool, Any]]  # (name, has_default, default)
    steps: list[Step]


@dataclass
class Workflow:
    filename: str
    subworkflows: dict[str, Subworkflow]
    source: str = ""
    compiled: Any = None  # runtime.Program, built lazily once

    @property
    def main(self) -> Subworkflow:
        return self.subworkflows["main"]
