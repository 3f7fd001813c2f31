"""Google's compute v1 Discovery document (shipped in google-api-python-client) as
a JSON Schema, so a test can check a request body the way Google's front end
reads it: an unknown field or enum value is refused, as are wrong types.

int64 fields are JSON strings in Google's answers, and requests may send them
as numbers or strings (proto3 JSON), so both pass."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any


@functools.cache
def compute_v1() -> dict[str, Any]:
    import googleapiclient

    path = (Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
            / "compute.v1.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _schema(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return {"$ref": f"#/$defs/{node['$ref']}"}
    kind = node.get("type")
    out: dict[str, Any] = {}
    if kind == "object":
        out["type"] = "object"
        if "properties" in node:
            out["properties"] = {k: _schema(v) for k, v in node["properties"].items()}
            out["additionalProperties"] = False
        if "additionalProperties" in node:
            out["additionalProperties"] = _schema(node["additionalProperties"])
    elif kind == "array":
        out = {"type": "array", "items": _schema(node.get("items", {}))}
    elif kind == "string":
        out["type"] = ["string", "integer"] if node.get("format") in (
            "int64", "uint64") else "string"
    elif kind == "integer":
        out["type"] = "integer"
    elif kind == "number":
        out["type"] = "number"
    elif kind == "boolean":
        out["type"] = "boolean"
    if "enum" in node:
        out["enum"] = node["enum"]
    return out


@functools.cache
def json_schema(name: str) -> dict[str, Any]:
    """The Discovery schema `name` (e.g. Instance) as a JSON Schema document."""
    doc = compute_v1()
    defs = {key: _schema(value) for key, value in doc["schemas"].items()}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": f"#/$defs/{name}", "$defs": defs}


def problems(body: Any, name: str = "Instance") -> list[str]:
    """What Google's front end would refuse in `body` (empty when it fits)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json_schema(name))
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                  for e in validator.iter_errors(body))
