"""The dashboard's HTTP side, one API on serve's REST port: routes under /ui/
(and / redirecting there), pages rendered from jinja2 templates with
autoescaping on (a user's string is always text), strict security headers
(no script but our own file, nothing from outside the machine), and the two
forms, Cancel and Run again, which go through serve's own Executions API
logic after a CSRF token and same-origin check."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2

from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server.ui import present
from wfgen.server.ui.pages import Pages
from wfgen.server.ui.queries import STATES, PageTokenError

HERE = Path(__file__).parent
STATIC = {"style.css": "text/css; charset=utf-8",
          "live.js": "text/javascript; charset=utf-8",
          "icon.svg": "image/svg+xml"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
                               "img-src 'self'; connect-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make a form's Origin "null"
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
NOTICES = {"cancelled": "Cancel requested: the execution is stopped.",
           "ended": "The execution had already ended.",
           "started": "Started again with the same argument."}
Log = Callable[[str], None]


def workflow_path(name: str) -> str:
    """The page of projects/P/locations/L/workflows/W (the overview for anything else)."""
    parts = name.split("/")
    if len(parts) != 6 or parts[0::2] != ["projects", "locations", "workflows"]:
        return "/ui/"
    return "/ui/workflows/" + "/".join(quote(p, safe="") for p in parts[1::2])


def execution_path(name: str) -> str:
    """The page of .../workflows/W/executions/ID (the overview for anything else)."""
    parts = name.split("/")
    if len(parts) != 8 or parts[0::2] != ["projects", "locations", "workflows", "executions"]:
        return "/ui/"
    return "/ui/executions/" + "/".join(quote(p, safe="") for p in parts[1::2])


def vm_path(project: str, zone: str, name: str) -> str:
    return "/ui/vms/" + "/".join(quote(p, safe="") for p in (project, zone, name))


class Dashboard:
    """GET /ui/... pages; POST /ui/executions/.../cancel|rerun."""

    def __init__(self, pages: Pages, log: Log) -> None:
        self.pages = pages
        self.log = log
        self._secret = secrets.token_bytes(32)  # CSRF tokens die with this serve
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(present.FILTERS)
        self.env.globals.update(workflow_path=workflow_path, execution_path=execution_path,
                                vm_path=vm_path, csrf=self.csrf, states=STATES)

    # -- dispatch ----------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        path = request.path
        if path == "/" and request.method in ("GET", "HEAD"):
            return Response(302, b"", "text/plain", {"Location": "/ui/"})
        if path != "/ui" and not path.startswith("/ui/"):
            return None
        try:
            if request.method == "POST":
                return self._post(request)
            if request.method not in ("GET", "HEAD"):
                return self._page("error.html.j2", {"status": 405, "message":
                                  f"{request.method} is not allowed here"}, 405)
            return self._get(request)
        except ApiError as exc:
            return self._page("error.html.j2", {"status": exc.status,
                                                "message": exc.message}, exc.status)
        except PageTokenError:
            return self._page("error.html.j2", {"status": 400, "message":
                                                "That page_token is not one of ours."}, 400)
        except Exception as exc:  # a wfgen bug: one log line, a page that says so
            self.log(f"wfgen serve: dashboard error on {request.method} {path}: "
                     f"{type(exc).__name__}: {exc}")
            return self._page("error.html.j2", {"status": 500, "message":
                                                "The dashboard failed on this page; serve's "
                                                "log has the details."}, 500)

    def _get(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/")[2:] if p]
        if not parts:
            return self._page("home.html.j2", self.pages.home())
        kind, rest = parts[0], parts[1:]
        if kind == "static" and len(rest) == 1 and rest[0] in STATIC:
            body = (HERE / "static" / rest[0]).read_bytes()
            return Response(200, body, STATIC[rest[0]], {**HEADERS,
                                                         "Cache-Control": "max-age=300"})
        if kind == "workflows" and len(rest) == 3:
            state = request.arg("state") or None
            if state is not None and state not in STATES:
                raise ApiError(400, f"state must be one of {', '.join(STATES)}")
            name = f"projects/{rest[0]}/locations/{rest[1]}/workflows/{rest[2]}"
            return self._page("workflow.html.j2", self.pages.workflow(
                name, state, request.arg("page_token") or None))
        if kind == "executions" and len(rest) == 4:
            context = self.pages.execution(_execution_name(rest))
            context["notice"] = NOTICES.get(request.arg("done") or "", "")
            return self._page("execution.html.j2", context)
        if kind == "vms" and len(rest) == 3:
            return self._page("vm.html.j2", self.pages.vm(*rest))
        if kind == "pubsub" and not rest:
            return self._page("pubsub.html.j2", self.pages.pubsub())
        raise ApiError(404, "There is no such page.")

    # -- forms ---------------------------------------------------------------------
    def csrf(self, action: str, name: str) -> str:
        """The token a form for `action` on `name` carries (this serve's secret)."""
        return hmac.new(self._secret, f"{action}\0{name}".encode(),
                        hashlib.sha256).hexdigest()[:40]

    def _post(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/")[2:] if p]
        if len(parts) != 6 or parts[0] != "executions" or parts[5] not in ("cancel", "rerun"):
            raise ApiError(404, "There is no such form.")
        name, action = _execution_name(parts[1:5]), parts[5]
        _same_origin(request)
        form = parse_qs(request.body.decode("utf-8", errors="replace"))
        token = (form.get("csrf") or [""])[-1]
        if not hmac.compare_digest(token.encode(), self.csrf(action, name).encode()):
            raise ApiError(403, "This form has expired or did not come from this page "
                                "(bad CSRF token): reload the page and try again.")
        executions = self.pages.executions
        if action == "cancel":
            try:
                executions.cancel(name, wait=5.0)
                done = "cancelled"
            except ApiError as exc:
                if exc.code_name != "FAILED_PRECONDITION":
                    raise
                done = "ended"
            return _see_other(f"{execution_path(name)}?done={done}")
        original = executions.get(name)
        body = {"argument": original["argument"]} if original.get("argument") else {}
        started = executions.create(name.split("/executions/")[0], body)
        return _see_other(f"{execution_path(started['name'])}?done=started")

    # -- rendering -----------------------------------------------------------------
    def _page(self, template: str, context: dict[str, Any], status: int = 200) -> Response:
        context.setdefault("live", False)
        html = self.env.get_template(template).render(**context)
        return Response(status, html.encode(), "text/html; charset=utf-8", dict(HEADERS))


def _execution_name(parts: list[str]) -> str:
    project, location, workflow, execution = parts
    return (f"projects/{project}/locations/{location}/workflows/{workflow}/"
            f"executions/{execution}")


def _same_origin(request: Request) -> None:
    """A form post must come from a page of this serve (what browsers say of it)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise ApiError(403, f"refused a form sent from another site (Sec-Fetch-Site: {site})")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and origin != f"http://{host}":
        raise ApiError(403, "refused a form sent from another origin")


def _see_other(location: str) -> Response:
    return Response(303, b"", "text/plain", {"Location": location, **HEADERS})
