"""The one loopback HTTP server base: `wfgen serve`, the local callbacks and
the metadata servers all speak these request/response types.

An API is any object with `handle(request) -> Response | None` (None: not one
of mine, ask the next). The server never lets an exception escape as a
traceback: an API's ApiError becomes its error body, anything else a 500 in
the google.rpc.Status shape, logged as one line."""

from __future__ import annotations

import json
import re
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

MAX_BODY = 10 << 20  # Google's front end refuses a larger request (Pub/Sub publish: 10 MB)
IDLE_SECONDS = 60  # a client that sends nothing for this long is disconnected
# requests answered at once; the others wait their turn (first come, first served) with
# their bytes read: hundreds of threads all runnable share the GIL so badly that a
# server answers fewer requests, and in no order, when more clients come
ANSWERING = 4
TURN_WAIT = 2.0

# google.rpc.Code names by HTTP status, for error bodies
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
                503: "UNAVAILABLE", 405: "UNIMPLEMENTED", 411: "INVALID_ARGUMENT",
                413: "INVALID_ARGUMENT", 414: "INVALID_ARGUMENT", 431: "INVALID_ARGUMENT"}


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def loads_json(data: bytes) -> Any:
    """JSON as Google's parser reads it: a lone UTF-16 surrogate (\\ud800) is an
    error, not a string that cannot be written back out; ValueError or
    RecursionError (nesting deeper than Python's stack)."""
    value = json.loads(data)
    if _SURROGATE.search(data):
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ValueError("Invalid \\u escape: a lone UTF-16 surrogate") from None
    return value


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
            return loads_json(self.body)
        except RecursionError:
            raise ApiError(400, "Invalid JSON payload received. Message too deep.") from None
        except ValueError as exc:
            raise ApiError(400, f"Invalid JSON payload received. {exc}") from None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    value: Any = None  # what of_json encoded (serve's answer check reads it, not the bytes)
    # a body too big to hold: chunks written as they come (Content-Length in headers)
    stream: Iterable[bytes] | None = None

    @classmethod
    def of_json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value, ensure_ascii=False).encode(), value=value)


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
        try:
            while self.left and limit > 0:
                limit -= len(self.read(min(self.left, 1 << 16)))
        except (ConnectionError, OSError):
            return False
        return not self.left


def _never(_path: str) -> bool:
    return False


Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (or `host`) dispatching to APIs in order."""

    def __init__(self, apis: Sequence[Api], *, host: str = "127.0.0.1", port: int = 0,
                 log: Log = _stderr) -> None:
        self.apis = list(apis)
        self.log = log
        self.busy = threading.BoundedSemaphore(ANSWERING)
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

    def start(self, poll_interval: float | None = None) -> LoopbackServer:
        """Serve on a daemon thread until stop() (which wakes it at once; nothing
        polls, so `poll_interval`, kept for callers that still pass it, is unused)."""
        del poll_interval
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="wfgen-serve-http",
                                        daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        """Accept until the wake socket speaks. socketserver's serve_forever
        notices shutdown() only at its next poll, and every local run ends with
        a stop, so this loop waits on the listening socket and a wake socket."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._server.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is self._wake_r for key, _ in ready):
                    return
                self._server._handle_request_noblock()  # accept + hand to a thread

    def stop(self) -> None:
        """Stop accepting and close the socket; returns as soon as the loop ends."""
        if self._thread is not None:
            self._wake_w.send(b"x")
            self._thread.join()
            self._thread = None
            self._wake_r.close()
            self._wake_w.close()
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


class _Server(ThreadingHTTPServer):
    """A client that breaks off mid-request is one log line, never a traceback."""

    owner: LoopbackServer
    daemon_threads = True
    request_queue_size = 1024  # the default 5 resets clients that connect all at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]  # resets, timeouts, malformed requests
        self.owner.log(f"request from {client_address[0]} dropped: {type(exc).__name__}: {exc}")


_DATE_CACHE: list[Any] = [0, ""]  # [epoch second, its HTTP date]


class _Handler(BaseHTTPRequestHandler):
    server_owner: LoopbackServer
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: with Nagle on, the body would wait for the
    # client's delayed ACK (40 ms) on every keep-alive request
    disable_nagle_algorithm = True
    timeout = IDLE_SECONDS  # a slow or silent client cannot hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # quiet: serve logs its own lines
        del format, args

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, formatted once a second rather than once a response."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        cached = _DATE_CACHE
        if cached[0] != second:
            cached[:] = [second, super().date_time_string(second)]
        return str(cached[1])

    def _handle(self) -> None:
        owner = self.server_owner
        split = urlsplit(self.path)
        streamed = any(getattr(api, "streams", _never)(split.path) for api in owner.apis)
        refused = self._refused_body(streamed)
        if refused is not None:  # never read: the connection closes after the answer
            self.close_connection = True
            self._send(refused.response())
            return
        length = int(self.headers.get("Content-Length") or 0)
        stream = BodyStream(self.rfile, length) if streamed else None
        body = self.rfile.read(length) if length and stream is None else b""
        if len(body) < length and stream is None:  # the client went away mid-body
            self.close_connection = True
            return
        request = Request(method=self.command, path=unquote(split.path),
                          query=parse_qs(split.query, keep_blank_values=True),
                          headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                          raw_path=split.path, stream=stream)
        if stream is not None:  # an upload: its body arrives while it is answered (no turn)
            response = owner.dispatch(request)
            if not stream.drain():
                self.close_connection = True
            self._send(response)
            return
        # a turn, or after TURN_WAIT anyway (answers that wait on something, such as an
        # operation, may hold every turn)
        turn = owner.busy.acquire(timeout=TURN_WAIT)
        try:
            response = owner.dispatch(request)
            if response.stream is None:
                self._send(response)
        finally:
            if turn:
                owner.busy.release()
        if response.stream is not None:  # a download: its turn ends before its bytes go
            self._send(response)

    def _refused_body(self, streamed: bool = False) -> ApiError | None:
        """Why the body is not read at all: chunked (clients of Google APIs send a
        length), a bad length, or more than MAX_BODY (unless the API streams it)."""
        if self.headers.get("Transfer-Encoding"):
            return ApiError(411, "Length Required: send the body with a Content-Length",
                            code_name="INVALID_ARGUMENT")
        text = (self.headers.get("Content-Length") or "0").strip()
        if not text.isdigit() or len(text) > 12:
            return ApiError(400, f"Bad Content-Length {text[:40]!r}")
        if int(text) > MAX_BODY and not streamed:
            return ApiError(413, f"Request payload size exceeds the limit: {MAX_BODY} bytes.",
                            code_name="INVALID_ARGUMENT")
        return None

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """The standard library's own refusals (a bad request line, headers too long,
        an unknown HTTP method) as JSON errors, not HTML; the connection closes."""
        del explain
        status = 405 if code == 501 else code
        if code == 501:
            text = f"{str(self.command)[:40]} is not an HTTP method this server answers"
        else:
            text = message or "Bad request"
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # the request line itself was bad
            self.request_version = "HTTP/1.1"
        self._send(ApiError(status, text).response())

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status, HTTPStatus(response.status).phrase
                               if response.status in HTTPStatus._value2member_map_ else None)
            self.send_header("Content-Type", response.content_type)
            if response.stream is None:
                self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            # headers and body in one write (one syscall, one TCP segment when small)
            self._headers_buffer.append(b"\r\n")
            if self.command != "HEAD":
                self._headers_buffer.append(response.body)
            self.flush_headers()
            if self.command != "HEAD":
                for chunk in response.stream or ():
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle
