"""Top-level functions (the docs' "expression helpers"): default, if, keys,
len, int, double, string.

Conversions follow the documented argument types and raise TypeError for the
wrong type and ValueError for a value that does not convert."""

from __future__ import annotations

import math
import re
from typing import Any

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import (
    check_int64,
    format_double,
    is_int,
    type_error,
)

_INT_TEXT = re.compile(r"[+-]?[0-9]+\Z")
_DOUBLE_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


@builtin("default")
def default(rt: Any, val: Any, defaultVal: Any) -> Any:
    """`val` unless it is null, then `defaultVal` (the documented parameter name)."""
    return defaultVal if val is None else val


@builtin("if")
def if_(rt: Any, condition: Any, ifTrue: Any, ifFalse: Any) -> Any:
    """`ifTrue` when the condition is true, `ifFalse` when it is false or null
    (stdlib/expression-helpers). Like every function, both values are evaluated
    before the call; a condition of another type is a TypeError."""
    if condition is True:
        return ifTrue
    if condition is False or condition is None:
        return ifFalse
    type_error("if", "condition", "a boolean or null", condition)


@builtin("keys")
def keys(rt: Any, map: Any) -> list[str]:
    """The keys of a map, sorted (syntax/iteration, maps: a for loop over
    keys(map) sees them in sorted order); code-point order of the strings."""
    if not isinstance(map, dict):
        type_error("keys", "map", "a map", map)
    return sorted(map)


@builtin("len")
def len_(rt: Any, value: Any) -> int:
    """Length of a string (code points), list, map (keys) or bytes."""
    if isinstance(value, (str, list, dict, bytes, bytearray)):
        return len(value)
    type_error("len", "value", "a string, list, map or bytes", value)


@builtin("int")
def int_(rt: Any, arg: Any) -> int:
    """Integer from an integer, a double (truncated toward zero) or a decimal string."""
    if is_int(arg):
        return arg
    if isinstance(arg, float):
        if not math.isfinite(arg):
            raise make_error("ValueError", f"int: cannot convert {arg} to an integer")
        return check_int64("int", int(arg))
    if isinstance(arg, str):
        text = arg.strip()
        if not _INT_TEXT.match(text):
            raise make_error("ValueError", f"int: cannot convert {arg!r} to an integer")
        return check_int64("int", int(text))
    type_error("int", "arg", "an integer, double or string", arg)


@builtin("double")
def double(rt: Any, arg: Any) -> float:
    """Double from an integer, a double or a decimal string."""
    if isinstance(arg, float):
        return arg
    if is_int(arg):
        return float(arg)
    if isinstance(arg, str):
        text = arg.strip()
        if not _DOUBLE_TEXT.match(text):
            raise make_error("ValueError", f"double: cannot convert {arg!r} to a double")
        result = float(text)
        if not math.isfinite(result):
            raise make_error("ValueError", f"double: {arg!r} is out of range")
        return result
    type_error("double", "arg", "an integer, double or string", arg)


@builtin("string")
def string(rt: Any, arg: Any) -> str:
    """Text of an integer, double, boolean or string (see format_double)."""
    if isinstance(arg, str):
        return arg
    if arg is True:
        return "true"
    if arg is False:
        return "false"
    if isinstance(arg, int):
        return str(arg)
    if isinstance(arg, float):
        return format_double(arg)
    type_error("string", "arg", "an integer, double, boolean or string", arg)
