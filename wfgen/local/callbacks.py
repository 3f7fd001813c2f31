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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wfgen.engine.errors import make_error

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
    """Serves every callback endpoint of a local run on one loopback port."""

    def __init__(self, check_token: TokenCheck, *, refuse_first: int = 0,
                 on_request: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.check_token = check_token
        self.refuse_remaining = refuse_first
        self.refused = 0
        self.on_request = on_request
        self._endpoints: dict[str, Endpoint] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> CallbackServer:
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # a short poll interval: stop() waits for it, and every local run ends with one
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="wfgen-callbacks", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

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
        endpoint = Endpoint(callback_id, method, self.base_url + path)
        with self._lock:
            self._endpoints[path] = endpoint
        return {"url": endpoint.url}

    def await_request(self, callback: Any, timeout: float,
                      cancel: threading.Event | None = None) -> dict[str, Any]:
        if not isinstance(callback, dict) or not isinstance(callback.get("url"), str):
            raise make_error("TypeError", "callback must be the map that "
                             "events.create_callback_endpoint returned")
        endpoint = self._endpoints.get(urlsplit(callback["url"]).path)
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
    def _receive(self, handler: _Handler, method: str) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(handler.path)
        endpoint = self._endpoints.get(parts.path)
        if endpoint is None:
            return 404, {"error": {"code": 404, "message": "callback not found"}}
        auth = handler.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token or not self.check_token(token):
            return 401, {"error": {"code": 401, "message": "missing or invalid bearer token"}}
        if method != endpoint.method:
            message = f"this callback takes {endpoint.method}"
            return 405, {"error": {"code": 405, "message": message}}
        with self._lock:
            first = next(iter(self._endpoints.values()))  # faults act on the first attempt
            if self.refuse_remaining > 0 and endpoint is first:
                self.refuse_remaining -= 1
                self.refused += 1
                return 503, {"error": {"code": 503, "message": "refused (fault injection)"}}
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return 413, {"error": {"code": 413, "message": "body too large"}}
        raw = handler.rfile.read(length) if length else b""
        body: Any = raw.decode("utf-8", errors="replace")
        if "json" in (handler.headers.get("Content-Type") or "").lower() and raw:
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "authorization"}
        event = {
            "http_request": {
                "body": body,
                "headers": headers,
                "method": method,
                "query": {k: v if len(v) > 1 else v[0] for k, v in parse_qs(parts.query).items()},
                "url": handler.path,
            },
            "received_time": datetime.now(UTC).isoformat(timespec="microseconds"),
            "type": "HTTP",
        }
        endpoint.held.put(event)
        if self.on_request:
            self.on_request(endpoint.url, event)
        return 200, {}


class _Handler(BaseHTTPRequestHandler):
    server_owner: CallbackServer
    protocol_version = "HTTP/1.1"

    def _handle(self, method: str) -> None:
        status, payload = self.server_owner._receive(self, method)
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        return
