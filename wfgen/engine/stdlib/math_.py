"""The `math` namespace: abs, floor, max, min on integers and doubles."""

from __future__ import annotations

import math
from typing import Any

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import check_int64, is_int, want_number


@builtin("math.abs")
def abs_(rt: Any, x: Any) -> int | float:
    """Absolute value, same type as x (abs of the smallest int64 overflows: ValueError)."""
    want_number("math.abs", "x", x)
    result = abs(x)
    return check_int64("math.abs", result) if is_int(result) else result


@builtin("math.floor")
def floor(rt: Any, x: Any) -> int:
    """Largest integer <= x, as an integer."""
    want_number("math.floor", "x", x)
    if is_int(x):
        return x
    if not math.isfinite(x):
        raise make_error("ValueError", f"math.floor: {x} has no integer floor")
    return check_int64("math.floor", math.floor(x))


def _same_kind(x: int | float, y: int | float, result: int | float) -> int | float:
    """Documented: an integer when both arguments are integers, else a double."""
    return result if is_int(x) and is_int(y) else float(result)


@builtin("math.max")
def max_(rt: Any, x: Any, y: Any) -> int | float:
    """The larger of x and y."""
    want_number("math.max", "x", x)
    want_number("math.max", "y", y)
    return _same_kind(x, y, y if y > x else x)


@builtin("math.min")
def min_(rt: Any, x: Any, y: Any) -> int | float:
    """The smaller of x and y."""
    want_number("math.min", "x", x)
    want_number("math.min", "y", y)
    return _same_kind(x, y, y if y < x else x)
