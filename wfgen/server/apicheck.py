"""Every request checked the way Google's front end checks it, before any
handler runs, against the API's Discovery document (wfgen/server/discovery/):
path parameters, query parameter names and types, body field names, types,
enum values, int64 as string or number, required fields and the documented
size limits. A refusal is a 400 in the API's own error shape and names the
field as Google does ("Unknown name", "Cannot bind query parameter",
"Invalid value at"). Answers are made to match the description too: int64
fields are written as strings and a field the description does not define is
dropped (and logged once, as a wfgen bug).

Why here and not in each handler: the handlers and the clients were written
by the same people; the document is Google's, so a misunderstanding shared by
both still fails a test. A request no document describes passes unchecked."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import cache
from typing import Any

from wfgen import limits
from wfgen.local.loopback import Api, Request, Response, loads_json
from wfgen.server.discovery import Method, Routes, routes

MAX_DEPTH = 100  # nesting Google's JSON parser accepts
RESUMABLE_START_BYTES = 1 << 20  # a resumable upload's first request: metadata only
LEGACY_ERRORS = ("compute", "storage")  # APIs that answer {"error": {"errors": [...]}}
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
              "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1)}
PROTO_TYPES = {"int32": "TYPE_INT32", "uint32": "TYPE_UINT32", "int64": "TYPE_INT64",
               "uint64": "TYPE_UINT64", "double": "TYPE_DOUBLE", "float": "TYPE_FLOAT",
               "byte": "TYPE_BYTES"}
_DURATION = re.compile(r"-?\d{1,12}(\.\d{1,9})?s")
_INTEGER = re.compile(r"-?\d{1,20}")

# The size limits the reference pages and the documents' own field descriptions give
# (Discovery has no machine-readable limits): (schema, field) -> limit.
LABELS = {"entries": 64, "key_chars": 63, "value_chars": 63}
SIZE_LIMITS: dict[tuple[str, str], dict[str, int]] = {
    ("Workflow", "description"): {"chars": 1000},
    ("Workflow", "sourceContents"): {"bytes": limits.MAX_SOURCE_BYTES},
    ("Workflow", "labels"): LABELS,
    ("Workflow", "userEnvVars"): {"entries": 20, "value_bytes": 4096},
    ("Execution", "argument"): {"bytes": 32 * 1024},
    ("Execution", "labels"): LABELS,
    ("Instance", "labels"): LABELS,
    ("Instance", "description"): {"chars": 2048},
    ("Metadata", "items"): {"total_bytes": 512 * 1024},
    ("Metadata.items", "value"): {"bytes": 256 * 1024},
    ("Job", "description"): {"chars": 500},
    ("Job", "timeZone"): {"chars": 64},
    ("Trigger", "labels"): LABELS,
    ("PublishRequest", "messages"): {"entries": 1000},
}

# Query parameters that the bundled gcloud (528) sends but the current document no
# longer defines; accepted from gcloud only, so wfgen's own requests stay strict:
# (method, parameter) -> the User-Agent mark of that client.
CLIENT_ALLOWANCES = {("compute.instances.aggregatedList", "returnPartialSuccess"): "gcloud/",
                     ("compute.instances.list", "returnPartialSuccess"): "gcloud/"}


class Refused(Exception):
    """A request Google's front end would refuse: 400 and the field it names."""

    def __init__(self, message: str, field: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


@cache
def snake(name: str) -> str:
    """The proto field name of a JSON name (callLogLevel -> call_log_level)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


# -- path and query ------------------------------------------------------------

def check_path(method: Method, values: Sequence[str]) -> None:
    """A path parameter that the document gives a pattern must match it
    (Compute Engine's names); resource-name segments are matched by the route."""
    for name, value in zip(method.path_names, values, strict=True):
        spec = method.parameters.get(name) or {}
        pattern = spec.get("pattern")
        if pattern and not pattern.startswith("^") and not re.fullmatch(pattern, value):
            raise Refused(f"Invalid value for field '{name}': '{value}'. Must be a match of "
                          f"regex '{pattern}'", name)


def check_query(method: Method, query: dict[str, list[str]], agent: str = ""
                ) -> dict[str, list[str]]:
    """The query with each parameter under its documented (camelCase) name; an
    unknown name or a value of the wrong type is refused."""
    out: dict[str, list[str]] = {}
    system = method.document.system_parameters
    for key, values in query.items():
        name = key[1:] if key.startswith("$") and key[1:] in system else key
        mark = CLIENT_ALLOWANCES.get((method.id, name))
        if name in system or (mark and mark in agent):
            out[key] = values
            continue
        spec = method.parameters.get(name)
        if spec is None and "_" in name:
            name = _camel(name)
            spec = method.parameters.get(name)
        if spec is None or spec.get("location") != "query":
            raise Refused(f'Invalid JSON payload received. Unknown name "{key}": Cannot bind '
                          f"query parameter. Field '{key}' could not be found in request "
                          "message.", key)
        for value in values:
            _check_query_value(name, spec, value)
        out.setdefault(name, []).extend(values)
    for name, spec in method.parameters.items():
        if spec.get("required") and spec.get("location") == "query" and name not in out:
            raise Refused(f"Missing required query parameter '{name}'", name)
    return out


def _check_query_value(name: str, spec: dict[str, Any], value: str) -> None:
    kind, fmt = spec.get("type"), spec.get("format", "")
    bad = f"Invalid value at '{snake(name)}' ({PROTO_TYPES.get(fmt, 'TYPE_' + str(kind).upper())}"
    if "enum" in spec and value not in spec["enum"]:
        raise Refused(f'Invalid value at \'{snake(name)}\' (TYPE_ENUM), "{value}"', name)
    if kind == "integer" or fmt in ("int64", "uint64"):
        low, high = INT_RANGES.get(fmt, INT_RANGES["int64"])
        if not _INTEGER.fullmatch(value) or not low <= int(value) <= high:
            raise Refused(f'{bad}), "{value}"', name)
    elif kind == "boolean" and value not in ("true", "false", "True", "False", "1", "0"):
        raise Refused(f"{bad}), \"{value}\"", name)
    elif kind == "number":
        try:
            float(value)
        except ValueError:
            raise Refused(f'{bad}), "{value}"', name) from None


# -- body ------------------------------------------------------------------------

def body_prefix(method: Method) -> str:
    """The request field the body fills, as Google's messages name it: Compute
    Engine says 'resource'; a body that is the whole request message (…Request,
    or a PUT of the resource itself) is no field."""
    if method.api in LEGACY_ERRORS:
        return "resource"
    if not method.request or method.request.endswith("Request") or method.http_method == "PUT":
        return ""
    return snake(method.request[0].lower() + method.request[1:])


def parse_body(body: bytes) -> Any:
    """A request body as Google's JSON parser reads it (empty: an empty message)."""
    if not body.strip():
        return {}
    try:
        return loads_json(body)
    except RecursionError:
        raise Refused("Invalid JSON payload received. Message too deep: at most "
                      f"{MAX_DEPTH} levels of nesting.") from None
    except ValueError as exc:
        raise Refused(f"Invalid JSON payload received. {exc}.") from None


class BodyChecker:
    """One request body against the request schema of one method."""

    def __init__(self, method: Method) -> None:
        self.method = method
        self.schemas = method.document.schemas
        self.changed = False  # a null field was dropped: the handler gets the cleaned body
        # Cloud Storage's JSON API reads null as "clear this field" (patch semantics),
        # not as proto3's "unset": its nulls reach the handler
        self.keep_nulls = method.api == "storage"

    def check(self, value: Any) -> Any:
        prefix = body_prefix(self.method)
        if not isinstance(value, dict):
            raise Refused(f"Invalid JSON payload received. Expected an object, got "
                          f"{_shown(value)}.", prefix)
        ref = self.method.request or ""
        return self._message(value, self.schemas.get(ref, {}), ref, prefix, 1)

    def _message(self, value: dict[str, Any], schema: dict[str, Any], name: str, path: str,
                 depth: int) -> dict[str, Any]:
        """An object with named fields: a schema of the document's, or one written
        inline (`name` is then its owner's: "Metadata.items")."""
        properties = schema.get("properties", {})
        out = {}
        at = f" at '{path}'" if path else ""
        for key, item in value.items():
            spec = properties.get(key)
            if spec is None:
                spec = properties.get(_camel(key))
                if spec is None:
                    raise Refused(f'Invalid JSON payload received. Unknown name "{key}"{at}: '
                                  "Cannot find field.", _join(path, key))
            if item is None:  # proto3 JSON: null is the field's default, i.e. unset
                if self.keep_nulls:
                    out[key] = None
                    continue
                self.changed = True
                continue
            field = _join(path, snake(key))
            out[key] = self._value(item, spec, field, depth + 1, f"{name}.{key}")
            self._limit(name, key, out[key], field)
        for key, spec in properties.items():
            required = (spec.get("annotations") or {}).get("required") or ()
            if self.method.id in required and key not in out and _camel(key) not in out:
                raise Refused(f"Required field '{_join(path, snake(key))}' not specified",
                              _join(path, snake(key)))
        return out

    def _value(self, value: Any, spec: dict[str, Any], path: str, depth: int, owner: str
               ) -> Any:
        if depth > MAX_DEPTH:
            raise Refused("Invalid JSON payload received. Message too deep: at most "
                          f"{MAX_DEPTH} levels of nesting.", path)
        if "$ref" in spec:
            ref = spec["$ref"]
            if not isinstance(value, dict):
                raise Refused(f"Invalid value at '{path}' ({ref}), {_shown(value)}", path)
            return self._message(value, self.schemas.get(ref, {}), ref, path, depth)
        kind = spec.get("type")
        if kind == "any":
            return value
        if kind == "array":
            if not isinstance(value, list):
                raise Refused(f"Invalid value at '{path}' (repeated), {_shown(value)}", path)
            items = spec.get("items", {})
            out = []
            for i, item in enumerate(value):
                if item is None:
                    raise Refused(f"Invalid value at '{path}[{i}]': null is not allowed in "
                                  "a list", f"{path}[{i}]")
                out.append(self._value(item, items, f"{path}[{i}]", depth + 1, owner))
            return out
        if kind == "object":
            if not isinstance(value, dict):
                raise Refused(f"Invalid value at '{path}' (map), {_shown(value)}", path)
            if "properties" in spec:
                return self._message(value, spec, owner, path, depth)
            inner = spec.get("additionalProperties")
            if inner is None:
                return value
            out_map = {}
            for key, item in value.items():
                if item is None and self.keep_nulls:
                    out_map[key] = None
                    continue
                if item is None:
                    raise Refused(f"Invalid value at '{path}[{key}]': a map value may not "
                                  "be null", f"{path}[{key}]")
                out_map[key] = self._value(item, inner, f"{path}[{key}]", depth + 1, owner)
            return out_map
        return _scalar(value, spec, path)

    def _limit(self, ref: str, key: str, value: Any, path: str) -> None:
        limit = SIZE_LIMITS.get((ref, key))
        if limit is None:
            return
        problem = _over(limit, value)
        if problem:
            raise Refused(f"Invalid value at '{path}': {problem}", path)


def _over(limit: dict[str, int], value: Any) -> str | None:
    """What of a documented limit the value exceeds, or None."""
    if isinstance(value, str):
        if "chars" in limit and len(value) > limit["chars"]:
            return f"must be at most {limit['chars']} characters long (it is {len(value)})"
        size = len(value.encode())
        if "bytes" in limit and size > limit["bytes"]:
            return f"must be at most {limit['bytes']} bytes (it is {size})"
    if isinstance(value, dict):
        if "entries" in limit and len(value) > limit["entries"]:
            return f"at most {limit['entries']} entries (there are {len(value)})"
        for key, item in value.items():
            if "key_chars" in limit and not 1 <= len(key) <= limit["key_chars"]:
                return f"key {_shown(key)} must be 1 to {limit['key_chars']} characters"
            if "value_chars" in limit and isinstance(item, str) and \
                    len(item) > limit["value_chars"]:
                return f"the value of {_shown(key)} must be at most {limit['value_chars']} " \
                       "characters"
            if "value_bytes" in limit and isinstance(item, str) and \
                    len(item.encode()) > limit["value_bytes"]:
                return f"the value of {_shown(key)} must be at most {limit['value_bytes']} bytes"
    if isinstance(value, list):
        if "entries" in limit and len(value) > limit["entries"]:
            return f"at most {limit['entries']} entries (there are {len(value)})"
        if "total_bytes" in limit:
            total = sum(len(str(v).encode()) for item in value if isinstance(item, dict)
                        for v in item.values())
            if total > limit["total_bytes"]:
                return f"the total size must be less than {limit['total_bytes']} bytes"
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _scalar(value: Any, spec: dict[str, Any], path: str) -> Any:
    """A string, number, boolean or enum value as proto3 JSON accepts it."""
    kind, fmt = spec.get("type"), spec.get("format", "")
    proto = PROTO_TYPES.get(fmt, f"TYPE_{str(kind).upper()}")
    bad = Refused(f"Invalid value at '{path}' ({proto}), {_shown(value)}", path)
    if "enum" in spec:
        names = spec["enum"]
        if isinstance(value, str) and value in names:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
            return value
        raise Refused(f"Invalid value at '{path}' (TYPE_ENUM), {_shown(value)}", path)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise bad
        return value
    if kind == "integer" or fmt in INT_RANGES:
        number = _integer(value)
        low, high = INT_RANGES.get(fmt, INT_RANGES["int64"])
        if number is None or not low <= number <= high:
            raise bad
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise bad
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                raise bad from None
        return value
    if not isinstance(value, str):  # type string
        raise bad
    _string_format(value, fmt, bad)
    pattern = spec.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        raise Refused(f"Invalid value for field '{path}': {_shown(value)}. Must be a match "
                      f"of regex '{pattern}'", path)
    return value


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def _string_format(value: str, fmt: str, bad: Refused) -> None:
    if fmt == "byte":
        try:
            base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4),
                             validate=True)
        except (binascii.Error, ValueError):
            raise bad from None
    elif fmt == "google-duration" and not _DURATION.fullmatch(value):
        raise bad
    elif fmt == "google-datetime":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise bad from None


# -- answers ----------------------------------------------------------------------

def conform(value: Any, spec: dict[str, Any], schemas: dict[str, Any], path: str,
            unknown: list[str]) -> Any:
    """The answer as the description defines it: int64 as strings, undefined fields
    left out (their paths go to `unknown`)."""
    if "$ref" in spec or "properties" in spec:
        if not isinstance(value, dict):
            return value
        properties = (schemas.get(spec["$ref"], {}) if "$ref" in spec else spec).get(
            "properties", {})
        out = {}
        for key, item in value.items():
            inner = properties.get(key)
            if inner is None:
                unknown.append(_join(path, key))
            elif isinstance(item, dict | list) or (type(item) is int and inner.get(
                    "format") in ("int64", "uint64")):
                out[key] = conform(item, inner, schemas, _join(path, key), unknown)
            else:  # a string, a boolean, a 32-bit number: as it is
                out[key] = item
        return out
    kind = spec.get("type")
    if kind == "array" and isinstance(value, list):
        items = spec.get("items", {})
        return [conform(item, items, schemas, f"{path}[]", unknown) for item in value]
    if kind == "object" and isinstance(value, dict) and "additionalProperties" in spec:
        inner = spec["additionalProperties"]
        return {k: conform(v, inner, schemas, f"{path}{{}}", unknown) for k, v in value.items()}
    if spec.get("format") in ("int64", "uint64") and isinstance(value, int) and \
            not isinstance(value, bool):
        return str(value)
    return value


# -- connector calls -----------------------------------------------------------

def check_connector(name: str, args: dict[str, Any]) -> str | None:
    """Why Google would refuse a workflow's connector call (its arguments are the
    method's parameters, and `body` its request body), or None; a connector no
    document here describes passes."""
    api, _, rest = name.removeprefix("googleapis.").partition(".")
    _version, _, method_name = rest.partition(".")
    method = routes().method(f"{api}.{method_name}")
    if method is None:
        return None
    # uploadType: media (a method with a media upload route): `body` is the
    # object's content, not the method's request resource
    media_body = args.get("uploadType") == "media" and any(
        m.id == method.id and m.media == "upload" for m in routes().methods)
    try:
        values = {}
        for key, value in args.items():
            if key == "body" and media_body:
                continue
            if key == "body" and method.request:
                BodyChecker(method).check(value)
                continue
            spec = method.parameters.get(key)
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if spec is not None and spec.get("location") == "path":
                values[key] = text
                continue
            check_query(method, {key: [text]})
        names = [n for n in method.path_names if n in values]
        check_path(replace(method, path_names=tuple(names)), [values[n] for n in names])
        # a `{+name}` method's connector takes the documented path parameter (name,
        # parent: a whole resource name, held to its pattern), not the flat path's
        documented = [n for n, spec in method.parameters.items()
                      if spec.get("location") == "path"]
        for key in documented:
            pattern = method.parameters[key].get("pattern") or ""
            if key in values and key not in method.path_names and pattern.startswith("^") \
                    and not re.fullmatch(pattern, values[key]):
                return (f"Invalid value for field '{key}': '{values[key]}'. Must be a match "
                        f"of regex '{pattern}'")
        missing = [n for n in documented if n not in values]
        if missing:
            return f"Required parameter '{missing[0]}' not specified"
    except Refused as exc:
        return exc.message
    return None


# -- the front ------------------------------------------------------------------

class Checked:
    """The APIs of serve behind the check: an Api that runs the check, then asks
    each API in turn, then makes the answer match the description."""

    def __init__(self, apis: Sequence[Api], log: Callable[[str], None],
                 table: Routes | None = None) -> None:
        self.apis = list(apis)
        self.log = log
        self.routes = table or routes()
        self._reported: set[str] = set()

    def streams(self, path: str) -> bool:
        """Whether an API behind the check reads this path's body as it arrives."""
        return any(getattr(api, "streams", None) and api.streams(path) for api in self.apis)

    def handle(self, request: Request) -> Response | None:
        method = self.routes.find(request.method, request.path, request.raw_path)
        if method is None:
            return self._ask(request)
        try:
            checked = self.check(method, request)
        except Refused as exc:
            return refusal(method, exc)
        response = self._ask(checked)
        if response is not None:
            response = self._conform(method, response)
        return response

    def check(self, method: Method, request: Request) -> Request:
        """The request as the handlers get it (query names as documented, nulls
        dropped), or Refused."""
        path = request.raw_path or request.path if method.document.encoded_paths \
            else request.path
        match = method.pattern.fullmatch(path)
        assert match is not None
        check_path(method, match.groups())
        query = check_query(method, request.query, request.headers.get("user-agent", ""))
        body, stream = request.body, request.stream
        if method.media == "upload" and (query.get("uploadType") or [""])[-1] == "resumable":
            # a resumable upload starts with the object's metadata as JSON (media follows
            # in later requests); other uploads' bodies are media and stream on unread
            if stream is not None and stream.length <= RESUMABLE_START_BYTES:
                body, stream = stream.read(), None
        elif method.media:
            return request if query == request.query else replace(request, query=query)
        if method.request and method.http_method in ("POST", "PUT", "PATCH") and \
                stream is None:
            checker = BodyChecker(method)
            cleaned = checker.check(parse_body(body))
            if checker.changed:
                body = json.dumps(cleaned, ensure_ascii=False).encode()
        if query == request.query and body is request.body and stream is request.stream:
            return request
        return replace(request, query=query, body=body, stream=stream)

    def _ask(self, request: Request) -> Response | None:
        for api in self.apis:
            response = api.handle(request)
            if response is not None:
                return response
        return None

    def _conform(self, method: Method, response: Response) -> Response:
        if response.value is None or response.status >= 300 or not method.response:
            return response
        unknown: list[str] = []
        value = conform(response.value, {"$ref": method.response}, method.document.schemas,
                        "", unknown)
        for path in unknown:
            key = f"{method.id}:{path}"
            if key not in self._reported:
                self._reported.add(key)
                self.log(f"wfgen serve: answer field {path!r} of {method.id} is not in "
                         "Google's description; left out")
        if value == response.value and not unknown:
            return response
        return replace(Response.of_json(value, response.status), headers=response.headers)


def refusal(method: Method, exc: Refused) -> Response:
    """The error body of the API: Compute Engine's legacy shape or google.rpc.Status."""
    status_name = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "INVALID_ARGUMENT"}
    if method.api in LEGACY_ERRORS:
        return Response.of_json({"error": {
            "code": exc.status, "message": exc.message,
            "errors": [{"message": exc.message, "domain": "global", "reason": "invalid"}]}},
            exc.status)
    violation = {"description": exc.message}
    if exc.field:
        violation = {"field": exc.field, **violation}
    return Response.of_json({"error": {
        "code": exc.status, "message": exc.message,
        "status": status_name.get(exc.status, "INVALID_ARGUMENT"),
        "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                     "fieldViolations": [violation]}]}}, exc.status)
