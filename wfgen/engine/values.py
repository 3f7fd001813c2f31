"""Workflows values and the operators on them.

Values are plain Python objects so that builtins and callers need no wrapper
types: int (64-bit; bool is NOT an int here), float (double), str, bool, None
(null), list, dict (keys are always str), bytes, FunctionRef. Every operator
checks types the way Workflows does and raises a Workflows error value
(WorkflowError) rather than a Python exception.

Choices where the docs are silent (also in docs/engine.md, pinned by tests):
- `//` is floor division and `%` is the matching modulo (Python semantics):
  -7 // 2 == -4, -7 % 2 == 1, 7 % -2 == -1, so a == (a // b) * b + a % b.
- Integer results outside the signed 64-bit range raise a ValueError-tagged
  error ("integer overflow") instead of wrapping or turning into a double.
- `and`/`or` short-circuit; the operand that is evaluated must be a boolean.
- A double joined to a string by `+` is written as string() writes it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from wfgen import limits
from wfgen.engine.errors import WorkflowError, make_error


@dataclass(frozen=True)
class FunctionRef:
    """A function used as a value (retry predicates); `name` is its Workflows name."""

    name: str

    def __str__(self) -> str:
        return self.name


INT_MIN = -(2**63)
INT_MAX = 2**63 - 1


def type_name(v: Any) -> str:
    """The Workflows name of a value's type, for error messages."""
    t = type(v)
    if t is bool:
        return "boolean"
    if t is int:
        return "integer"
    if t is float:
        return "double"
    if t is str:
        return "string"
    if v is None:
        return "null"
    if t is list:
        return "list"
    if t is dict:
        return "map"
    if t is bytes:
        return "bytes"
    if t is FunctionRef:
        return "function"
    return t.__name__


def _overflow() -> WorkflowError:
    return make_error("ValueError", "integer overflow")


def _optype(op: str, a: Any, b: Any) -> WorkflowError:
    return make_error(
        "TypeError", f"unsupported operand types for {op}: {type_name(a)} and {type_name(b)}"
    )


def check_int(r: int) -> int:
    if r < INT_MIN or r > INT_MAX:
        raise _overflow()
    return r


def add(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        r = a + b
        if r < INT_MIN or r > INT_MAX:
            raise _overflow()
        return r
    if ta is str and tb is str:
        r = a + b
        if len(r) > limits.MAX_STRING_BYTES:
            raise make_error("ResourceLimitError", "string exceeds 256 KB")
        return r
    if (ta is float or ta is int) and (tb is float or tb is int):
        return float(a) + float(b)
    if ta is list and tb is list:
        return a + b
    # Datatypes page, "+ operator" table: a string on either side makes the
    # result a string (numbers and booleans are written as string() would).
    if (ta is str or tb is str) and ta in _TO_TEXT and tb in _TO_TEXT:
        r = _text(a) + _text(b)
        if len(r) > limits.MAX_STRING_BYTES:
            raise make_error("ResourceLimitError", "string exceeds 256 KB")
        return r
    raise _optype("+", a, b)


def _text(v: Any) -> str:
    """A string, integer, double or boolean as text (string()'s rules)."""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "true" if v else "false"
    if t is float:
        if math.isnan(v) or math.isinf(v):
            raise make_error("ValueError", f"not a finite number: {v}")
        return repr(v)
    return str(v)


_TO_TEXT = (str, int, float, bool)


def _nums(op: str, a: Any, b: Any) -> None:
    ta = type(a)
    tb = type(b)
    if not ((ta is int or ta is float) and (tb is int or tb is float)):
        raise _optype(op, a, b)


def sub(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        r = a - b
        if r < INT_MIN or r > INT_MAX:
            raise _overflow()
        return r
    _nums("-", a, b)
    return float(a) - float(b)


def mul(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        r = a * b
        if r < INT_MIN or r > INT_MAX:
            raise _overflow()
        return r
    _nums("*", a, b)
    return float(a) * float(b)


def _zero() -> WorkflowError:
    return make_error("ZeroDivisionError", "division by zero")


def div(a: Any, b: Any) -> float:
    _nums("/", a, b)
    if b == 0:
        raise _zero()
    return float(a) / float(b)


def floordiv(a: Any, b: Any) -> Any:
    _nums("//", a, b)
    if b == 0:
        raise _zero()
    if type(a) is int and type(b) is int:
        return check_int(a // b)
    return float(math.floor(float(a) / float(b)))


def mod(a: Any, b: Any) -> Any:
    _nums("%", a, b)
    if b == 0:
        raise _zero()
    if type(a) is int and type(b) is int:
        return a % b
    return float(a) % float(b)


def neg(a: Any) -> Any:
    t = type(a)
    if t is int:
        return check_int(-a)
    if t is float:
        return -a
    raise make_error("TypeError", f"bad operand type for unary -: {type_name(a)}")


def not_(a: Any) -> bool:
    if type(a) is bool:
        return not a
    raise make_error("TypeError", f"bad operand type for not: {type_name(a)}")


def eq(a: Any, b: Any) -> bool:
    """Workflows equality: numbers compare by value, other types never equal."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is list:
            return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b, strict=True))
        if ta is dict:
            return a.keys() == b.keys() and all(eq(v, b[k]) for k, v in a.items())
        return a == b
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a == b
    return False


def ne(a: Any, b: Any) -> bool:
    return not eq(a, b)


def _ordered(op: str, a: Any, b: Any) -> None:
    ta = type(a)
    tb = type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return
    if ta is str and tb is str:
        return
    raise _optype(op, a, b)


def lt(a: Any, b: Any) -> bool:
    _ordered("<", a, b)
    return a < b


def le(a: Any, b: Any) -> bool:
    _ordered("<=", a, b)
    return a <= b


def gt(a: Any, b: Any) -> bool:
    _ordered(">", a, b)
    return a > b


def ge(a: Any, b: Any) -> bool:
    _ordered(">=", a, b)
    return a >= b


def contains(item: Any, coll: Any) -> bool:
    """`item in coll`: list membership, or key of a map."""
    t = type(coll)
    if t is dict:
        if type(item) is not str:
            raise make_error("TypeError", f"map keys are strings, got {type_name(item)}")
        return item in coll
    if t is list:
        return any(eq(item, x) for x in coll)
    raise make_error("TypeError", f"argument of type {type_name(coll)} is not iterable")


def get_attr(obj: Any, key: str) -> Any:
    if type(obj) is dict:
        try:
            return obj[key]
        except KeyError:
            raise make_error("KeyError", f"key not found: {key}") from None
    raise make_error("TypeError", f"cannot access key '{key}' of a {type_name(obj)}")


def get_item(obj: Any, key: Any) -> Any:
    t = type(obj)
    if t is list:
        if type(key) is not int:
            raise make_error("TypeError", f"list index must be an integer, got {type_name(key)}")
        if key < 0 or key >= len(obj):
            raise make_error("IndexError", f"list index out of range: {key}")
        return obj[key]
    if t is dict:
        if type(key) is not str:
            raise make_error("TypeError", f"map key must be a string, got {type_name(key)}")
        try:
            return obj[key]
        except KeyError:
            raise make_error("KeyError", f"key not found: {key}") from None
    raise make_error("TypeError", f"cannot index a {type_name(obj)}")


def set_item(obj: Any, key: Any, value: Any) -> None:
    """Assignment target `obj[key] = value` (maps gain keys; lists must hold the index)."""
    t = type(obj)
    if t is dict:
        if type(key) is not str:
            raise make_error("TypeError", f"map key must be a string, got {type_name(key)}")
        obj[key] = value
    elif t is list:
        if type(key) is not int:
            raise make_error("TypeError", f"list index must be an integer, got {type_name(key)}")
        if key < 0 or key >= len(obj):
            raise make_error("IndexError", f"list index out of range: {key}")
        obj[key] = value
    else:
        raise make_error("TypeError", f"cannot assign into a {type_name(obj)}")


def truth(v: Any) -> bool:
    """Conditions and logical operands must be booleans."""
    if type(v) is bool:
        return v
    raise make_error("TypeError", f"expected a boolean, got {type_name(v)}")


def deep_copy(v: Any) -> Any:
    """Workflows values have value semantics: containers are copied on assignment.

    A container of scalars only (the common case, e.g. a list grown by
    list.concat) is copied at C speed: the type scan and the copy are builtins."""
    t = type(v)
    if t is dict:
        if _CONTAINER_SET.isdisjoint(map(type, v.values())):
            return v.copy()
        return {k: deep_copy(x) if type(x) in CONTAINERS else x for k, x in v.items()}
    if t is list:
        if _CONTAINER_SET.isdisjoint(map(type, v)):
            return v[:]
        return [deep_copy(x) if type(x) in CONTAINERS else x for x in v]
    return v


CONTAINERS = (dict, list)  # the types deep_copy copies
_CONTAINER_SET = frozenset(CONTAINERS)
_TEXT_SET = frozenset((str, bytes))
_SCALAR_SET = frozenset((int, float, bool, type(None)))


def _items_size(items: Any) -> int:
    """Summed size of a container's items; flat text or number items at C speed."""
    types = set(map(type, items))
    if types <= _TEXT_SET:
        return sum(map(len, items)) + 8 * len(items)
    if types <= _SCALAR_SET:
        return 8 * len(items)
    return sum(map(size_of, items))


def size_of(v: Any) -> int:
    """Approximate bytes a value takes against the 512 KB variable limit."""
    t = type(v)
    if t is str:
        return len(v) + 8
    if t is bytes:
        return len(v) + 8
    if t is dict:
        return 16 + sum(map(len, v)) + 8 * len(v) + _items_size(list(v.values()))
    if t is list:
        return 16 + _items_size(v)
    return 8


MAX_DATA_DEPTH = 128  # levels of lists and maps in data from outside (--data, YAML)
_SURROGATE = re.compile("[\ud800-\udfff]")


class DataError(ValueError):
    """Data from outside that no Workflows value can hold (the message says why)."""


def from_data(v: Any, depth: int = 0) -> Any:
    """Normalize loaded data (YAML/JSON) into Workflows values: map keys become strings.

    Refused with DataError: nesting deeper than MAX_DATA_DEPTH, integers outside
    64 bits, and strings holding a lone UTF-16 surrogate (no UTF-8 text can)."""
    t = type(v)
    if t is dict or isinstance(v, dict):
        if depth >= MAX_DATA_DEPTH:
            raise DataError(f"lists and maps nest more than {MAX_DATA_DEPTH} levels deep")
        return {_checked_text(key_string(k)): from_data(x, depth + 1) for k, x in v.items()}
    if t is list or isinstance(v, list | tuple):
        if depth >= MAX_DATA_DEPTH:
            raise DataError(f"lists and maps nest more than {MAX_DATA_DEPTH} levels deep")
        return [from_data(x, depth + 1) for x in v]
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        if v > INT_MAX or v < INT_MIN:
            raise DataError(f"the integer {int(v)} does not fit in 64 bits")
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return _checked_text(str(v))
    return v


def data_argument(data: str) -> Any:
    """The --data JSON as a Workflows value; ValueError with a plain message if unusable.

    Integers must fit in 64 bits (as an execution argument's must), nesting is
    bounded and lone surrogates (a "\\ud800" escape) are refused."""
    import json

    try:
        return from_data(json.loads(data))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                         f"{exc.msg}") from None
    except RecursionError:
        raise ValueError(f"lists and maps nest more than {MAX_DATA_DEPTH} levels deep"
                         ) from None


def _checked_text(s: str) -> str:
    """The text, with surrogate pairs (YAML's "\\ud83d\\ude00") joined into one
    character; a lone surrogate is a DataError."""
    if _SURROGATE.search(s):
        try:
            return s.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            raise DataError("text holds a lone UTF-16 surrogate (e.g. \\ud800), which is "
                            "not valid Unicode") from None
    return s


def key_string(k: Any) -> str:
    if isinstance(k, bool):
        return "true" if k else "false"
    if k is None:
        return "null"
    return str(k)


def to_json_compatible(v: Any) -> Any:
    """A result as JSON data; bytes and function references cannot leave a workflow.

    Map keys come out sorted (code-point order), as keys() and json.encode give
    them: the service's maps have no insertion order to preserve."""
    t = type(v)
    if t is dict:
        return {k: to_json_compatible(v[k]) for k in sorted(v)}
    if t is list:
        return [to_json_compatible(x) for x in v]
    if t is bytes:
        raise make_error("TypeError", "bytes cannot be returned; encode them first")
    if t is FunctionRef:
        raise make_error("TypeError", f"a function ({v.name}) cannot be returned")
    if t is float and (math.isnan(v) or math.isinf(v)):
        raise make_error("ValueError", "NaN or infinity cannot be returned")
    return v
