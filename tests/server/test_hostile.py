"""Hostile input against every route serve has: malformed JSON, deep nesting,
wrong types, nulls, huge values, odd names, bad page tokens, raw protocol
junk, junk gRPC messages and slow clients. Whatever comes in, serve answers a
4xx with a JSON error (never a 5xx, never a traceback), stays alive, and
nothing a request stored makes a later read fail."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
from typing import Any

import grpc
import pytest

from tests.server.serve_process import LOCATION, PROJECT, Serve
from wfgen.server.discovery import Method, routes

pytestmark = pytest.mark.xdist_group("server_hostile")
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
SAMPLES = {"projectsId": PROJECT, "locationsId": LOCATION, "workflowsId": "hostile",
           "executionsId": "00000000-0000-0000-0000-000000000000", "operationsId": "op-1",
           "jobsId": "hostile-job", "triggersId": "hostile-trigger", "topicsId": "hostile-topic",
           "project": PROJECT, "zone": f"{LOCATION}-a", "instance": "hostile-vm",
           "operation": "op-1", "family": "debian-12"}
RAW_BODIES = [b"{", b"[", b"nul", b"\xff\xfe\x00", b"[" * 100_000, b'{"a":' * 50_000,
              b"null", b"[]", b'"x"', b"1e999", b"{}", b'{"name": "\\ud800"}',
              json.dumps({"a": [{"b": None}] * 3}).encode()]
WRONG_VALUES: list[Any] = [-1, "x", [], {}, None, True, 1e308, "x" * 200_000, [None],
                           {"k": {"k": {"k": -1}}}, 2**70, "9" * 5000]
ODD_NAMES = ["..", "%00", "a" * 5000, "%C3%BC", "%2F", "%20", "%25", ":cancel"]
FORGED_TOKEN = base64.urlsafe_b64encode(f"{PARENT}#99999999999999999999".encode()).decode()
QUERIES = ["pageSize=-1", "pageSize=99999999999999", "pageToken=%%%", "pageSize=1.5",
           f"pageToken={FORGED_TOKEN}",
           "view=SIDEWAYS", "filter=(((((", "orderBy=name%20desc%20desc", "updateMask=nope",
           "maxResults=-5", "maxResults=1e9", "validateOnly=perhaps", "workflowId=" + "w" * 300]


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("hostile")).start()
    yield server
    server.stop()
    assert "internal error" not in server.log(), server.log()
    assert "Traceback" not in server.log(), server.log()


def path_of(method: Method) -> str:
    """A concrete path for a documented method (sample names for its parameters)."""
    path = method.pattern.pattern.replace("\\", "")
    for name in method.path_names:
        path = path.replace("([^/:]+)", SAMPLES.get(name, "x"), 1).replace(
            "(.+?)", SAMPLES.get(name, "x"), 1)
    return path


def send(serve: Serve, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=60)
    try:
        connection.request(method, path, body=body,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def assert_refused_well(status: int, data: bytes, what: str) -> None:
    assert status < 500, f"{what}: {status} {data[:300]!r}"
    assert b"Traceback" not in data, what
    if status >= 400:
        assert "error" in json.loads(data), f"{what}: {data[:300]!r}"


def bodies_for(method: Method) -> list[bytes]:
    """Raw junk, then each top-level field of the request schema set to each wrong value."""
    out = list(RAW_BODIES)
    schema = method.document.schema(method.request or "")
    for field in schema.get("properties", {}):
        out += [json.dumps({field: value}).encode() for value in WRONG_VALUES]
    return out


@pytest.mark.parametrize("method", routes().methods, ids=lambda m: m.id)
def test_no_route_answers_5xx_to_hostile_input(serve, method):
    path = path_of(method)
    sent = 0
    if method.http_method in ("POST", "PUT", "PATCH"):
        for body in bodies_for(method):
            status, data = send(serve, method.http_method, path, body)
            assert_refused_well(status, data, f"{method.id} body {body[:80]!r}")
            sent += 1
    for query in QUERIES:
        status, data = send(serve, method.http_method, f"{path}?{query}",
                            b"{}" if method.http_method != "GET" else None)
        assert_refused_well(status, data, f"{method.id} ?{query[:80]}")
        sent += 1
    for odd in ODD_NAMES:
        head, _, _ = path.rpartition("/")
        status, data = send(serve, method.http_method, f"{head}/{odd}", b"{}")
        assert_refused_well(status, data, f"{method.id} name {odd[:40]}")
        sent += 1
    for verb in ("BREW", "OPTIONS", "TRACE", "CONNECT"):
        status, data = send(serve, verb, path)
        assert status in (404, 405), (verb, status, data[:200])
        assert "error" in json.loads(data)
        sent += 1
    assert sent >= len(QUERIES) + len(ODD_NAMES) + 4


def test_undescribed_paths_answer_json_errors(serve):
    for method, path, body in [
            ("POST", f"/v1/{PARENT}/workflows/w/executions/e/callbacks/abc", b"[" * 100_000),
            ("POST", "/batch/compute/v1", b"--x\r\n\r\nGET\r\n--x--"),
            ("POST", "/batch/compute/v1", b"junk"), ("GET", "/", None),
            ("GET", "/v9/nothing/here", None), ("DELETE", "/v1/projects", None),
            ("POST", "/wfgen/test/clock", b"{}")]:
        status, data = send(serve, method, path, body,
                            {"Content-Type": "multipart/mixed; boundary=x"}
                            if "batch" in path else None)
        assert_refused_well(status, data, f"{method} {path}")


def test_nothing_stored_makes_a_later_read_fail(serve):
    # what used to be stored and then broke every list: a string for a message field,
    # numbers for maps, null sub-messages, a huge description
    zone = f"/compute/v1/projects/{PROJECT}/zones/{LOCATION}-a"
    for body in ({"name": "later-a", "scheduling": "x"}, {"name": "later-b", "metadata": -1},
                 {"name": "later-c", "labels": -1}):
        status, _ = send(serve, "POST", f"{zone}/instances", json.dumps(body).encode())
        assert status == 400
    job = {"name": f"{PARENT}/jobs/later", "schedule": "* * * * *", "retryConfig": None,
           "timeZone": "Z" * 100_000, "httpTarget": {"uri": "http://127.0.0.1:9/"}}
    status, data = send(serve, "POST", f"/v1/{PARENT}/jobs", json.dumps(job).encode())
    assert status == 400 and b"install" not in data  # no OSError naming a path
    status, _ = send(serve, "POST", f"/v1/{PARENT}/workflows?workflowId=later",
                     json.dumps({"sourceContents": "main:\n  steps:\n    - a:\n        return: 1\n",
                                 "description": "d" * 2_000_000}).encode())
    assert status == 400
    for path in (f"{zone}/instances", f"/compute/v1/projects/{PROJECT}/aggregated/instances",
                 f"/v1/{PARENT}/workflows", f"/v1/{PARENT}/jobs", f"/v1/{PARENT}/triggers"):
        status, data = send(serve, "GET", path)
        assert status == 200, (path, data[:300])


def raw(serve: Serve, data: bytes, *, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", serve.port), timeout=wait) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def alive(serve: Serve) -> None:
    status, _ = send(serve, "GET", f"/v1/{PARENT}/workflows")
    assert status == 200


def test_raw_protocol_junk(serve):
    big = b"POST /v1/%s/workflows?workflowId=x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
    cases = {
        "binary": bytes(range(256)) * 4 + b"\r\n\r\n",
        "bad request line": b"HELLO\r\n\r\n",
        "unknown method": b"BREW /v1/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "huge header": b"GET / HTTP/1.1\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n",
        "many headers": b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
        "huge request line": b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
        "http/0.9": b"GET /\r\n",
        "negative length": b"POST /v1/x HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        "length not a number": b"POST /v1/x HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
        "chunked": b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n0\r\n\r\n",
        "short body": big % (PARENT.encode(), 100) + b"{}",
        "50 MB announced": big % (PARENT.encode(), 50 << 20) + b"GET / HTTP/1.1\r\n\r\n",
    }
    for what, data in cases.items():
        answer = raw(serve, data, wait=3.0 if what == "short body" else 5.0)
        if answer:
            head = answer.split(b"\r\n", 1)[0]
            assert head.startswith(b"HTTP/1.1 4"), (what, answer[:300])
            assert b"application/json" in answer.split(b"\r\n\r\n", 1)[0], (what, answer[:300])
            assert answer.count(b"HTTP/1.1 ") == 1, (what, answer[:500])  # the rest is unread
        alive(serve)


def test_a_body_over_the_limit_is_refused_unread_and_the_connection_closed(serve):
    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/%s/workflows?workflowId=big HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                     % (PARENT.encode(), 50 << 20))
        answer = b""
        while chunk := sock.recv(65536):  # serve closes without waiting for 50 MB
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_slow_clients_do_not_hold_up_others(serve):
    slow = []
    try:
        for _ in range(30):
            sock = socket.create_connection(("127.0.0.1", serve.port), timeout=10)
            sock.sendall(b"POST /v1/" + PARENT.encode() + b"/workflows HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 1000\r\n\r\n{")  # and then nothing
            slow.append(sock)
        started = time.monotonic()
        alive(serve)
        assert time.monotonic() - started < 2.0
    finally:
        for sock in slow:
            sock.close()
    alive(serve)


GRPC_METHODS = [
    "/google.cloud.workflows.executions.v1.Executions/CreateExecution",
    "/google.cloud.workflows.executions.v1.Executions/GetExecution",
    "/google.cloud.workflows.executions.v1.Executions/CancelExecution",
    "/google.cloud.workflows.executions.v1.Executions/ListExecutions",
    "/google.cloud.workflows.v1.Workflows/CreateWorkflow",
    "/google.cloud.workflows.v1.Workflows/GetWorkflow",
    "/google.cloud.workflows.v1.Workflows/ListWorkflows",
    "/google.cloud.workflows.v1.Workflows/UpdateWorkflow",
    "/google.cloud.workflows.v1.Workflows/DeleteWorkflow",
    "/google.cloud.workflows.v1.Workflows/ListWorkflowRevisions",
    "/google.longrunning.Operations/GetOperation",
]


def test_grpc_junk_is_invalid_argument_on_every_method(serve):
    with grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}") as channel:
        for name in GRPC_METHODS:
            call = channel.unary_unary(name, request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
            for junk in (b"\xff\xff\xff\xff\x0f", b"\x0a\xff\x01", b"\x08" * 7):
                with pytest.raises(grpc.RpcError) as error:
                    call(junk, timeout=10)
                assert error.value.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                              grpc.StatusCode.NOT_FOUND), (name, junk)
    alive(serve)
