"""The `map` namespace: safe lookup, delete and merges, all returning new maps."""

from __future__ import annotations

from typing import Any

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import type_error, want_str


@builtin("map.get")
def get(rt: Any, map: Any, keys: Any) -> Any:
    """Value at a key, or at a path of keys; null when anything is missing or
    not a map on the way (never a KeyError)."""
    if isinstance(keys, str):
        return map.get(keys) if isinstance(map, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise make_error("TypeError", "map.get: keys must be a string or a list of strings")
    current = map
    for key in keys:
        if not isinstance(current, dict):
            return None
        current = current.get(key)
    return current


@builtin("map.delete")
def delete(rt: Any, map: Any, key: Any) -> dict[str, Any]:
    """A copy of the map without `key` (absent key: an unchanged copy)."""
    if not isinstance(map, dict):
        type_error("map.delete", "map", "a map", map)
    want_str("map.delete", "key", key)
    return {k: v for k, v in map.items() if k != key}


@builtin("map.merge")
def merge(rt: Any, first: Any, second: Any) -> dict[str, Any]:
    """Shallow merge; on a shared key the value from `second` wins."""
    if not isinstance(first, dict):
        type_error("map.merge", "first", "a map", first)
    if not isinstance(second, dict):
        type_error("map.merge", "second", "a map", second)
    return {**first, **second}


def _merge_nested(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    out = dict(first)
    for key, value in second.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge_nested(old, value)
        else:
            out[key] = value
    return out


@builtin("map.merge_nested")
def merge_nested(rt: Any, first: Any, second: Any) -> dict[str, Any]:
    """Deep merge: maps under the same key are merged recursively, anything
    else from `second` replaces the value in `first`."""
    if not isinstance(first, dict):
        type_error("map.merge_nested", "first", "a map", first)
    if not isinstance(second, dict):
        type_error("map.merge_nested", "second", "a map", second)
    return _merge_nested(first, second)
