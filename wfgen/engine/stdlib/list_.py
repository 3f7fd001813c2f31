"""The `list` namespace. Both functions return a new list (values are immutable
in Workflows; the caller's list must not change)."""

from __future__ import annotations

from typing import Any

from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import type_error


@builtin("list.concat")
def concat(rt: Any, objs: Any, val: Any) -> list[Any]:
    """A new list: `objs` with `val` appended."""
    if not isinstance(objs, list):
        type_error("list.concat", "objs", "a list", objs)
    return [*objs, val]


@builtin("list.prepend")
def prepend(rt: Any, objs: Any, val: Any) -> list[Any]:
    """A new list: `val` followed by `objs`."""
    if not isinstance(objs, list):
        type_error("list.prepend", "objs", "a list", objs)
    return [val, *objs]
