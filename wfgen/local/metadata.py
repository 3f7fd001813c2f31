"""A local stand-in for the Compute Engine metadata server.

The VM agent (startup/startup.sh, startup/shutdown.sh) reads everything it needs
from the metadata server at ``http://$GCE_METADATA_HOST/computeMetadata/v1/``.
Serving the same paths and shapes on 127.0.0.1 lets the real scripts run
unchanged in tests and in the local runtime.

What it mirrors from the real server (and why it matters to the agent):

- every request needs ``Metadata-Flavor: Google`` (else 403) and must not carry
  ``X-Forwarded-For`` (the real server's guard against proxied requests);
  responses carry ``Metadata-Flavor: Google`` and an ``ETag``;
- ``instance/attributes/KEY`` (raw text), the directory listing, and
  ``instance/attributes/?recursive=true`` (a JSON object);
- ``instance/name``, ``instance/id``, ``instance/hostname``, ``instance/zone``
  (``projects/NUMBER/zones/ZONE``), ``project/project-id``,
  ``project/numeric-project-id``;
- ``instance/preempted`` (``TRUE``/``FALSE``); any path accepts
  ``?wait_for_change=true`` (with optional ``last_etag`` and ``timeout_sec``) and
  blocks until the value differs, so the shutdown script can be woken;
- ``instance/service-accounts/default/token`` issues a fresh random bearer token
  per request; a local callback receiver checks tokens with ``check_token``.

The server is thread-safe: the state lives behind one condition variable, which
also wakes ``wait_for_change`` waiters on every change and at ``stop()``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/computeMetadata/v1/"
TOKEN_LIFETIME = 3599
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_WAIT = 3600.0


class MetadataServer:
    """Serve one instance's metadata on 127.0.0.1 (port 0 = any free port)."""

    def __init__(
        self,
        instance_name: str = "wfgen-local",
        zone: str = "local-zone-a",
        project_id: str = "local-project",
        attributes: Mapping[str, str] | None = None,
        *,
        project_number: int = 123456789012,
        instance_id: int | None = None,
        service_account: str = "default@local-project.iam.gserviceaccount.com",
        port: int = 0,
    ) -> None:
        self.instance_name = instance_name
        self.zone = zone
        self.project_id = project_id
        self.project_number = project_number
        self.instance_id = instance_id if instance_id is not None else secrets.randbits(62)
        self.service_account = service_account
        self._attributes: dict[str, str] = dict(attributes or {})
        self._preempted = False
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._cond = threading.Condition()
        self._stopping = False
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # (time.time(), path?query) of recent requests, for tests and debugging
        self.requests: deque[tuple[float, str]] = deque(maxlen=10_000)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> MetadataServer:
        """Bind 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        server = self

        class Handler(_Handler):
            metadata = server

        self._stopping = False
        self._httpd = _Server(("127.0.0.1", self._port), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="metadata-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release every blocked ``wait_for_change`` request."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MetadataServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("metadata server not started")
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        """The value for GCE_METADATA_HOST ("127.0.0.1:PORT")."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}{PREFIX}"

    # -- state ---------------------------------------------------------------

    @property
    def attributes(self) -> dict[str, str]:
        with self._cond:
            return dict(self._attributes)

    def set_attribute(self, key: str, value: str | None) -> None:
        """Set (or with None, delete) one custom attribute; wakes waiters."""
        with self._cond:
            if value is None:
                self._attributes.pop(key, None)
            else:
                self._attributes[key] = value
            self._cond.notify_all()

    def set_preempted(self, preempted: bool = True) -> None:
        """Flip ``instance/preempted``, waking ``wait_for_change`` requests."""
        with self._cond:
            self._preempted = preempted
            self._cond.notify_all()

    @property
    def preempted(self) -> bool:
        with self._cond:
            return self._preempted

    def issue_token(self) -> str:
        """A fresh random bearer token, valid for about an hour."""
        token = "ya29.local-" + secrets.token_urlsafe(32)
        with self._cond:
            now = time.monotonic()
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + TOKEN_LIFETIME
        return token

    @property
    def valid_tokens(self) -> frozenset[str]:
        with self._cond:
            now = time.monotonic()
            return frozenset(t for t, exp in self._tokens.items() if exp > now)

    @property
    def issued_count(self) -> int:
        with self._cond:
            return len(self._tokens)

    def check_token(self, token: str) -> bool:
        """True when TOKEN was issued here, is not revoked and has not expired."""
        with self._cond:
            exp = self._tokens.get(token)
            return exp is not None and exp > time.monotonic()

    def check_authorization(self, header: str | None) -> bool:
        """Check an ``Authorization: Bearer TOKEN`` header value."""
        if not header or not header.startswith("Bearer "):
            return False
        return self.check_token(header[len("Bearer ") :])

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (clients must fetch new ones)."""
        with self._cond:
            self._tokens.clear()

    # -- request handling (called from handler threads) ----------------------

    def _value(self, path: str, query: Mapping[str, list[str]]) -> tuple[str, str] | None:
        """(body, content type) for PATH under computeMetadata/v1/, or None (404).

        Called with the lock held; must not issue tokens (see ``_respond``).
        """
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        text = "application/text"
        if path == "instance/attributes/":
            if recursive:
                return json.dumps(self._attributes), "application/json"
            return "".join(k + "\n" for k in sorted(self._attributes)), text
        if path.startswith("instance/attributes/"):
            key = path[len("instance/attributes/") :]
            value = self._attributes.get(key)
            return None if value is None else (value, text)
        if path in ("instance/service-accounts/default/",
                    f"instance/service-accounts/{self.service_account}/"):
            if recursive:  # what google-auth asks for
                return json.dumps({"aliases": ["default"], "email": self.service_account,
                                   "scopes": [SCOPE]}), "application/json"
            return "aliases\nemail\nidentity\nscopes\ntoken\n", text
        fixed = {
            "instance/name": self.instance_name,
            "instance/hostname": f"{self.instance_name}.{self.zone}.c.{self.project_id}.internal",
            "instance/id": str(self.instance_id),
            "instance/zone": f"projects/{self.project_number}/zones/{self.zone}",
            "instance/preempted": "TRUE" if self._preempted else "FALSE",
            "project/project-id": self.project_id,
            "project/numeric-project-id": str(self.project_number),
            "instance/service-accounts/": "default/\n" + self.service_account + "/\n",
            "instance/service-accounts/default/email": self.service_account,
            "instance/service-accounts/default/scopes": SCOPE + "\n",
            "instance/": "attributes/\nhostname\nid\nname\npreempted\nservice-accounts/\nzone\n",
            "project/": "numeric-project-id\nproject-id\n",
            "": "instance/\nproject/\n",
        }
        value = fixed.get(path)
        return None if value is None else (value, text)

    def _respond(self, path: str, query: Mapping[str, list[str]]) -> tuple[int, str, str]:
        """(status, body, content type), honouring ``wait_for_change``."""
        if path in ("instance/service-accounts/default/token",
                    f"instance/service-accounts/{self.service_account}/token"):
            body = json.dumps({
                "access_token": self.issue_token(),
                "expires_in": TOKEN_LIFETIME,
                "token_type": "Bearer",
            })
            return 200, body, "application/json"
        wait = query.get("wait_for_change", ["false"])[0].lower() == "true"
        last_etag = query.get("last_etag", [None])[0]
        timeout = _float(query.get("timeout_sec", [None])[0], DEFAULT_WAIT)
        deadline = time.monotonic() + timeout
        with self._cond:
            found = self._value(path, query)
            if found is None:
                return 404, "Not Found\n", "text/html"
            if wait:
                first = last_etag or _etag(found[0])
                while _etag(found[0]) == first and not self._stopping:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                    found = self._value(path, query) or ("", found[1])
            body, ctype = found
        if query.get("alt", [""])[0] == "json" and ctype != "application/json":
            return 200, json.dumps(body), "application/json"
        return 200, body, ctype


def _etag(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of clients must not wait for SYN retries


class _Handler(BaseHTTPRequestHandler):
    """HTTP front of ``MetadataServer`` (bound per server via a subclass)."""

    metadata: MetadataServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small replies: no 40 ms delayed-ACK stalls
    server_version = "Metadata Server for VM"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        parts = urlsplit(self.path)
        md = self.metadata
        with md._cond:
            md.requests.append((time.time(), self.path))
        if self.headers.get("Metadata-Flavor") != "Google" or self.headers.get("X-Forwarded-For"):
            self._send(403, "Missing required header: Metadata-Flavor: Google\n",
                       "text/html", send_body)
            return
        if parts.path == "/":  # what clients probe to detect a metadata server
            self._send(200, "0.1/\ncomputeMetadata/\n", "application/text", send_body)
            return
        if not parts.path.startswith(PREFIX) and parts.path != PREFIX.rstrip("/"):
            self._send(404, "Not Found\n", "text/html", send_body)
            return
        path = parts.path[len(PREFIX) :] if parts.path.startswith(PREFIX) else ""
        status, body, ctype = md._respond(path, parse_qs(parts.query))
        self._send(status, body, ctype, send_body)

    def _send(self, status: int, body: str, ctype: str, send_body: bool) -> None:
        data = body.encode("utf-8", "surrogatepass")
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", ctype)
        self.send_header("ETag", _etag(body))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request list on the server is the log."""
