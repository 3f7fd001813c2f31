"""The local metadata server: the shapes and rules of the real one."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from wfgen.local.metadata import MetadataServer


def get(md: MetadataServer, path: str, header: bool = True,
        timeout: float = 5) -> tuple[int, str, dict[str, str]]:
    req = urllib.request.Request(md.url + path)
    if header:
        req.add_header("Metadata-Flavor", "Google")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


@pytest.fixture
def md():
    with MetadataServer("vm-1", "europe-west4-b", "proj-x",
                        {"wfgen-image": "alpine", "k": "a\nb"}) as server:
        yield server


def test_values_and_shapes(md: MetadataServer) -> None:
    assert md.host.startswith("127.0.0.1:")
    assert get(md, "instance/name")[:2] == (200, "vm-1")
    _status, zone, headers = get(md, "instance/zone")
    assert zone == f"projects/{md.project_number}/zones/europe-west4-b"
    assert headers["Metadata-Flavor"] == "Google"
    assert get(md, "project/project-id")[1] == "proj-x"
    assert get(md, "instance/attributes/k")[1] == "a\nb"
    assert get(md, "instance/attributes/")[1] == "k\nwfgen-image\n"
    assert json.loads(get(md, "instance/attributes/?recursive=true")[1]) == md.attributes
    assert get(md, "instance/preempted")[1] == "FALSE"
    assert json.loads(get(md, "instance/attributes/k?alt=json")[1]) == "a\nb"
    assert get(md, "")[1] == "instance/\nproject/\n"
    sa = json.loads(get(md, "instance/service-accounts/default/?recursive=true")[1])
    assert sa["email"] == md.service_account and sa["scopes"]
    root = urllib.request.Request(f"http://{md.host}/", headers={"Metadata-Flavor": "Google"})
    with urllib.request.urlopen(root, timeout=5) as r:
        assert r.status == 200 and r.headers["Metadata-Flavor"] == "Google"


def test_project_attributes(md: MetadataServer) -> None:
    """Project-wide metadata: where the local runtime names its Secret Manager."""
    assert get(md, "project/attributes/")[:2] == (200, "")
    assert get(md, "project/attributes/wfgen-secretmanager-endpoint")[0] == 404
    md.set_project_attribute("wfgen-secretmanager-endpoint", "http://127.0.0.1:1")
    assert get(md, "project/attributes/wfgen-secretmanager-endpoint")[1] == "http://127.0.0.1:1"
    assert get(md, "project/attributes/")[1] == "wfgen-secretmanager-endpoint\n"
    assert "attributes/" in get(md, "project/")[1].splitlines()
    assert get(md, "instance/attributes/wfgen-secretmanager-endpoint")[0] == 404
    md.set_project_attribute("wfgen-secretmanager-endpoint", None)
    assert get(md, "project/attributes/wfgen-secretmanager-endpoint")[0] == 404


def test_header_required_and_unknown_paths(md: MetadataServer) -> None:
    assert get(md, "instance/name", header=False)[0] == 403
    assert get(md, "instance/nope")[0] == 404
    assert get(md, "instance/attributes/absent")[0] == 404


def test_tokens_are_fresh_random_and_checkable(md: MetadataServer) -> None:
    a = json.loads(get(md, "instance/service-accounts/default/token")[1])
    b = json.loads(get(md, "instance/service-accounts/default/token")[1])
    assert a["token_type"] == "Bearer" and a["expires_in"] > 3000
    assert a["access_token"] != b["access_token"]
    assert md.check_authorization("Bearer " + a["access_token"])
    assert md.valid_tokens == {a["access_token"], b["access_token"]}
    md.revoke_tokens()
    assert not md.check_token(a["access_token"])


def test_wait_for_change_wakes_on_preemption(md: MetadataServer) -> None:
    result: list[str] = []
    t = threading.Thread(target=lambda: result.append(
        get(md, "instance/preempted?wait_for_change=true", timeout=10)[1]))
    t.start()
    time.sleep(0.3)
    assert result == []  # still waiting
    md.set_preempted(True)
    t.join(5)
    assert result == ["TRUE"]


def test_wait_for_change_times_out_and_stop_releases(md: MetadataServer) -> None:
    t0 = time.monotonic()
    assert get(md, "instance/preempted?wait_for_change=true&timeout_sec=0.3")[1] == "FALSE"
    assert 0.25 < time.monotonic() - t0 < 3
    done = threading.Event()

    def waiter() -> None:
        with contextlib.suppress(OSError):
            get(md, "instance/attributes/k?wait_for_change=true", timeout=10)
        done.set()

    threading.Thread(target=waiter, daemon=True).start()
    time.sleep(0.2)
    md.stop()
    assert done.wait(5)


def test_concurrent_requests(md: MetadataServer) -> None:
    out: list[int] = []
    threads = [threading.Thread(target=lambda: out.append(get(md, "instance/name")[0]))
               for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert out == [200] * 20


def test_google_auth_gets_a_token_from_it(md: MetadataServer) -> None:
    """Client libraries in a local job can authenticate against it too
    (google-auth reads GCE_METADATA_HOST at import: a fresh interpreter)."""
    pytest.importorskip("requests")
    code = ("from google.auth import compute_engine\n"
            "from google.auth.transport.requests import Request\n"
            "c = compute_engine.Credentials(); c.refresh(Request())\n"
            "print(c.token); print(c.service_account_email)\n")
    env = {**os.environ, "GCE_METADATA_HOST": md.host, "GCE_METADATA_IP": md.host}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=30)
    token, email = r.stdout.split()
    assert md.check_token(token)
    assert email == md.service_account
