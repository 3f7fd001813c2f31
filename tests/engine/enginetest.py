"""Helpers for engine tests: a loopback HTTP server and run helpers.

Tests never reach the network: every URL is rewritten to 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wfgen.engine import (
    ExecutionResult,
    RewritingTransport,
    Services,
    VirtualClock,
    execute,
    load_workflow,
)
from wfgen.engine.services import loopback_rewriter


class Loopback:
    """Answers every request with JSON {"method", "path", "body"}; records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.status_for: dict[str, int] = {}
        loop = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                loop.requests.append((self.command, self.path, body))
                status = loop.status_for.get(self.path.split("?")[0], 200)
                data = json.dumps({"method": self.command, "path": self.path,
                                   "body": body.decode("utf-8", "replace")}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    lb = Loopback()
    yield lb
    lb.close()


def services(loop: Loopback | None = None, **kw: Any) -> Services:
    """Services with a virtual clock and, if given, HTTP answered by the loopback."""
    transport = RewritingTransport(loopback_rewriter(loop.base)) if loop else None
    return Services(clock=kw.pop("clock", None) or VirtualClock(), http_transport=transport,
                    **kw)


def run(src: str, arg: Any = None, **kw: Any) -> ExecutionResult:
    """Load and execute a workflow text with a virtual clock."""
    svc = kw.pop("services", None) or services()
    return execute(load_workflow(src, "test.yaml"), arg, services=svc, **kw)


def result_of(src: str, arg: Any = None, **kw: Any) -> Any:
    res = run(src, arg, **kw)
    assert res.state == "SUCCEEDED", res.error
    return res.result


def error_of(src: str, arg: Any = None, **kw: Any) -> Any:
    res = run(src, arg, **kw)
    assert res.state == "FAILED", res.result
    assert res.error is not None
    return res.error
