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
  ``instance/attributes/?recursive=true`` (a JSON object); the same for
  ``project/attributes/`` (project-wide metadata: where the local runtime says
  which Secret Manager the agent reads, ``wfgen-secretmanager-endpoint``);
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
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from wfgen.local.loopback import LoopbackServer, Request, Response

PREFIX = "/computeMetadata/v1/"
TOKEN_LIFETIME = 3599
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_WAIT = 3600.0
MAX_WAIT = 86400.0  # a longer timeout_sec is a 400
DEFAULT_SERVICE_ACCOUNT = "default@local-project.iam.gserviceaccount.com"


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
        service_account: str = DEFAULT_SERVICE_ACCOUNT,
        port: int = 0,
        project_attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.instance_name = instance_name
        self.zone = zone
        self.project_id = project_id
        self.project_number = project_number
        self.instance_id = instance_id if instance_id is not None else secrets.randbits(62)
        self.service_account = service_account
        self._attributes: dict[str, str] = dict(attributes or {})
        self._project_attributes: dict[str, str] = dict(project_attributes or {})
        self._preempted = False
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._cond = threading.Condition()
        self._stopping = False
        self._port = port
        self._httpd: LoopbackServer | None = None
        # (time.time(), path?query) of recent requests, for tests and debugging
        self.requests: deque[tuple[float, str]] = deque(maxlen=10_000)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> MetadataServer:
        """Bind 127.0.0.1 and serve in a daemon thread (wfgen.local.loopback)."""
        if self._httpd is not None:
            return self
        self._stopping = False
        self._httpd = LoopbackServer([self], port=self._port, log=_log)
        self._httpd.start()
        return self

    def stop(self) -> None:
        """Stop serving and release every blocked ``wait_for_change`` request."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.stop()
            self._httpd = None

    def __enter__(self) -> MetadataServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("metadata server not started")
        return self._httpd.port

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

    def set_project_attribute(self, key: str, value: str | None) -> None:
        """Set (or with None, delete) one project-wide attribute; wakes waiters."""
        with self._cond:
            if value is None:
                self._project_attributes.pop(key, None)
            else:
                self._project_attributes[key] = value
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
        for scope, attributes in (("instance", self._attributes),
                                  ("project", self._project_attributes)):
            if path == f"{scope}/attributes/":
                if recursive:
                    return json.dumps(attributes), "application/json"
                return "".join(k + "\n" for k in sorted(attributes)), text
            if path.startswith(f"{scope}/attributes/"):
                value = attributes.get(path[len(f"{scope}/attributes/"):])
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
            "project/": "attributes/\nnumeric-project-id\nproject-id\n",
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
        timeout = _timeout(query.get("timeout_sec", [None])[0])
        if timeout is None:
            return 400, f"timeout_sec must be 0 to {MAX_WAIT:g} seconds\n", "text/html"
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

    # -- HTTP side (the loopback API) ----------------------------------------

    def handle(self, request: Request) -> Response:
        """One request, as the real server answers it (HEAD as GET, without a body)."""
        query = urlencode(request.query, doseq=True)
        with self._cond:
            self.requests.append((time.time(), quote(request.path) + (f"?{query}" if query
                                                                      else "")))
        if request.method not in ("GET", "HEAD"):
            return _reply(405, "Method Not Allowed\n", "text/html")
        if (request.headers.get("metadata-flavor") != "Google"
                or request.headers.get("x-forwarded-for")):
            return _reply(403, "Missing required header: Metadata-Flavor: Google\n",
                          "text/html")
        path = request.path
        if path == "/":  # what clients probe to detect a metadata server
            return _reply(200, "0.1/\ncomputeMetadata/\n", "application/text")
        if not path.startswith(PREFIX) and path != PREFIX.rstrip("/"):
            return _reply(404, "Not Found\n", "text/html")
        status, body, ctype = self._respond(path[len(PREFIX):] if path.startswith(PREFIX)
                                            else "", request.query)
        return _reply(status, body, ctype)


def _etag(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _timeout(text: str | None) -> float | None:
    """timeout_sec in seconds, at most MAX_WAIT; None for anything else (inf, nan,
    1e300, -1, "abc"), which is a 400."""
    if text is None or text == "":
        return DEFAULT_WAIT
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value <= MAX_WAIT else None  # False for nan too


def _log(line: str) -> None:
    print(f"wfgen metadata: {line}", file=sys.stderr, flush=True)


def _reply(status: int, body: str, ctype: str) -> Response:
    return Response(status, body.encode("utf-8", "surrogatepass"), ctype,
                    {"Metadata-Flavor": "Google", "ETag": _etag(body)})
