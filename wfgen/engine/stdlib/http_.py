"""The `http` namespace: real HTTP requests through rt.http_transport.

Request: `query` is URL-encoded and appended to `url`; `body` is sent as-is
when it is bytes (Content-Type application/octet-stream unless the caller set
one), as text for a text/* Content-Type, form-encoded for
application/x-www-form-urlencoded, and JSON-encoded otherwise (Content-Type
`application/json; charset=utf-8` unless the caller set one). Every request
carries `User-Agent: GoogleCloudWorkflows; (+https://cloud.google.com/workflows/docs)`,
after the caller's own User-Agent when there is one. 3xx redirects are
followed by the transport (services.py). `auth: {type: OAuth2
| OIDC}` asks rt.token(type, scopes | audience) for a token (scopes default to
cloud-platform, the audience to the URL) and sends `Authorization: Bearer
...`; the local engine has no Google credentials, so by default (no token
provider) no header is sent.
`private_service_name` and `ca_certificate` are accepted and ignored locally.

Response: a map {body, code, headers} (header names in canonical form,
"Content-Type"); a JSON Content-Type body is decoded,
other bodies become a string when they are UTF-8 text and bytes otherwise.
Status >= 400 raises an error tagged HttpError that carries code, headers and
body. No response at all: ConnectionError / ConnectionFailedError /
TimeoutError from the transport."""

from __future__ import annotations

import urllib.parse
from typing import Any

from wfgen.engine.errors import WorkflowError, make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import format_double, is_number, type_error, type_name
from wfgen.engine.stdlib.json_ import from_json_text, to_json_text

DEFAULT_TIMEOUT = 300
MAX_TIMEOUT = 1800
_AUTH_TYPES = ("OAuth2", "OIDC")
_CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


# Sent with every request; a caller's own User-Agent comes first, this after it
# (http-requests page).
USER_AGENT = "GoogleCloudWorkflows; (+https://cloud.google.com/workflows/docs)"


def _header(headers: dict[str, str], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def _canonical(name: str) -> str:
    """Header name in canonical MIME form ("content-type" -> "Content-Type")."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _query_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return format_double(value)
    if is_number(value):
        return str(value)
    raise make_error(
        "TypeError",
        f"http: query values must be strings, numbers, booleans or lists of those, "
        f"got {type_name(value)}",
    )


def _with_query(url: str, query: Any) -> str:
    if query is None:
        return url
    if not isinstance(query, dict):
        type_error("http", "query", "a map", query)
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        items = value if isinstance(value, list) else [value]
        pairs.extend((key, _query_text(item)) for item in items)
    if not pairs:
        return url
    encoded = urllib.parse.urlencode(pairs)
    base, _, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        sep = ""
    return base + sep + encoded + ("#" + fragment if fragment else "")


def _encode_body(body: Any, headers: dict[str, str]) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        if _header(headers, "Content-Type") is None:
            headers["Content-Type"] = "application/octet-stream"
        return bytes(body)
    content_type = (_header(headers, "Content-Type") or "").lower()
    if content_type.startswith("text/"):
        if not isinstance(body, str):
            type_error("http", "body", "a string for a text/* Content-Type", body)
        return body.encode("utf-8")
    if content_type.startswith("application/x-www-form-urlencoded"):
        if isinstance(body, str):
            return body.encode("utf-8")
        if isinstance(body, dict):
            return urllib.parse.urlencode(
                [(k, _query_text(v)) for k, v in body.items()]
            ).encode("ascii")
        type_error("http", "body", "a map or string for form encoding", body)
    if not content_type:
        headers["Content-Type"] = "application/json; charset=utf-8"
    return to_json_text(body).encode("utf-8")


def _decode_body(data: bytes, headers: dict[str, str]) -> Any:
    content_type = (_header(headers, "Content-Type") or "").lower()
    mime = content_type.split(";", 1)[0].strip()
    if mime == "application/json" or mime.endswith("+json"):
        if not data.strip():
            return None
        try:
            return from_json_text(data.decode("utf-8"))
        except (UnicodeDecodeError, WorkflowError):  # malformed JSON: keep the text
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _request(
    rt: Any,
    method: Any,
    url: Any,
    timeout: Any,
    body: Any,
    headers: Any,
    query: Any,
    auth: Any,
) -> dict[str, Any]:
    """Validate the documented arguments, send, and shape the response."""
    from wfgen.engine.services import HttpRequest

    if not isinstance(method, str) or not method.isalpha():
        raise make_error("ValueError", f"http.request: invalid method {method!r}")
    if not isinstance(url, str):
        type_error("http", "url", "a string", url)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise make_error("ValueError", f"http: invalid URL {url!r}")
    if timeout is None:
        timeout = DEFAULT_TIMEOUT
    if not is_number(timeout):
        type_error("http", "timeout", "a number", timeout)
    if timeout <= 0 or timeout > MAX_TIMEOUT:
        raise make_error("ValueError", f"http: timeout must be in (0, {MAX_TIMEOUT}]: {timeout}")
    out_headers: dict[str, str] = {}
    if headers is not None:
        if not isinstance(headers, dict):
            type_error("http", "headers", "a map", headers)
        for key, value in headers.items():
            if not isinstance(value, str):
                raise make_error(
                    "TypeError", f"http: header {key!r} must be a string, got {type_name(value)}"
                )
            out_headers[key] = value
    if auth is not None:
        if not isinstance(auth, dict):
            type_error("http", "auth", "a map", auth)
        kind = auth.get("type")
        if kind not in _AUTH_TYPES:
            raise make_error("ValueError", f"http: auth.type must be OAuth2 or OIDC, got {kind!r}")
        if kind == "OIDC":  # the audience defaults to the URL being called
            detail = auth.get("audience") or url
        else:
            detail = auth.get("scopes") or auth.get("scope") or [_CLOUD_PLATFORM_SCOPE]
        token = rt.token(kind, detail)
        if token and _header(out_headers, "Authorization") is None:
            out_headers["Authorization"] = f"Bearer {token}"
    caller_agent = None
    for key in [k for k in out_headers if k.lower() == "user-agent"]:
        caller_agent = out_headers.pop(key)
    out_headers["User-Agent"] = (f"{caller_agent} {USER_AGENT}" if caller_agent
                                 else USER_AGENT)
    payload = _encode_body(body, out_headers)
    request = HttpRequest(
        method=method.upper(),
        url=_with_query(url, query),
        headers=out_headers,
        body=payload,
        timeout=float(timeout),
    )
    response = rt.http_transport.send(request)
    resp_headers = {_canonical(k): v for k, v in response.headers.items()}
    result_body = _decode_body(response.body, resp_headers)
    if response.status >= 400:
        raise make_error(
            "HttpError",
            f"HTTP server responded with error code {response.status}",
            code=response.status,
            headers=resp_headers,
            body=result_body,
        )
    return {"body": result_body, "code": response.status, "headers": resp_headers}


@builtin("http.request")
def request(
    rt: Any,
    method: Any,
    url: Any,
    timeout: Any = None,
    body: Any = None,
    headers: Any = None,
    query: Any = None,
    auth: Any = None,
    private_service_name: Any = None,
    ca_certificate: Any = None,
) -> dict[str, Any]:
    """Any HTTP method."""
    return _request(rt, method, url, timeout, body, headers, query, auth)


@builtin("http.get")
def get(
    rt: Any,
    url: Any,
    timeout: Any = None,
    headers: Any = None,
    query: Any = None,
    auth: Any = None,
    private_service_name: Any = None,
    ca_certificate: Any = None,
) -> dict[str, Any]:
    """HTTP GET (no body)."""
    return _request(rt, "GET", url, timeout, None, headers, query, auth)


def _with_body(method: str) -> Any:
    def call(
        rt: Any,
        url: Any,
        timeout: Any = None,
        body: Any = None,
        headers: Any = None,
        query: Any = None,
        auth: Any = None,
        private_service_name: Any = None,
        ca_certificate: Any = None,
    ) -> dict[str, Any]:
        return _request(rt, method, url, timeout, body, headers, query, auth)

    call.__name__ = method.lower()
    call.__doc__ = f"HTTP {method} with an optional body."
    return builtin(f"http.{method.lower()}")(call)


post = _with_body("POST")
put = _with_body("PUT")
patch = _with_body("PATCH")
delete = _with_body("DELETE")
