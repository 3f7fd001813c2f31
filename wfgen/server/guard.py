"""serve closed to web pages: the first API on serve's REST port, answering a
refusal before any handler sees the request (None: let it through).

serve is unauthenticated and can run commands (a Compute insert with a startup
script, with --on-host), so a page in the user's browser must not reach it:

- Host must be an address serve answers on (127.0.0.1:PORT, localhost:PORT,
  [::1]:PORT, or the address given to --host): a DNS-rebinding page reaches
  127.0.0.1 under its own host name, and that name is in its Host header;
- an Origin other than serve's own, or a Sec-Fetch-Site other than
  same-origin or none (a user's own navigation), is a request a web page made;
- a body must be application/json, as Google's REST APIs require (a browser
  sends text/plain and form bodies cross-site without asking first);
  multipart/mixed on the batch path (gcloud's batches) and any type on a
  callback (sendHttpCallback takes an arbitrary HttpBody) or a Cloud Storage
  upload (/upload/storage/v1/: the object's own bytes, streamed) pass too.

Paths under /ui/ (the dashboard: same-origin form POSTs with a CSRF token)
are exempt from the content-type rule only. gcloud, Google's Python clients
and curl send none of Origin and Sec-Fetch-Site and name the address they
were given in Host, so they pass unchanged."""

from __future__ import annotations

import re

from wfgen.local.loopback import ApiError, Request, Response

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("", "0.0.0.0", "::")
UI_PREFIX = "/ui/"
BATCH_PREFIX = "/batch/"
UPLOAD_PREFIXES = ("/upload/storage/v1/", "/resumable/upload/storage/v1/")
CALLBACK_RE = re.compile(r"/v1/projects/[^/]+/locations/[^/]+/workflows/[^/]+/executions/"
                         r"[^/]+/callbacks/[^/]+")
BROWSER_SITES = ("same-origin", "none")  # Sec-Fetch-Site values serve accepts


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


class BrowserGuard:
    """Refuses requests from web pages; `port` is set once the server is bound."""

    def __init__(self, bind_host: str, port: int = 0) -> None:
        self.bind_host = bind_host
        self.port = port

    def hosts(self) -> set[str]:
        """Every Host header value serve answers to."""
        names = set(LOOPBACK_NAMES)
        if self.bind_host not in WILDCARDS:
            names.add(f"[{self.bind_host}]" if ":" in self.bind_host else self.bind_host)
        hosts = {f"{name}:{self.port}" for name in names}
        if self.port == 80:  # clients leave the default port out
            hosts |= names
        return {host.lower() for host in hosts}

    def refusal(self, request: Request) -> ApiError | None:
        """Why this request may not reach a handler, or None."""
        headers = request.headers
        host = headers.get("host", "").strip().lower()
        hosts = self.hosts()
        if host not in hosts:
            return ApiError(403, f"Host {host or '(none)'!r} is not an address of this "
                            f"server: use http://127.0.0.1:{self.port}/ (wfgen serve refuses "
                            "other host names, as a DNS-rebinding web page would send them)")
        origin = headers.get("origin")
        if origin is not None and origin.strip().lower() not in {f"http://{h}" for h in hosts}:
            return ApiError(403, f"Origin {origin!r} is not this server: wfgen serve does not "
                            "answer requests that web pages make")
        site = headers.get("sec-fetch-site")
        if site is not None and site.strip().lower() not in BROWSER_SITES:
            return ApiError(403, f"Sec-Fetch-Site {site!r}: wfgen serve does not answer "
                            "requests that other web sites make")
        has_body = bool(request.body) or bool(request.stream and request.stream.length)
        if has_body and not self._content_ok(request):
            given = headers.get("content-type") or "(none)"
            return ApiError(415, f"Content-Type {given!r} is not supported: a request body "
                            "must be application/json", code_name="INVALID_ARGUMENT")
        return None

    def _content_ok(self, request: Request) -> bool:
        path = request.path
        if path.startswith((UI_PREFIX, *UPLOAD_PREFIXES)) or CALLBACK_RE.fullmatch(path):
            return True
        media = _media_type(request.headers.get("content-type", ""))
        return media == "application/json" or (
            media == "multipart/mixed" and path.startswith(BATCH_PREFIX))

    def handle(self, request: Request) -> Response | None:
        refused = self.refusal(request)
        return refused.response() if refused is not None else None
