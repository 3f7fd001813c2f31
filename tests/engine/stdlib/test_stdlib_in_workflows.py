"""The stdlib through the engine: call steps with named args, expressions with
positional args, errors caught by try/except, and http.* with
`retry: ${http.default_retry}` against a loopback server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from wfgen.engine import (
    RewritingTransport,
    Services,
    VirtualClock,
    execute,
    load_workflow,
    loopback_rewriter,
)

FLOW = """
main:
  params: [args]
  steps:
    - init:
        assign:
          - parts: ${text.split(args.csv, ",")}
          - n: ${len(parts)}
          - s: ${string(1.7) + "/" + string(int(2.7)) + "/" + string(double("2.5"))}
          - deep: ${map.get(args, ["deep", "x"])}
          - dflt: ${default(map.get(args, "missing"), "fallback")}
          - tags: null
          - enc: '${json.encode_to_string({"a": 1.0})}'
    - split_step:
        call: text.split
        args:
          source: "x-y"
          separator: "-"
        result: parts2
    - log_step:
        call: sys.log
        args:
          text: ${"n=" + string(n)}
          severity: INFO
    - sleep_step:
        call: sys.sleep
        args:
          seconds: 5
    - bad:
        try:
          assign:
            - ignored: ${int("abc")}
        except:
          as: e
          steps:
            - keep:
                assign:
                  - tags: ${e.tags}
    - done:
        return: ${[parts, n, s, deep, dflt, parts2, sys.now(), tags, enc]}
"""


def test_stdlib_in_a_workflow():
    rt = Services(clock=VirtualClock(start=1000.0))
    res = execute(load_workflow(FLOW, "flow.yaml"), {"csv": "a,b,c", "deep": {"x": 7}},
                  services=rt)
    assert res.state == "SUCCEEDED", res.error
    assert res.result == [
        ["a", "b", "c"], 3, "1.7/2/2.5", 7, "fallback", ["x", "y"], 1005.0, ["ValueError"],
        '{"a":1.0}',
    ]
    assert res.logs == [{"severity": "INFO", "text": "n=3"}]
    assert rt.clock.slept == [5]


class _Flaky(BaseHTTPRequestHandler):
    """503 for the first two calls of each path, then 200 with a JSON body."""

    calls: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.lock:
            count = self.calls[self.path] = self.calls.get(self.path, 0) + 1
        if self.path.startswith("/always404"):
            status, body = 404, b'{"error": "missing"}'
        elif count <= 2:
            status, body = 503, b'{"error": "busy"}'
        else:
            status, body = 200, json.dumps({"attempt": count}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def loopback() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


HTTP_FLOW = """
main:
  params: [args]
  steps:
    - get:
        try:
          call: http.get
          args:
            url: ${"https://example.com/" + args.path}
            query:
              q: "a b"
          result: resp
        retry: ${http.default_retry}
    - done:
        return: ${[resp.code, resp.body]}
"""


def _services(base: str) -> Services:
    transport = RewritingTransport(loopback_rewriter(base))
    return Services(clock=VirtualClock(), http_transport=transport)


def test_http_get_with_default_retry_recovers_from_503(loopback):
    rt = _services(loopback)
    res = execute(load_workflow(HTTP_FLOW, "http.yaml"), {"path": "flaky1"}, services=rt)
    assert res.state == "SUCCEEDED", res.error
    assert res.result == [200, {"attempt": 3}]
    assert rt.clock.slept == [1, 1.25]  # default backoff: initial 1 s, multiplier 1.25


def test_http_404_is_not_retried_and_fails_with_http_error(loopback):
    rt = _services(loopback)
    res = execute(load_workflow(HTTP_FLOW, "http.yaml"), {"path": "always404"}, services=rt)
    assert res.state == "FAILED"
    assert rt.clock.slept == []
    assert "HttpError" in str(res.error)
