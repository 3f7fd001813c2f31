"""serve closed to web pages (wfgen.server.guard): a request with a foreign Host (DNS
rebinding), a foreign Origin or Sec-Fetch-Site: cross-site is refused with 403, a
non-JSON body on a REST API with 415, before any handler runs, in Google's error
shape; gcloud, the Python clients and curl-like requests pass unchanged.

serve runs with --on-host here, so a request that got through would really run its
startup script: the refusals are checked by the file it did not write."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from google.cloud.workflows_v1 import WorkflowsClient

from tests.server.serve_process import GCLOUD, PARENT, PROJECT, Serve

pytestmark = pytest.mark.xdist_group("serve_guard")

ZONE = "us-central1-a"
INSTANCES = f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("serve-guard"), data_dir=":memory:").start()
    yield server
    assert server.stop() == 0, server.log()


def send(serve: Serve, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """A raw request whose Host header is ours to choose."""
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    try:
        conn.request(method, path, body=body or None,
                     headers={"Host": f"127.0.0.1:{serve.port}", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        if "json" not in response.getheader("Content-Type", ""):
            return response.status, raw.decode(errors="replace")  # the dashboard's HTML pages
        return response.status, json.loads(raw) if raw.strip() else None
    finally:
        conn.close()


def attack_body(name: str, mark: Path) -> bytes:
    """The insert a hostile page sends: a VM whose startup script writes a file here."""
    vm = {"name": name, "machineType": f"zones/{ZONE}/machineTypes/e2-small",
          "metadata": {"items": [{"key": "startup-script", "value": f"id > {mark}"}]}}
    return json.dumps(vm).encode()


def no_instances(serve: Serve) -> bool:
    status, listed = serve.call("GET", INSTANCES)
    assert status == 200, listed
    return not listed.get("items")


def assert_google_error(answer: Any, code: int, status: str) -> None:
    error = answer["error"]
    assert error["code"] == code and error["status"] == status
    assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize(("case", "headers", "code", "status"), [
    ("cross-site text/plain", {"Content-Type": "text/plain",
                               "Origin": "https://attacker.example"}, 403, "PERMISSION_DENIED"),
    ("dns rebinding", {"Content-Type": "application/json",
                       "Host": "attacker.example"}, 403, "PERMISSION_DENIED"),
    ("rebinding with our port", {"Content-Type": "application/json",
                                 "Host": "attacker.example:{port}"}, 403, "PERMISSION_DENIED"),
    ("form post", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "INVALID_ARGUMENT"),
    ("multipart form", {"Content-Type": "multipart/form-data; boundary=x"}, 415,
     "INVALID_ARGUMENT"),
    ("text/plain without origin", {"Content-Type": "text/plain"}, 415, "INVALID_ARGUMENT"),
    ("no content type", {}, 415, "INVALID_ARGUMENT"),
    ("sec-fetch-site cross-site", {"Content-Type": "application/json",
                                   "Sec-Fetch-Site": "cross-site"}, 403, "PERMISSION_DENIED"),
    ("origin null", {"Content-Type": "application/json", "Origin": "null"}, 403,
     "PERMISSION_DENIED"),
])
def test_a_web_pages_insert_is_refused_and_runs_nothing(serve, tmp_path, case, headers, code,
                                                        status):
    mark = tmp_path / "pwned"
    headers = {k: v.format(port=serve.port) for k, v in headers.items()}
    got, answer = send(serve, "POST", INSTANCES, attack_body("attack-1", mark), headers)
    assert got == code, (case, answer)
    assert_google_error(answer, code, status)
    time.sleep(0.5)  # what a VM would have had to write the file
    assert not mark.exists() and no_instances(serve)


def test_the_guard_stands_before_the_callback_routes(serve):
    path = (f"/v1/{PARENT}/workflows/w/executions/e/callbacks/c")
    got, answer = send(serve, "POST", path, b"{}", {"Content-Type": "application/json",
                                                    "Host": "evil.example"})
    assert got == 403, answer  # not the callback's own 404/401
    got, answer = send(serve, "POST", path, b"{}", {"Content-Type": "text/plain"})
    assert got != 415, answer  # a callback takes any body (sendHttpCallback: HttpBody)


def test_ui_paths_are_exempt_from_the_json_rule_only(serve):
    form = b"csrf=x&name=y"
    got, answer = send(serve, "POST", "/ui/workflows",
                       form, {"Content-Type": "application/x-www-form-urlencoded",
                              "Origin": f"http://127.0.0.1:{serve.port}",
                              "Sec-Fetch-Site": "same-origin"})
    assert got == 404, answer  # past the guard: the dashboard has no such form
    assert "There is no such form" in answer
    got, _ = send(serve, "POST", "/ui/workflows", form,
                  {"Content-Type": "application/x-www-form-urlencoded",
                   "Origin": "https://attacker.example"})
    assert got == 403
    got, _ = send(serve, "GET", "/ui/", headers={"Host": "attacker.example"})
    assert got == 403


def test_every_address_serve_answers_on_passes(serve):
    for host in (f"127.0.0.1:{serve.port}", f"localhost:{serve.port}",
                 f"LOCALHOST:{serve.port}", f"[::1]:{serve.port}"):
        got, answer = send(serve, "GET", f"/v1/{PARENT}/workflows",
                           headers={"Host": host, "Origin": f"http://{host}",
                                    "Sec-Fetch-Site": "same-origin"})
        assert got == 200, (host, answer)
    for host in ("127.0.0.1", f"127.0.0.1:{serve.port + 1}", "", "localhost.:1"):
        got, _ = send(serve, "GET", f"/v1/{PARENT}/workflows", headers={"Host": host})
        assert got == 403, host


def test_curl_style_json_and_a_batch_pass(serve):
    got, answer = send(serve, "POST", f"/v1/projects/{PROJECT}/topics/train:publish",
                       json.dumps({"messages": [{"data": "e30="}]}).encode(),
                       {"Content-Type": "application/json; charset=utf-8"})
    assert got == 404 and answer["error"]["status"] == "NOT_FOUND"  # the handler answered
    batch = (b"--b1\r\nContent-Type: application/http\r\nContent-ID: <x+0>\r\n\r\n"
             b"GET " + INSTANCES.encode() + b" HTTP/1.1\r\n\r\n\r\n--b1--\r\n")
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    conn.request("POST", "/batch/compute/v1", body=batch,
                 headers={"Content-Type": "multipart/mixed; boundary=b1"})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    assert response.status == 200 and "compute#instanceList" in text


def test_the_python_clients_pass(serve):
    workflows = WorkflowsClient(transport="rest", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": serve.url})
    op = workflows.create_workflow(parent=PARENT, workflow_id="guarded",
                                   workflow={"source_contents": "- r:\n    return: 1\n"})
    assert op.result(timeout=60).name.endswith("/workflows/guarded")
    instances = compute_v1.InstancesClient(transport="rest", credentials=AnonymousCredentials(),
                                           client_options={"api_endpoint": serve.url})
    assert list(instances.list(project=PROJECT, zone=ZONE)) == []


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_gcloud_passes(serve, tmp_path):
    source = tmp_path / "plain.yaml"
    source.write_text("- r:\n    return: 1\n")
    deployed = serve.gcloud("workflows", "deploy", "via-gcloud", f"--source={source}")
    assert deployed.returncode == 0, deployed.stderr
    listed = serve.gcloud("compute", "instances", "list", "--format=json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
    deleted = serve.gcloud("compute", "instances", "delete", "nope", "--zone", ZONE, "--quiet")
    assert deleted.returncode != 0 and "was not found" in deleted.stderr  # a batch, answered
