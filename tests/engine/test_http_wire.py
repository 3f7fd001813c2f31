"""Conformance: the HTTP request as it goes on the wire, and redirects.

An echo server on loopback answers with what it received (method, path,
headers, body), so the tests see exactly what the http.* builtins send.
References: the http-requests page (docs/http-requests) and stdlib/http/request,
get, post."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.engine.enginetest import result_of
from wfgen.engine import RewritingTransport, Services, VirtualClock
from wfgen.engine.services import loopback_rewriter

AGENT = "GoogleCloudWorkflows; (+https://cloud.google.com/workflows/docs)"


class Echo:
    """Echoes requests as JSON; /redirect/CODE?to=PATH answers CODE with Location PATH."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if self.path.startswith("/redirect/"):
                    code = int(self.path.split("/")[2].split("?")[0])
                    target = self.path.split("to=", 1)[1]
                    self.send_response(code)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps({"method": self.command, "path": self.path,
                                   "headers": {k.lower(): v for k, v in self.headers.items()},
                                   "body": body.decode("latin-1")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def services(self) -> Services:
        return Services(clock=VirtualClock(),
                        http_transport=RewritingTransport(loopback_rewriter(self.base)))


@pytest.fixture(scope="module")
def echo() -> Iterator[Echo]:
    e = Echo()
    yield e
    e.server.shutdown()
    e.server.server_close()


def _call(echo: Echo, args: str, fn: str = "http.post") -> Any:
    src = (f"- c:\n    call: {fn}\n    args:\n      url: https://example.com/x\n{args}"
           "    result: r\n- out:\n    return: ${r}\n")
    return result_of(src, services=echo.services())


def test_default_user_agent(echo: Echo) -> None:
    """http-requests page: Workflows identifies itself in User-Agent."""
    got = _call(echo, "", "http.get")["body"]
    assert got["headers"]["user-agent"] == AGENT


def test_callers_user_agent_comes_first(echo: Echo) -> None:
    """http-requests page: a caller's User-Agent is kept, Workflows' is added after it."""
    got = _call(echo, "      headers:\n        user-agent: my-tool/1.0\n", "http.get")["body"]
    assert got["headers"]["user-agent"] == f"my-tool/1.0 {AGENT}"


def test_json_body_content_type_has_charset(echo: Echo) -> None:
    """stdlib/http/post: a map body is JSON, sent as application/json; charset=utf-8."""
    got = _call(echo, "      body: {b: 1, a: \"é\"}\n")["body"]
    assert got["headers"]["content-type"] == "application/json; charset=utf-8"
    assert got["body"].encode("latin-1").decode("utf-8") == '{"a":"é","b":1}'


def test_bytes_body_is_octet_stream(echo: Echo) -> None:
    """http-requests page: a bytes body is sent as-is, application/octet-stream."""
    got = _call(echo, "      body: ${text.encode(\"raw\")}\n")["body"]
    assert got["headers"]["content-type"] == "application/octet-stream"
    assert got["body"] == "raw"


def test_callers_content_type_wins(echo: Echo) -> None:
    got = _call(echo, "      headers:\n        Content-Type: text/plain\n      body: hi\n")["body"]
    assert got["headers"]["content-type"] == "text/plain" and got["body"] == "hi"


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_get_follows_redirects(echo: Echo, code: int) -> None:
    """stdlib/http/get: the response is the redirect target's, not the 3xx."""
    src = ("- c:\n    call: http.get\n    args:\n"
           f"      url: https://example.com/redirect/{code}?to=/final\n"
           "    result: r\n- out:\n    return: ${r}\n")
    r = result_of(src, services=echo.services())
    assert r["code"] == 200 and r["body"]["path"] == "/final"


@pytest.mark.parametrize("code", [307, 308])
def test_post_follows_307_308_with_its_body(echo: Echo, code: int) -> None:
    src = ("- c:\n    call: http.post\n    args:\n"
           f"      url: https://example.com/redirect/{code}?to=/again\n"
           "      body: {k: v}\n    result: r\n- out:\n    return: ${r}\n")
    r = result_of(src, services=echo.services())
    assert r["body"]["method"] == "POST" and r["body"]["path"] == "/again"
    assert json.loads(r["body"]["body"]) == {"k": "v"}


def test_post_gets_a_302_back(echo: Echo) -> None:
    """A POST is not turned into a GET: a 302/303 answer is returned as it came."""
    src = ("- c:\n    call: http.post\n    args:\n"
           "      url: https://example.com/redirect/302?to=/elsewhere\n"
           "      body: {k: v}\n    result: r\n- out:\n    return: ${r.code}\n")
    assert result_of(src, services=echo.services()) == 302
