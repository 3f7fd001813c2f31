"""http.*: real HTTP against a loopback server started here (never the network)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wfgen.engine.services import (
    RewritingTransport,
    Services,
    VirtualClock,
    loopback_rewriter,
)
from wfgen.engine.stdlib import BUILTINS


class _Handler(BaseHTTPRequestHandler):
    """Answers by path; /echo reflects the request back as JSON."""

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if parts.path == "/echo":
            reply = {
                "method": self.command,
                "path": parts.path,
                "query": parts.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            self._send(200, json.dumps(reply).encode(), "application/json; charset=utf-8")
        elif parts.path == "/json":
            self._send(200, b'{"ok": true, "n": 1, "x": 1.5}', "application/json",
                       {"X-Test": "yes", "x-lower-case": "v"})
        elif parts.path == "/text":
            self._send(200, "héllo".encode(), "text/plain; charset=utf-8")
        elif parts.path == "/binary":
            self._send(200, b"\xff\x00\xfe", "application/octet-stream")
        elif parts.path.startswith("/status/"):
            code = int(parts.path.rsplit("/", 1)[1])
            self._send(code, b'{"error": "nope"}', "application/json")
        elif parts.path == "/slow":
            time.sleep(1.0)
            self._send(200, b"late", "text/plain")
        elif parts.path == "/drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(404, b"no such path", "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the timeout test hangs up on /slow on purpose


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def http(server: str):
    """Call http.* with URLs rewritten to the loopback server."""
    rt = Services(
        clock=VirtualClock(),
        http_transport=RewritingTransport(loopback_rewriter(server)),
        token_provider=lambda kind, detail: f"{kind}-token:{detail}",
    )

    def invoke(name: str, *args: Any, **kwargs: Any) -> Any:
        return BUILTINS[name](rt, *args, **kwargs)

    return invoke


def test_get_decodes_json_body(http):
    resp = http("http.get", "https://example.com/json")
    assert resp["code"] == 200
    assert resp["body"] == {"ok": True, "n": 1, "x": 1.5}
    assert isinstance(resp["body"]["n"], int)
    assert resp["headers"]["X-Test"] == "yes"
    assert resp["headers"]["X-Lower-Case"] == "v"  # names in canonical form
    assert set(resp) == {"body", "code", "headers"}


def test_get_text_body_is_a_string(http):
    assert http("http.get", url="https://example.com/text")["body"] == "héllo"


def test_get_binary_body_is_bytes(http):
    assert http("http.get", "https://example.com/binary")["body"] == b"\xff\x00\xfe"


def test_real_loopback_without_rewriting(server):
    rt = Services(clock=VirtualClock())
    resp = BUILTINS["http.get"](rt, server + "/json")
    assert resp["body"]["ok"] is True


def test_query_is_url_encoded_and_appended(http):
    resp = http(
        "http.get",
        "https://example.com/echo?fixed=1",
        query={"q": "a b&c", "n": 3, "f": 1.5, "flag": True, "multi": ["x", "y"]},
    )
    query = urllib.parse.parse_qs(resp["body"]["query"])
    assert query == {
        "fixed": ["1"],
        "q": ["a b&c"],
        "n": ["3"],
        "f": ["1.5"],
        "flag": ["true"],
        "multi": ["x", "y"],
    }


def test_query_value_of_wrong_type(http, raises_tag):
    with raises_tag("TypeError"):
        http("http.get", "https://example.com/echo", query={"m": {"a": 1}})


def test_headers_are_sent(http):
    resp = http("http.get", "https://example.com/echo", headers={"X-Custom": "v1"})
    assert resp["body"]["headers"]["x-custom"] == "v1"


def test_header_values_must_be_strings(http, raises_tag):
    with raises_tag("TypeError"):
        http("http.get", "https://example.com/echo", headers={"X-N": 1})


def test_post_encodes_json_body(http):
    resp = http("http.post", "https://example.com/echo", body={"some_val": "Hello World",
                                                                "another_val": 123})
    echoed = resp["body"]
    assert echoed["method"] == "POST"
    assert json.loads(echoed["body"]) == {"some_val": "Hello World", "another_val": 123}
    assert echoed["headers"]["content-type"].startswith("application/json")


def test_post_bytes_body_is_sent_as_is(http):
    resp = http("http.post", "https://example.com/echo", body=b"raw",
                headers={"Content-Type": "application/octet-stream"})
    assert resp["body"]["body"] == "raw"


def test_post_text_body_with_text_content_type(http):
    resp = http("http.post", "https://example.com/echo", body="plain words",
                headers={"Content-Type": "text/plain"})
    assert resp["body"]["body"] == "plain words"


def test_post_form_body(http):
    resp = http("http.post", "https://example.com/echo", body={"a": "1 2", "b": "x"},
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert urllib.parse.parse_qs(resp["body"]["body"]) == {"a": ["1 2"], "b": ["x"]}


@pytest.mark.parametrize("name", ["http.put", "http.patch", "http.delete"])
def test_methods_with_body(http, name):
    resp = http(name, "https://example.com/echo", body={"k": 1})
    assert resp["body"]["method"] == name.split(".")[1].upper()
    assert json.loads(resp["body"]["body"]) == {"k": 1}


def test_request_with_any_method(http):
    resp = http("http.request", method="OPTIONS", url="https://example.com/echo")
    assert resp["body"]["method"] == "OPTIONS"
    resp = http("http.request", "post", "https://example.com/echo", body=[1])
    assert resp["body"]["method"] == "POST"


def test_404_raises_http_error_with_code_headers_body(http, raises_tag):
    with raises_tag("HttpError") as info:
        http("http.get", "https://example.com/status/404")
    err = info.value.value
    assert err["code"] == 404
    assert err["body"] == {"error": "nope"}
    assert err["headers"]["Content-Type"] == "application/json"
    assert "404" in err["message"]


def test_503_is_retryable_by_default_predicate(http, raises_tag):
    with raises_tag("HttpError") as info:
        http("http.get", "https://example.com/status/503")
    assert BUILTINS["http.default_retry_predicate"](None, info.value.value) is True


def test_timeout_raises_timeout_error(http, raises_tag):
    with raises_tag("TimeoutError"):
        http("http.get", "https://example.com/slow", timeout=0.2)


def test_connection_refused_is_connection_failed_error(raises_tag):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rt = Services(clock=VirtualClock())
    with raises_tag("ConnectionFailedError"):
        BUILTINS["http.get"](rt, f"http://127.0.0.1:{port}/x")


def test_dropped_connection_is_connection_error(http, raises_tag):
    with raises_tag("ConnectionError"):
        http("http.get", "https://example.com/drop")


def test_timeout_over_1800_is_value_error(http, raises_tag):
    with raises_tag("ValueError"):
        http("http.get", "https://example.com/json", timeout=1801)


def test_invalid_url_is_value_error(http, raises_tag):
    with raises_tag("ValueError"):
        http("http.get", "not a url")


def test_auth_sends_bearer_token_from_services(http):
    resp = http("http.get", "https://example.com/echo", auth={"type": "OAuth2"})
    assert resp["body"]["headers"]["authorization"] == (
        "Bearer OAuth2-token:['https://www.googleapis.com/auth/cloud-platform']"
    )
    resp = http("http.get", "https://example.com/echo", auth={"type": "OIDC"})
    assert resp["body"]["headers"]["authorization"] == "Bearer OIDC-token:https://example.com/echo"
    resp = http("http.get", "https://example.com/echo",
                auth={"type": "OIDC", "audience": "https://svc"})
    assert resp["body"]["headers"]["authorization"] == "Bearer OIDC-token:https://svc"


def test_auth_without_token_source_sends_no_header(server):
    rt = Services(clock=VirtualClock())
    resp = BUILTINS["http.get"](rt, server + "/echo", auth={"type": "OAuth2"})
    assert "authorization" not in resp["body"]["headers"]


def test_auth_type_must_be_known(http, raises_tag):
    with raises_tag("ValueError"):
        http("http.get", "https://example.com/echo", auth={"type": "Basic"})
