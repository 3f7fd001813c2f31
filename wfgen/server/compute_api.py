"""Compute Engine API v1 over REST, on a LocalCompute: what `gcloud compute
instances ...` and `compute_v1.InstancesClient(transport="rest")` call.

    GET    /compute/v1/projects/P/zones/Z/instances                 list
    POST   /compute/v1/projects/P/zones/Z/instances                 insert
    GET    /compute/v1/projects/P/aggregated/instances              aggregatedList
    GET    /compute/v1/projects/P/zones/Z/instances/NAME            get
    DELETE /compute/v1/projects/P/zones/Z/instances/NAME            delete
    POST   /compute/v1/projects/P/zones/Z/instances/NAME/stop|start
    GET    /compute/v1/projects/P/zones/Z/instances/NAME/serialPort getSerialPortOutput
    GET    /compute/v1/projects/P/zones/Z/operations/OP              zoneOperations.get
    POST   /compute/v1/projects/P/zones/Z/operations/OP/wait         zoneOperations.wait
    GET    /compute/v1/projects/P/global/images/family/F            images.getFromFamily
    GET    /compute/v1/projects/P/regions/R/resourcePolicies        resourcePolicies.list
    POST   /compute/v1/projects/P/regions/R/resourcePolicies        resourcePolicies.insert
    GET    /compute/v1/projects/P/regions/R/resourcePolicies/NAME   resourcePolicies.get
    DELETE /compute/v1/projects/P/regions/R/resourcePolicies/NAME   resourcePolicies.delete
    GET    /compute/v1/projects/P/regions/R/operations/OP            regionOperations.get
    POST   /compute/v1/projects/P/regions/R/operations/OP/wait       regionOperations.wait
    POST   /batch/compute/v1                                        multipart/mixed batch

Errors use the compute legacy shape (`error.errors[].reason`), which is what
gcloud prints ("Could not fetch resource: - ...") and what the Python client
maps to NotFound/Conflict. The batch endpoint is the one gcloud uses for
several requests in one command (`gcloud compute instances delete a b`)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from wfgen.local.compute import API, ComputeError, LocalCompute
from wfgen.local.loopback import Request, Response
from wfgen.server.filters import FilterError, Matcher

PREFIX = "/compute/v1/projects/"
BATCH_PATH = "/batch/compute/v1"
SEG = r"([^/]+)"
MAX_RESULTS = 500


def _error(status: int, message: str, reason: str) -> Response:
    return Response.of_json(ComputeError(status, message, reason).body(), status)


def _int(request: Request, name: str, default: int | None) -> int | None:
    text = request.arg(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ComputeError(400, f"Invalid value for field '{name}': '{text}'. "
                           "Must be an integer.", "invalid") from None


def _page(items: list[dict[str, Any]], request: Request) -> tuple[list[dict[str, Any]], str]:
    """One page of a list and the token of the next (an opaque offset)."""
    size = _int(request, "maxResults", MAX_RESULTS) or MAX_RESULTS
    if size < 0:
        raise ComputeError(400, "Invalid value for field 'maxResults': "
                           f"'{size}'. Must be greater than or equal to 0.", "invalid")
    size = min(size, MAX_RESULTS)
    token = request.arg("pageToken") or ""
    offset = 0
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError:
            raise ComputeError(400, f"Invalid value for field 'pageToken': '{token}'.",
                               "invalid") from None
    page = items[offset:offset + size]
    more = offset + size < len(items)
    return page, base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else ""


def _json_body(request: Request) -> Any:
    """An insert's body, or Compute Engine's 400 for JSON that does not parse."""
    try:
        return json.loads(request.body or b"{}")
    except ValueError as exc:
        raise ComputeError(400, f"Invalid JSON payload received. {exc}",
                           "parseError") from None


def _filtered(items: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    text = request.arg("filter") or ""
    if text.strip():
        try:
            matcher = Matcher(text)
            items = [item for item in items if matcher(item)]
        except FilterError as exc:
            raise ComputeError(400, f"Invalid value for field 'filter': '{text}'. {exc}",
                               "invalid") from None
    order = (request.arg("orderBy") or "").strip()
    if order:
        field, _, direction = order.partition(" ")
        if field not in ("name", "creationTimestamp") or direction.strip() not in (
                "", "asc", "desc"):
            raise ComputeError(400, f"Invalid value for field 'orderBy': '{order}'. Only "
                               "ordering by name or creationTimestamp is supported.", "invalid")
        items = sorted(items, key=lambda i: str(i.get(field, "")),
                       reverse=direction.strip() == "desc")
    return items


class ComputeApi:
    """The REST front of one LocalCompute (mounted on the serve LoopbackServer)."""

    def __init__(self, compute: LocalCompute) -> None:
        self.compute = compute
        # what answers a batch part: serve sets its checked front (each part is checked
        # against the Discovery document as a request of its own would be)
        self.answer_part: Callable[[Request], Response | None] = self.handle
        z = rf"^{PREFIX}{SEG}/zones/{SEG}"
        r = rf"^{PREFIX}{SEG}/regions/{SEG}"
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            ("GET", re.compile(rf"{z}/instances$"), self.list),
            ("POST", re.compile(rf"{z}/instances$"), self.insert),
            ("GET", re.compile(rf"^{PREFIX}{SEG}/aggregated/instances$"), self.aggregated),
            ("GET", re.compile(rf"{z}/instances/{SEG}$"), self.get),
            ("DELETE", re.compile(rf"{z}/instances/{SEG}$"), self.delete),
            ("POST", re.compile(rf"{z}/instances/{SEG}/stop$"), self.stop),
            ("POST", re.compile(rf"{z}/instances/{SEG}/start$"), self.start),
            ("GET", re.compile(rf"{z}/instances/{SEG}/serialPort$"), self.serial_port),
            ("GET", re.compile(rf"{z}/operations/{SEG}$"), self.get_operation),
            ("POST", re.compile(rf"{z}/operations/{SEG}/wait$"), self.wait_operation),
            ("GET", re.compile(rf"^{PREFIX}{SEG}/global/images/family/{SEG}$"),
             self.image_from_family),
            ("GET", re.compile(rf"{r}/resourcePolicies$"), self.list_policies),
            ("POST", re.compile(rf"{r}/resourcePolicies$"), self.insert_policy),
            ("GET", re.compile(rf"{r}/resourcePolicies/{SEG}$"), self.get_policy),
            ("DELETE", re.compile(rf"{r}/resourcePolicies/{SEG}$"), self.delete_policy),
            ("GET", re.compile(rf"{r}/operations/{SEG}$"), self.get_operation),
            ("POST", re.compile(rf"{r}/operations/{SEG}/wait$"), self.wait_operation),
        ]

    # -- dispatch --------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        if request.path == BATCH_PATH:
            if request.method != "POST":
                return _error(405, f"{request.method} is not allowed on {BATCH_PATH}",
                              "methodNotAllowed")
            return self.batch(request)
        if not request.path.startswith(PREFIX):
            return None
        allowed = False
        for method, pattern, action in self.routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed = True
                continue
            try:
                return action(request, *match.groups())
            except ComputeError as exc:
                return Response.of_json(exc.body(), exc.status)
        if allowed:
            return _error(405, f"{request.method} is not allowed on {request.path}",
                          "methodNotAllowed")
        return _error(404, f"The resource '{request.path.removeprefix('/compute/v1/')}' was "
                      "not found (wfgen serve serves instances, zone operations, "
                      "images.getFromFamily, resource policies and region operations)",
                      "notFound")

    # -- instances -------------------------------------------------------
    def list(self, request: Request, project: str, zone: str) -> Response:
        items = _filtered(self.compute.list_instances(project, zone), request)
        page, token = _page(items, request)
        body: dict[str, Any] = {"kind": "compute#instanceList",
                                "id": f"projects/{project}/zones/{zone}/instances",
                                "items": page,
                                "selfLink": f"{API}/projects/{project}/zones/{zone}/instances"}
        if token:
            body["nextPageToken"] = token
        return Response.of_json(body)

    def aggregated(self, request: Request, project: str) -> Response:
        items = _filtered(self.compute.list_instances(project), request)
        page, token = _page(items, request)
        zones = sorted(self.compute.zones.get(project, set()) | {
            item["zone"].rsplit("/", 1)[-1] for item in page})
        scopes: dict[str, Any] = {}
        for zone in zones:
            scope = f"zones/{zone}"
            found = [item for item in page if item["zone"].endswith(f"/zones/{zone}")]
            if found:
                scopes[scope] = {"instances": found}
            elif (request.arg("includeAllScopes") or "").lower() == "true":
                scopes[scope] = {"warning": {
                    "code": "NO_RESULTS_ON_PAGE",
                    "message": f"There are no results for scope '{scope}' on this page.",
                    "data": [{"key": "scope", "value": scope}]}}
        body: dict[str, Any] = {"kind": "compute#instanceAggregatedList",
                                "id": f"projects/{project}/aggregated/instances",
                                "items": scopes,
                                "selfLink": f"{API}/projects/{project}/aggregated/instances"}
        if token:
            body["nextPageToken"] = token
        return Response.of_json(body)

    def insert(self, request: Request, project: str, zone: str) -> Response:
        return Response.of_json(self.compute.insert_instance(project, zone,
                                                             _json_body(request)))

    def get(self, request: Request, project: str, zone: str, name: str) -> Response:
        return Response.of_json(self.compute.get_instance(project, zone, name))

    def delete(self, request: Request, project: str, zone: str, name: str) -> Response:
        return Response.of_json(self.compute.delete_instance(project, zone, name))

    def stop(self, request: Request, project: str, zone: str, name: str) -> Response:
        return Response.of_json(self.compute.stop_instance(project, zone, name))

    def start(self, request: Request, project: str, zone: str, name: str) -> Response:
        return Response.of_json(self.compute.start_instance(project, zone, name))

    def serial_port(self, request: Request, project: str, zone: str, name: str) -> Response:
        port = _int(request, "port", 1) or 1
        if not 1 <= port <= 4:
            raise ComputeError(400, f"Invalid value for field 'port': '{port}'. "
                               "Must be between 1 and 4.", "invalid")
        start = _int(request, "start", None)
        return Response.of_json(self.compute.serial_port_output(project, zone, name, start,
                                                                port))

    # -- resource policies (compact placement) ---------------------------
    def list_policies(self, request: Request, project: str, region: str) -> Response:
        items = _filtered(self.compute.list_policies(project, region), request)
        page, token = _page(items, request)
        link = f"{API}/projects/{project}/regions/{region}/resourcePolicies"
        body: dict[str, Any] = {"kind": "compute#resourcePolicyList",
                                "id": f"projects/{project}/regions/{region}/resourcePolicies",
                                "items": page, "selfLink": link}
        if token:
            body["nextPageToken"] = token
        return Response.of_json(body)

    def insert_policy(self, request: Request, project: str, region: str) -> Response:
        return Response.of_json(self.compute.insert_policy(project, region,
                                                           _json_body(request)))

    def get_policy(self, request: Request, project: str, region: str, name: str) -> Response:
        return Response.of_json(self.compute.get_policy(project, region, name))

    def delete_policy(self, request: Request, project: str, region: str, name: str
                      ) -> Response:
        return Response.of_json(self.compute.delete_policy(project, region, name))

    # -- operations and images -------------------------------------------
    def get_operation(self, request: Request, project: str, zone: str, op: str) -> Response:
        return Response.of_json(self.compute.get_operation(project, zone, op))

    def wait_operation(self, request: Request, project: str, zone: str, op: str) -> Response:
        return Response.of_json(self.compute.wait_operation(project, zone, op))

    def image_from_family(self, request: Request, project: str, family: str) -> Response:
        return Response.of_json(self.compute.image_from_family(project, family))

    # -- batch -----------------------------------------------------------
    def batch(self, request: Request) -> Response:
        """multipart/mixed: each part an HTTP/1.1 request; the answer, part for part."""
        match = re.search(r'boundary="?([^";]+)"?', request.headers.get("content-type", ""))
        if match is None:
            return _error(400, "a batch request needs Content-Type: multipart/mixed; "
                          "boundary=...", "invalid")
        boundary = match.group(1)
        answers = []
        for headers, payload in _parts(request.body, boundary):
            content_id = headers.get("content-id", "")
            inner = _inner_request(payload)
            if inner is None:
                response = _error(400, "a batch part is not an HTTP request", "invalid")
            else:
                response = self.answer_part(inner) or _error(
                    404, f"The resource '{inner.path}' was not found", "notFound")
            answers.append(_answer(content_id, response))
        out_boundary = "batch_wfgen_" + base64.urlsafe_b64encode(
            boundary.encode()[:24]).decode().rstrip("=")
        body = b"".join(f"--{out_boundary}\r\n".encode() + part for part in answers)
        body += f"--{out_boundary}--\r\n".encode()
        return Response(200, body, f"multipart/mixed; boundary={out_boundary}")


def _parts(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body: (lower-case headers, payload)."""
    marker = b"--" + boundary.encode()
    parts = []
    for chunk in body.split(marker)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        head, _, payload = _split_head(chunk)
        parts.append((_headers(head), payload.removesuffix(b"\r\n").removesuffix(b"\n")))
    return parts


def _split_head(data: bytes) -> tuple[bytes, bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in data:
            return data.partition(separator)
    return data, b"", b""


def _headers(head: bytes) -> dict[str, str]:
    headers = {}
    for line in head.decode("latin-1").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _inner_request(payload: bytes) -> Request | None:
    head, _, body = _split_head(payload)
    lines = head.decode("latin-1").splitlines()
    if not lines:
        return None
    fields = lines[0].split()
    if len(fields) < 2:
        return None
    method, target = fields[0].upper(), fields[1]
    split = urlsplit(target)
    headers = _headers("\n".join(lines[1:]).encode("latin-1"))
    return Request(method=method, path=unquote(split.path),
                   query=parse_qs(split.query, keep_blank_values=True), headers=headers,
                   body=body)


def _answer(content_id: str, response: Response) -> bytes:
    reply_id = content_id
    if content_id.startswith("<") and not content_id.startswith("<response-"):
        reply_id = "<response-" + content_id[1:]
    phrase = HTTPStatus(response.status).phrase if response.status in \
        HTTPStatus._value2member_map_ else ""
    head = (f"Content-Type: application/http\r\nContent-ID: {reply_id}\r\n\r\n"
            f"HTTP/1.1 {response.status} {phrase}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n\r\n")
    return head.encode() + response.body + b"\r\n"
