"""Runtime services: what a running workflow may touch outside its variables.

Every builtin receives a services object `rt` as its first argument. It is the
one seam between the interpreter and the world, so that tests (and the local
runtime) swap the world out instead of patching modules:

- `rt.clock`: `.now() -> float` (epoch seconds) and `.sleep(seconds)`.
  `RealClock` uses time.time/time.sleep; `VirtualClock` never blocks, it just
  advances its own time, so retry backoff and `sys.sleep` cost nothing in tests.
- `rt.env`: dict[str, str] for `sys.get_env`: the GOOGLE_CLOUD_* built-ins
  (see `default_env`) plus user variables (`--set-env-vars`).
- `rt.log(entry)`: the `sys.log` sink. `entry` is a dict such as
  {"severity": "INFO", "data": ...} or {"severity": ..., "text"/"json": ...};
  the default sink keeps entries in `rt.log_entries` (a list).
- `rt.http_transport`: an `HttpTransport`; `http.*` builtins build an
  `HttpRequest` and call `rt.http_transport.send(request)`, which returns an
  `HttpResponse` (status, headers, raw body bytes) for every status code, or
  raises WorkflowError tagged ConnectionError / ConnectionFailedError /
  TimeoutError when no response came. The builtin, not the transport, turns a
  status >= 400 into an HttpError and decodes JSON bodies.
  `UrllibTransport` does real HTTP; `RewritingTransport` rewrites each URL
  (e.g. https://example.com/x -> http://127.0.0.1:PORT/x) before delegating,
  which is how tests answer Google's sample locally without the network.
- `rt.token(kind, audience_or_scopes)`: an access token (kind "OAuth2") or ID
  token (kind "OIDC") for `auth:` in http calls, or None to send no header.
- `rt.cancel_event` (bound objects only): a threading.Event set when the
  execution is cancelled, for builtins/connectors that wait on something else
  than the clock.
- `rt.call_function(ref, args)`: call a function reference (`FunctionRef`), e.g.
  a retry predicate, with positional args. Works only on the object the engine
  binds to a running execution (`bind`); a bare Services raises.

Function references: `${http.default_retry_predicate}` or `${my_subworkflow}`
used as a value evaluates to `FunctionRef(name)`. The stdlib registers its
predicates in CONSTANTS as FunctionRef("http.default_retry_predicate"), etc.
Calling one resolves the name against the execution's subworkflows first,
then stdlib BUILTINS.

One `Services` may serve many executions; the engine binds a shallow copy per
execution (`bind`), so per-execution state (call_function) never leaks across
threads. Everything here must be safe to use from parallel branches."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from wfgen.engine.errors import WorkflowError, make_error
from wfgen.engine.values import FunctionRef


class Clock(Protocol):
    """Time as a workflow sees it."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time; sleep blocks the calling thread."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """A clock for tests: sleep returns at once and moves time forward.

    `slept` records every sleep, so tests can assert backoff delays exactly."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            if seconds > 0:
                self._now += seconds


@dataclass
class HttpRequest:
    """One outgoing HTTP request, as the http.* builtins prepared it."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float = 300.0


@dataclass
class HttpResponse:
    """What came back: status, headers (as received), raw body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class HttpTransport(Protocol):
    """Sends one request; raises WorkflowError (ConnectionError/TimeoutError...)
    only when no response arrived."""

    def send(self, request: HttpRequest) -> HttpResponse: ...


MAX_REDIRECTS = 10
_REDIRECTS = (301, 302, 303, 307, 308)


def follow_redirects(send_once: Callable[[HttpRequest], HttpResponse],
                     request: HttpRequest) -> HttpResponse:
    """Send, following 3xx redirects as an HTTP client does: a GET or HEAD
    follows 301/302/303/307/308; any other method follows 307/308 only (with
    its body), so a POST answered 302/303 gets that response back. At most
    MAX_REDIRECTS hops, then the last 3xx response is returned. The
    Authorization header is dropped when a redirect leaves the original host."""
    origin = urllib.parse.urlsplit(request.url).netloc
    for _ in range(MAX_REDIRECTS + 1):
        response = send_once(request)
        location = next((v for k, v in response.headers.items() if k.lower() == "location"),
                        None)
        if response.status not in _REDIRECTS or not location:
            return response
        if request.method not in ("GET", "HEAD") and response.status not in (307, 308):
            return response
        url = urllib.parse.urljoin(request.url, location)
        headers = dict(request.headers)
        if urllib.parse.urlsplit(url).netloc != origin:
            for k in [k for k in headers if k.lower() == "authorization"]:
                del headers[k]
        request = dataclasses.replace(request, url=url, headers=headers)
    return response


class UrllibTransport:
    """Real HTTP(S) with the standard library's http.client; follows redirects."""

    def send(self, request: HttpRequest) -> HttpResponse:
        return follow_redirects(self.send_once, request)

    def send_once(self, request: HttpRequest) -> HttpResponse:
        """One request, one response (a 3xx included)."""
        import http.client  # here, not at import: it costs ~50 ms of start-up

        parts = urllib.parse.urlsplit(request.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise make_error("ValueError", f"invalid URL: {request.url}")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=request.timeout)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            conn.request(request.method, path, body=request.body, headers=request.headers)
            resp = conn.getresponse()
            body = resp.read()
            return HttpResponse(resp.status, dict(resp.getheaders()), body)
        except TimeoutError as exc:
            raise make_error("TimeoutError", f"HTTP request timed out: {exc}") from exc
        except ConnectionRefusedError as exc:
            raise make_error(
                ["ConnectionFailedError"], f"connection failed: {request.url}: {exc}"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise make_error("ConnectionError", f"connection error: {request.url}: {exc}") from exc
        finally:
            conn.close()


class RewritingTransport:
    """Rewrites each request's URL, then delegates (tests: answer on loopback)."""

    def __init__(
        self, rewrite: Callable[[str], str], inner: HttpTransport | None = None
    ) -> None:
        self.rewrite = rewrite
        self.inner = inner or UrllibTransport()

    def send(self, request: HttpRequest) -> HttpResponse:
        # Redirects are followed here, so that their targets are rewritten too.
        once = getattr(self.inner, "send_once", self.inner.send)
        return follow_redirects(
            lambda r: once(dataclasses.replace(r, url=self.rewrite(r.url))), request)


def loopback_rewriter(base: str) -> Callable[[str], str]:
    """A rewrite function sending every URL's path+query to `base` (http://127.0.0.1:N)."""

    base = base.rstrip("/")

    def rewrite(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        out = base + (parts.path or "/")
        return out + ("?" + parts.query if parts.query else "")

    return rewrite


def default_env(
    project_id: str = "local-project",
    project_number: str = "000000000000",
    location: str = "local",
    workflow_id: str = "workflow",
    revision_id: str = "000001-000",
    execution_id: str = "00000000-0000-0000-0000-000000000000",
    service_account: str = "local@local-project.iam.gserviceaccount.com",
) -> dict[str, str]:
    """The built-in environment variables every execution sees."""
    return {
        "GOOGLE_CLOUD_PROJECT_ID": project_id,
        "GOOGLE_CLOUD_PROJECT_NUMBER": project_number,
        "GOOGLE_CLOUD_LOCATION": location,
        "GOOGLE_CLOUD_WORKFLOW_ID": workflow_id,
        "GOOGLE_CLOUD_WORKFLOW_REVISION_ID": revision_id,
        "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID": execution_id,
        "GOOGLE_CLOUD_SERVICE_ACCOUNT_NAME": service_account,
    }


class Services:
    """The world as one execution sees it; see the module docstring."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
        log_sink: Callable[[dict[str, Any]], None] | None = None,
        http_transport: HttpTransport | None = None,
        token_provider: Callable[[str, Any], str | None] | None = None,
    ) -> None:
        self.clock: Clock = clock or RealClock()
        self.env: dict[str, str] = default_env() if env is None else env
        self.log_entries: list[dict[str, Any]] = []
        self._log_sink = log_sink
        self._log_lock = threading.Lock()
        self.http_transport: HttpTransport = http_transport or UrllibTransport()
        self._token_provider = token_provider
        self._caller: Callable[[FunctionRef, list[Any]], Any] | None = None
        # set on the per-execution copy (bind): connectors stop waiting when it is set
        self.cancel_event: threading.Event | None = None

    def log(self, entry: dict[str, Any]) -> None:
        """sys.log sink: the configured callback, else kept in log_entries."""
        if self._log_sink is not None:
            self._log_sink(entry)
        else:
            with self._log_lock:
                self.log_entries.append(entry)

    def token(self, kind: str, audience_or_scopes: Any = None) -> str | None:
        """Token for `auth: {type: kind}`; None means send no Authorization header."""
        if self._token_provider is None:
            return None
        return self._token_provider(kind, audience_or_scopes)

    def call_function(self, ref: FunctionRef | str, args: list[Any]) -> Any:
        """Call a function reference with positional args (needs a bound execution)."""
        if self._caller is None:
            raise make_error("TypeError", f"cannot call {ref}: no execution is running")
        if isinstance(ref, str):
            ref = FunctionRef(ref)
        if not isinstance(ref, FunctionRef):
            raise make_error("TypeError", f"not a function: {ref!r}")
        return self._caller(ref, args)

    def bind(self, caller: Callable[[FunctionRef, list[Any]], Any]) -> Services:
        """A per-execution copy whose call_function runs in that execution."""
        bound = copy.copy(self)
        bound._caller = caller
        return bound


__all__ = [
    "Clock",
    "FunctionRef",
    "HttpRequest",
    "HttpResponse",
    "HttpTransport",
    "RealClock",
    "RewritingTransport",
    "Services",
    "UrllibTransport",
    "VirtualClock",
    "WorkflowError",
    "default_env",
    "loopback_rewriter",
]
