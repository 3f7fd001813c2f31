"""The `json` namespace: encode (bytes), encode_to_string, decode.

Numbers keep their Workflows type across a round trip: integers encode
without a decimal point, doubles always with one or an exponent ("1.0",
"1e+21"); decoding gives an integer for "3" and a double for "3.0"/"3e0".
Map keys are written sorted (code-point order), the order keys() gives."""

from __future__ import annotations

import json as _json
from typing import Any

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import INT64_MAX, INT64_MIN, type_name
from wfgen.engine.values import from_data


def _reject(value: Any) -> Any:
    """json.dumps fallback: bytes, functions etc. cannot be JSON-encoded."""
    raise make_error("ValueError", f"json: cannot encode a value of type {type_name(value)}")


def _indent_options(indent: Any) -> tuple[str, str] | None:
    """(prefix, indent) from the documented `indent` argument, or None for compact."""
    if indent is None or indent is False:
        return None
    if indent is True:
        return "", "    "
    if isinstance(indent, dict):
        prefix = indent.get("prefix", "")
        unit = indent.get("indent", "    ")
        if not isinstance(prefix, str) or not isinstance(unit, str):
            raise make_error("TypeError", "json: indent.prefix and indent.indent must be strings")
        unknown = set(indent) - {"prefix", "indent"}
        if unknown:
            raise make_error("ValueError", f"json: unknown indent options {sorted(unknown)}")
        return prefix, unit
    raise make_error("TypeError", "json: indent must be a boolean or a map")


def to_json_text(data: Any, indent: Any = None) -> str:
    """Encode a Workflows value as JSON text (shared with http.* bodies)."""
    options = _indent_options(indent)
    try:
        if options is None:
            return _json.dumps(
                data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_reject,
                sort_keys=True,
            )
        prefix, unit = options
        text = _json.dumps(
            data,
            ensure_ascii=False,
            indent=unit,
            separators=(",", ": "),
            allow_nan=False,
            default=_reject,
            sort_keys=True,
        )
    except ValueError as exc:  # NaN / Infinity, or a circular structure
        raise make_error("ValueError", f"json: cannot encode: {exc}") from None
    # Each element starts a new line that begins with prefix (JSON strings hold
    # no raw newlines, so every "\n" here is structural).
    return text.replace("\n", "\n" + prefix) if prefix else text


@builtin("json.encode")
def encode(rt: Any, data: Any, indent: Any = None) -> bytes:
    """JSON as UTF-8 bytes."""
    return to_json_text(data, indent).encode("utf-8")


@builtin("json.encode_to_string")
def encode_to_string(rt: Any, data: Any, indent: Any = None) -> str:
    """JSON as a string."""
    return to_json_text(data, indent)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def _parse_int(text: str) -> int | float:
    value = int(text)
    # Beyond 64 bits an integer can only be carried as a double.
    return value if INT64_MIN <= value <= INT64_MAX else float(value)


def from_json_text(text: str) -> Any:
    """Decode JSON text; ValueError on malformed input (shared with http.*)."""
    try:
        return from_data(_json.loads(text, parse_constant=_reject_constant,
                                     parse_int=_parse_int))
    except RecursionError:
        raise make_error("ValueError", "json.decode: invalid JSON: nested too deeply") from None
    except ValueError as exc:  # DataError too: a lone surrogate, nesting past the bound
        raise make_error("ValueError", f"json.decode: invalid JSON: {exc}") from None


@builtin("json.decode")
def decode(rt: Any, data: Any) -> Any:
    """Decode JSON given as a string, or as bytes read as by text.decode(data, "UTF-8")."""
    if isinstance(data, (bytes, bytearray)):
        from wfgen.engine.stdlib.text import decode_bytes

        data = decode_bytes(bytes(data))
    elif not isinstance(data, str):
        raise make_error(
            "TypeError", f"json.decode: data must be bytes or a string, got {type_name(data)}"
        )
    return from_json_text(data)
