"""Cloud Logging API v2 `POST /v2/entries:list` over what local VMs printed.

Every console line of a local VM (its startup and shutdown scripts, the
container) is a LogEntry of the `gce_instance` resource, kept after the VM is
deleted, so a job's logs stay readable after it ends, as on Google Cloud:

    {"logName": "projects/P/logs/serialconsole.googleapis.com%2Fserial_port_1_output",
     "resource": {"type": "gce_instance",
                  "labels": {"project_id": P, "zone": Z, "instance_id": ID}},
     "labels": {"compute.googleapis.com/resource_name": NAME},
     "textPayload": LINE, "timestamp": ..., "receiveTimestamp": ..., "severity": "DEFAULT",
     "insertId": ...}

The request takes `resourceNames` (projects/P), `filter` in the Logging query
language (wfgen.server.filters: the fields above, timestamps compared as
times, severity in its order), `orderBy` ("timestamp asc" or "timestamp desc"),
`pageSize` (default 50, at most 1000) and `pageToken`. Errors follow
google.rpc.Status, as the service's do."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from wfgen.local.compute import ConsoleLine, Instance, LocalCompute
from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server.filters import Compare, FilterError, Matcher, parse_time

PATH = "/v2/entries:list"
SERIAL_LOG = "serialconsole.googleapis.com%2Fserial_port_1_output"
DEFAULT_PAGE = 50
MAX_PAGE = 1000
SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT",
              "EMERGENCY"]


def _severity(text: str) -> int:
    """Severity names (or their numbers, 0-800) in the service's order."""
    name = text.strip().upper()
    if name in SEVERITIES:
        return SEVERITIES.index(name) * 100
    try:
        return int(name)
    except ValueError:
        raise FilterError(f"unknown severity {text!r}") from None


@lru_cache(maxsize=4096)
def _second(second: int) -> str:
    """"YYYY-MM-DDTHH:MM:SS." of a whole second: a follower asks for the same
    lines again and again, and formatting a datetime was most of serve's time."""
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def _rfc3339(when: float) -> str:
    fraction, whole = math.modf(when)  # as datetime.fromtimestamp rounds
    second, micro = int(whole), round(fraction * 1_000_000)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    return f"{_second(second)}{micro:06d}000Z"


def _not_before(matcher: Matcher) -> float | None:
    """The earliest time a `timestamp>=T` (or `>`) term of the filter lets
    through, a little early: lines before it need no entry built (the filter
    itself still decides the rest)."""
    bounds = [parse_time(term.value) for term in matcher.conjuncts()
              if isinstance(term, Compare) and term.path == ("timestamp",)
              and term.op in (">=", ">")]
    found = [b.timestamp() - 0.001 for b in bounds if b is not None]
    return max(found) if found else None


def entry(record: Instance, line: ConsoleLine) -> dict[str, Any]:
    """One console line as the LogEntry Cloud Logging shows for it."""
    stamp = _rfc3339(line.time)
    return {
        "logName": f"projects/{record.project}/logs/{SERIAL_LOG}",
        "resource": {"type": "gce_instance",
                     "labels": {"project_id": record.project, "zone": record.zone,
                                "instance_id": record.id}},
        "labels": {"compute.googleapis.com/resource_name": record.name},
        "textPayload": line.text, "timestamp": stamp, "receiveTimestamp": stamp,
        "severity": "DEFAULT", "insertId": f"{line.seq:012x}",
    }


def _token(key: tuple[float, int]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]!r}:{key[1]}".encode()).decode()


def _untoken(token: str) -> tuple[float, int]:
    try:
        when, _, seq = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return float(when), int(seq)
    except ValueError:
        raise ApiError(400, f"Invalid page token: {token!r}") from None


class LoggingApi:
    """entries:list for the consoles of one LocalCompute's VMs."""

    def __init__(self, compute: LocalCompute) -> None:
        self.compute = compute

    def handle(self, request: Request) -> Response | None:
        if request.path != PATH:
            return None
        if request.method != "POST":
            raise ApiError(405, f"{request.method} is not allowed on {PATH}; use POST")
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: the body must be an object")
        return Response.of_json(self.list_entries(body))

    def list_entries(self, body: dict[str, Any]) -> dict[str, Any]:
        projects = self._projects(body)
        text = body.get("filter") or ""
        if not isinstance(text, str):
            raise ApiError(400, "Invalid value at 'filter': a string is expected")
        try:
            matcher = Matcher(text, orders={"severity": _severity})
        except FilterError as exc:
            raise ApiError(400, f"Unparseable filter: {exc}") from None
        order = " ".join(str(body.get("orderBy") or "timestamp asc").split()).lower()
        if order not in ("timestamp", "timestamp asc", "timestamp desc"):
            raise ApiError(400, f"Invalid orderBy: {body.get('orderBy')!r}; only "
                           "\"timestamp asc\" and \"timestamp desc\" are supported")
        descending = order.endswith("desc")
        size = body.get("pageSize", DEFAULT_PAGE)
        try:
            size = int(size or DEFAULT_PAGE)
        except (TypeError, ValueError):
            raise ApiError(400, f"Invalid value at 'page_size': {size!r}") from None
        if size < 0:
            raise ApiError(400, "pageSize must not be negative")
        size = min(size, MAX_PAGE)
        after = _untoken(str(body["pageToken"])) if body.get("pageToken") else None

        found: list[tuple[tuple[float, int], dict[str, Any]]] = []
        try:
            for key, item in self._entries(projects, matcher):
                if after is not None and (key <= after if not descending else key >= after):
                    continue
                if matcher(item):
                    found.append((key, item))
        except FilterError as exc:
            raise ApiError(400, f"Unparseable filter: {exc}") from None
        found.sort(key=lambda pair: pair[0], reverse=descending)
        page = found[:size]
        result: dict[str, Any] = {}
        if page:
            result["entries"] = [item for _key, item in page]
        if len(found) > size:
            result["nextPageToken"] = _token(page[-1][0])
        return result

    def _projects(self, body: dict[str, Any]) -> set[str]:
        names = body.get("resourceNames") or []
        legacy = body.get("projectIds") or []
        if not isinstance(names, list) or not isinstance(legacy, list):
            raise ApiError(400, "resourceNames must be a list of strings")
        projects = {str(p) for p in legacy}
        for name in names:
            kind, _, rest = str(name).partition("/")
            if kind != "projects" or not rest:
                raise ApiError(400, f"Invalid resource name {name!r}: wfgen serve holds the "
                               "logs of projects only (projects/PROJECT_ID)")
            projects.add(rest.split("/", 1)[0])
        if not projects:
            raise ApiError(400, "resourceNames is required (e.g. [\"projects/my-project\"])")
        return projects

    def _entries(self, projects: set[str], matcher: Matcher
                 ) -> Iterator[tuple[tuple[float, int], dict[str, Any]]]:
        """Entries of these projects; a VM that the filter's terms about the VM itself
        (name, id, zone, log) rule out is skipped without looking at its lines."""
        per_vm = [term for term in matcher.conjuncts()
                  if matcher.about_only(term, ("resource", "labels", "logName"))]
        since = _not_before(matcher)
        named = _name_terms(matcher)
        records = [r for r in self.compute.known_instances() if r.project in projects]
        for record in records:
            if not record.console.lines or not all(rule(record.name) for rule in named):
                continue
            # the VM's own fields (a line's do not matter here) before its lines are copied
            if per_vm and not all(matcher.holds(t, entry(record, _ANY_LINE)) for t in per_vm):
                continue
            for line in record.console.snapshot():
                if since is None or line.time >= since:
                    yield (line.time, line.seq), entry(record, line)


_ANY_LINE = ConsoleLine(0, 0.0, "")
NAME_PATH = ("labels", "compute.googleapis.com/resource_name")


def _contains(part: str) -> Callable[[str], bool]:
    return lambda name: part in name.lower()


def _name_terms(matcher: Matcher) -> list[Callable[[str], bool]]:
    """The filter's terms on the VM's name (`labels."compute.googleapis.com/
    resource_name"` = or : a text) as tests of a name, to pass over the other VMs
    without building an entry for each: a follower asks for one VM's lines at a
    time, and serve keeps thousands of VMs' logs. The filter still decides."""
    rules: list[Callable[[str], bool]] = []
    for term in matcher.conjuncts():
        if not isinstance(term, Compare) or term.path != NAME_PATH:
            continue
        value = term.value
        if term.op == "=" and parse_time(value) is None:
            rules.append(value.__eq__)
        elif term.op == ":" and value != "*":
            rules.append(_contains(value.lower()))
    return rules
