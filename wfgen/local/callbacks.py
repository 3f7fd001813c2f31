"""Local Workflows callbacks: `events.create_callback_endpoint` / `await_callback`.

Endpoints are served over HTTP on 127.0.0.1 with the real URL path shape
(/v1/projects/P/locations/L/workflows/W/executions/E/callbacks/ID). A request
needs `Authorization: Bearer TOKEN` with a token that a local metadata server
issued (the VM's own service-account token, as on GCP). Requests that arrive
before the workflow awaits are held for it, in order, as the service does."""

from __future__ import annotations

import contextlib
import json
import queue
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from wfgen.engine.errors import make_error
from wfgen.local.loopback import LoopbackServer, Request, Response

TokenCheck = Callable[[str], bool]
MAX_BODY = 1 << 20


@dataclass
class Endpoint:
    """One callback endpoint and the requests held for it."""

    id: str
    method: str
    url: str
    held: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)


class CallbackServer:
    """Serves every callback endpoint of a local run on one loopback port.

    `handle(request)` is the API (wfgen.local.loopback): `start()` runs it on its
    own LoopbackServer, and `wfgen serve` can mount it beside its other APIs.
    Bad requests get a 4xx and never a traceback (the base server's guards)."""

    def __init__(self, check_token: TokenCheck, *, refuse_first: int = 0,
                 on_request: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.check_token = check_token
        self.refuse_remaining = refuse_first
        self.refused = 0
        self.on_request = on_request
        self._endpoints: dict[str, Endpoint] = {}
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None
        self._base_url: str | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> CallbackServer:
        self._server = LoopbackServer([self], log=_log)
        self._server.start()
        self._base_url = self._server.url
        return self

    def mount(self, base_url: str) -> CallbackServer:
        """Serve through someone else's server at base_url (its handle() is called)."""
        self._base_url = base_url.rstrip("/")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._base_url is not None, "start() the server first"
        return self._base_url

    # -- the events.* functions --------------------------------------------
    def create_endpoint(self, env: dict[str, str], method: str = "POST") -> dict[str, Any]:
        method = str(method).upper()
        if method not in {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}:
            raise make_error("ValueError", f"unsupported http_callback_method {method!r}")
        callback_id = secrets.token_hex(16)
        path = (f"/v1/projects/{env.get('GOOGLE_CLOUD_PROJECT_ID', 'local-project')}"
                f"/locations/{env.get('GOOGLE_CLOUD_LOCATION', 'local')}"
                f"/workflows/{env.get('GOOGLE_CLOUD_WORKFLOW_ID', 'workflow')}"
                f"/executions/{env.get('GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID', 'execution')}"
                f"/callbacks/{callback_id}")
        endpoint = Endpoint(callback_id, method, self.base_url + quote(path))
        with self._lock:
            self._endpoints[path] = endpoint
        return {"url": endpoint.url}

    def await_request(self, callback: Any, timeout: float,
                      cancel: threading.Event | None = None) -> dict[str, Any]:
        if not isinstance(callback, dict) or not isinstance(callback.get("url"), str):
            raise make_error("TypeError", "callback must be the map that "
                             "events.create_callback_endpoint returned")
        endpoint = self._endpoints.get(unquote(urlsplit(callback["url"]).path))
        if endpoint is None:
            raise make_error("ValueError", f"unknown callback {callback['url']}")
        deadline = time.monotonic() + max(0.0, float(timeout))
        while True:  # in slices, so that a cancelled execution stops waiting at once
            left = deadline - time.monotonic()
            if cancel is not None and cancel.is_set():
                raise make_error("CancelledError", "the execution was cancelled")
            try:
                return endpoint.held.get(timeout=max(0.0, min(left, 0.2)))
            except queue.Empty:
                if left <= 0.2:
                    raise make_error("TimeoutError",
                                     f"Timeout waiting for callback ({timeout:g} s)") from None

    # -- HTTP side -------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        """The API: a callback request -> its answer; None for paths not of callbacks."""
        endpoint = self._endpoints.get(request.path)
        if endpoint is None:
            if "/callbacks/" not in request.path:
                return None
            return _error(404, "callback not found")
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token or not self.check_token(token):
            return _error(401, "missing or invalid bearer token")
        method = request.method
        if method != endpoint.method:
            return _error(405, f"this callback takes {endpoint.method}")
        with self._lock:
            first = next(iter(self._endpoints.values()))  # faults act on the first attempt
            if self.refuse_remaining > 0 and endpoint is first:
                self.refuse_remaining -= 1
                self.refused += 1
                return _error(503, "refused (fault injection)")
        if len(request.body) > MAX_BODY:
            return _error(413, "body too large")
        raw = request.body
        body: Any = raw.decode("utf-8", errors="replace")
        if "json" in request.headers.get("content-type", "").lower() and raw:
            with contextlib.suppress(ValueError, RecursionError):
                body = json.loads(raw)
        headers = {_header_name(k): v for k, v in request.headers.items()
                   if k != "authorization"}
        query = urlencode(request.query, doseq=True)
        event = {
            "http_request": {
                "body": body,
                "headers": headers,
                "method": method,
                "query": {k: v if len(v) > 1 else v[0] for k, v in request.query.items()},
                "url": quote(request.path) + (f"?{query}" if query else ""),
            },
            "received_time": datetime.now(UTC).isoformat(timespec="microseconds"),
            "type": "HTTP",
        }
        endpoint.held.put(event)
        if self.on_request:
            self.on_request(endpoint.url, event)
        return Response.of_json({})


def _error(status: int, message: str) -> Response:
    return Response.of_json({"error": {"code": status, "message": message}}, status)


def _header_name(name: str) -> str:
    """content-type -> Content-Type (the base server lower-cases header names)."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _log(line: str) -> None:
    print(f"wfgen callbacks: {line}", file=sys.stderr, flush=True)
