"""The one loopback HTTP server base: `wfgen serve`, the local callbacks and
the metadata servers all speak these request/response types.

An API is any object with `handle(request) -> Response | None` (None: not one
of mine, ask the next). The server never lets an exception escape as a
traceback: an API's ApiError becomes its error body, anything else a 500 in
the google.rpc.Status shape, logged as one line."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

MAX_BODY = 32 << 20  # a workflow source is at most 128 KB; batches of deletes are small

# google.rpc.Code names by HTTP status, for error bodies
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
                503: "UNAVAILABLE"}


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    raw_path: str = ""  # as sent, still percent-encoded (names that may hold '/')
    stream: BodyStream | None = None  # the unread body, for an API that streams it

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """The body as JSON ({} when empty); a bad body is a 400."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ApiError(400, f"Invalid JSON payload received. {exc}") from None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    # a body too big to hold: chunks written as they come (Content-Length in headers)
    stream: Iterable[bytes] | None = None

    @classmethod
    def of_json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value, ensure_ascii=False).encode())


class ApiError(Exception):
    """An error answered in the google.rpc.Status shape (Workflows, Executions,
    Scheduler, Logging); compute.py answers its own legacy shape."""

    def __init__(self, status: int, message: str, *, code_name: str | None = None,
                 resource: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code_name = code_name or STATUS_NAMES.get(status, "UNKNOWN")
        self.resource = resource

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.status, "message": self.message,
                                 "status": self.code_name}
        if self.resource:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.ResourceInfo",
                                 "resourceName": self.resource}]
        return Response.of_json({"error": error}, self.status)


class Api(Protocol):
    def handle(self, request: Request) -> Response | None: ...


class BodyStream:
    """A request body read as it arrives (Content-Length bytes), for APIs whose
    `streams(path)` says so: uploads far bigger than MAX_BODY, never held whole."""

    def __init__(self, rfile: Any, length: int) -> None:
        self._rfile = rfile
        self.length = length
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self.left:
            size = self.left
        data = self._rfile.read(size) if size else b""
        if size and not data:
            raise ConnectionError("the client closed the connection mid-body")
        self.left -= len(data)
        return data

    def drain(self, limit: int = 1 << 20) -> bool:
        """Read what the API left unread (up to limit); False: close the connection."""
        while self.left and limit > 0:
            limit -= len(self.read(min(self.left, 1 << 16)))
        return not self.left


Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (or `host`) dispatching to APIs in order."""

    def __init__(self, apis: Sequence[Api], *, host: str = "127.0.0.1", port: int = 0,
                 log: Log = _stderr) -> None:
        self.apis = list(apis)
        self.log = log
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._server = _Server((host, port), Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host}:{self.port}"

    def start(self, poll_interval: float = 0.5) -> LoopbackServer:
        """Serve on a daemon thread; stop() waits up to poll_interval for it."""
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": poll_interval},
                                        name="wfgen-serve-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def dispatch(self, request: Request) -> Response:
        try:
            for api in self.apis:
                response = api.handle(request)
                if response is not None:
                    return response
            raise ApiError(404, f"no API here serves {request.method} {request.path}")
        except ApiError as exc:
            return exc.response()
        except Exception as exc:  # a wfgen bug: one line in the log, a 500 to the client
            self.log(f"wfgen serve: internal error on {request.method} {request.path}: "
                     f"{type(exc).__name__}: {exc}")
            return ApiError(500, f"internal error: {type(exc).__name__}: {exc}").response()


def _never(_path: str) -> bool:
    return False


class _Server(ThreadingHTTPServer):
    """A client that breaks off mid-request is one log line, never a traceback."""

    owner: LoopbackServer
    daemon_threads = True
    request_queue_size = 128  # the default 5 resets clients that connect all at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]  # resets, timeouts, malformed requests
        self.owner.log(f"request from {client_address[0]} dropped: {type(exc).__name__}: {exc}")


class _Handler(BaseHTTPRequestHandler):
    server_owner: LoopbackServer
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: with Nagle on, the body would wait for the
    # client's delayed ACK (40 ms) on every keep-alive request
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: serve logs its own lines
        del format, args

    def _handle(self) -> None:
        owner = self.server_owner
        try:
            length = int(self.headers.get("Content-Length") or 0)
            split = urlsplit(self.path)
            streamed = any(getattr(api, "streams", _never)(split.path) for api in owner.apis)
            if length < 0 or (length > MAX_BODY and not streamed):
                raise ValueError(length)
        except ValueError:
            self._send(ApiError(400, "bad Content-Length").response())
            return
        if streamed and self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send(ApiError(411, "a request body needs a Content-Length").response())
            return
        stream = BodyStream(self.rfile, length) if streamed else None
        body = self.rfile.read(length) if length and not streamed else b""
        request = Request(method=self.command, path=unquote(split.path),
                          query=parse_qs(split.query, keep_blank_values=True),
                          headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                          raw_path=split.path, stream=stream)
        response = owner.dispatch(request)
        if stream is not None and not stream.drain():
            self.close_connection = True
        self._send(response)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status, HTTPStatus(response.status).phrase
                               if response.status in HTTPStatus._value2member_map_ else None)
            self.send_header("Content-Type", response.content_type)
            if response.stream is None:
                self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
                for chunk in response.stream or ():
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle
