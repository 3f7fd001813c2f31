"""Shared helpers for the stdlib: Workflows type names, argument checks, and the
one place that decides how a double is printed (string(), json, query strings).

Kept dependency-free and tiny because every builtin call goes through them."""

from __future__ import annotations

from typing import Any, NoReturn

from wfgen.engine.errors import make_error

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def type_name(value: Any) -> str:
    """The Workflows name of a value's type, for error messages."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    return "function"


def is_int(value: Any) -> bool:
    """A Workflows integer (Python bool is an int subclass, but not one here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Integer or double."""
    return (isinstance(value, (int, float))) and not isinstance(value, bool)


def type_error(fn: str, arg: str, expected: str, value: Any) -> NoReturn:
    """Raise the TypeError the docs list for a wrongly typed argument."""
    raise make_error(
        "TypeError", f"{fn}: argument '{arg}' must be {expected}, got {type_name(value)}"
    )


def want_str(fn: str, arg: str, value: Any) -> str:
    """The value if it is a string, else a TypeError."""
    if not isinstance(value, str):
        type_error(fn, arg, "a string", value)
    return value


def want_int(fn: str, arg: str, value: Any) -> int:
    """The value if it is an integer, else a TypeError."""
    if not is_int(value):
        type_error(fn, arg, "an integer", value)
    return value


def want_number(fn: str, arg: str, value: Any) -> int | float:
    """The value if it is an integer or double, else a TypeError."""
    if not is_number(value):
        type_error(fn, arg, "a number", value)
    return value


def check_int64(fn: str, value: int) -> int:
    """Integers are 64-bit signed; results out of range are a ValueError."""
    if value < INT64_MIN or value > INT64_MAX:
        raise make_error("ValueError", f"{fn}: integer out of 64-bit range: {value}")
    return value


def format_double(value: float) -> str:
    """How a double prints: the shortest text that reads back as the same double.

    Whole doubles keep a ".0" so that they stay distinguishable from integers
    (`string(2.0)` is "2.0", `string(1.7)` is "1.7"); very large/small values use
    an exponent ("1e+21"). This is the engine's documented choice where the
    Workflows docs give no exact rule."""
    if value != value or value in (float("inf"), float("-inf")):
        raise make_error("ValueError", f"not a finite number: {value}")
    return repr(value)
