"""The JSON Schemas `wfgen schema` prints (for yaml-language-server and other
editors): the job spec's, from `JOB_FIELDS`, and the execution argument's, from
`ARGUMENT_KEYS`; the same tables wfgen.job.spec and wfgen.job.arguments check
with, so schema and checks never disagree."""

from __future__ import annotations

from typing import Any

from wfgen.job.rules import (
    _DURATION_PATTERN,
    _ZONE_RE,
    ENV_NAME_RE,
    EXCLUSIVE,
    JOB_FIELDS,
    MAX_SPLIT_PARALLELISM,
    MAX_TASKS,
    Field,
    argument_keys,
)
from wfgen.limits import MAX_CONCURRENT_BRANCHES


def _field_schema(f: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": f.doc}
    if f.kind == "object":
        schema.update(_object_schema(f.children))
    elif f.kind == "str":
        schema["type"] = "string"
        if f.pattern:
            schema["pattern"] = f.pattern
    elif f.kind == "int":
        schema["type"] = "integer"
        if f.minimum is not None:
            schema["minimum"] = f.minimum
        if f.maximum is not None:
            schema["maximum"] = f.maximum
    elif f.kind == "bool":
        schema["type"] = "boolean"
    elif f.kind == "duration":
        schema["anyOf"] = [{"type": "string", "pattern": _DURATION_PATTERN},
                           {"type": "integer", "minimum": 1}]
    elif f.kind == "strlist":
        schema["type"] = "array"
        schema["items"] = {"type": ["string", "integer"]}
    elif f.kind == "strmap" and f.name == "inputs":
        schema.update(type="object", propertyNames={"pattern": f"^{ENV_NAME_RE}$"},
                      additionalProperties={"type": "string", "pattern": "^gs://"})
    elif f.kind == "strmap":
        schema["type"] = "object"
        schema["additionalProperties"] = {"type": ["string", "integer"]}
    elif f.kind == "jsonlist":
        schema.update(type="array", minItems=1, maxItems=MAX_TASKS)
    elif f.kind == "zones":
        schema["anyOf"] = [{"type": "string", "pattern": f.pattern},
                           {"type": "array", "minItems": 1,
                            "items": {"type": "string", "pattern": f"^{_ZONE_RE}$"}}]
    elif f.kind == "outputs":
        schema.update(type="object", propertyNames={"pattern": f"^{ENV_NAME_RE}$"},
                      additionalProperties={"anyOf": [{"type": "string"},
                                                      _object_schema(f.children)]})
    elif f.kind == "fallback":
        item = _object_schema(f.children)
        item["properties"] = {k: {"anyOf": [v, {"type": "null"}]}
                              for k, v in item["properties"].items()}
        schema.update(type="array", minItems=1, items=item)
    if f.default not in (None, {}) and f.kind != "object":
        schema["default"] = f.default
    if f.example is not None:
        schema["examples"] = [f.example]
    return schema


def _object_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: _field_schema(f) for f in fields},
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def json_schema() -> dict[str, Any]:
    """The job spec's JSON Schema (draft 2020-12)."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/wfgen/wfgen/job.schema.json",
        "title": "wfgen job spec",
        "description": "One container job run on a throw-away Compute Engine VM by a "
                       "Cloud Workflows workflow that wfgen generates.",
        **_object_schema(JOB_FIELDS),
    }
    container = schema["properties"]["container"]
    container["allOf"] = [{"not": {"required": [a, b]}} for a, b, _ in EXCLUSIVE]
    tasks = schema["properties"]["tasks"]
    tasks["oneOf"] = [{"required": ["items"]}, {"required": ["count"]},
                      {"required": ["items_file"]}]
    # parallelism: 20 when kept in one execution, up to 1,000 split over child executions
    tasks["if"] = {"required": ["split"], "properties": {"split": {"const": False}}}
    tasks["then"] = {"properties": {"parallelism": {"maximum": MAX_CONCURRENT_BRANCHES}}}
    tasks["properties"]["parallelism"]["maximum"] = MAX_SPLIT_PARALLELISM
    # The execution argument a deployed workflow accepts (gcloud workflows run --data)
    schema["$defs"] = {"execution_argument": argument_schema(secrets=True, inputs=True,
                                                             outputs=True)}
    return schema


_NO_NUL = "[^\\u0000]*"  # ECMA regex: no NUL character


def argument_schema(secrets: bool = False, inputs: bool = False,
                    outputs: bool = False) -> dict[str, Any]:
    """The execution argument's JSON Schema (a fragment: no $schema); with `secrets`,
    the secret_env key of a job whose spec has container.secret_env (`inputs`,
    `outputs`: those keys, for a job with data)."""
    props: dict[str, Any] = {}
    for rule in argument_keys(secrets, inputs, outputs):
        schema: dict[str, Any] = {"description": rule.doc}
        if rule.kind == "str":
            schema.update(type="string", pattern=f"^{rule.pattern or _NO_NUL}$")
        elif rule.kind == "strlist":
            schema.update(type="array", items={"type": "string", "pattern": f"^{_NO_NUL}$"})
            if rule.nonempty:
                schema["minItems"] = 1
        else:
            value = f"^(?:{rule.pattern})$" if rule.pattern else f"^{_NO_NUL}$"
            schema.update(type="object", propertyNames={"pattern": f"^{ENV_NAME_RE}$"},
                          additionalProperties={"type": "string", "pattern": value})
        props[rule.name] = schema
    return {
        "title": "wfgen execution argument",
        "description": "Per-run overrides of a job's container, passed as the workflow's "
                       "argument.",
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        "allOf": [{"not": {"required": [a, b]}} for a, b, _ in EXCLUSIVE],
    }

