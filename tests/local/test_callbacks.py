"""Local callbacks: the real URL shape, bearer tokens, held requests, refusals."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from wfgen.engine.errors import WorkflowError
from wfgen.local.callbacks import CallbackServer

ENV = {"GOOGLE_CLOUD_PROJECT_ID": "p", "GOOGLE_CLOUD_LOCATION": "us-central1",
       "GOOGLE_CLOUD_WORKFLOW_ID": "wf", "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID": "e1"}


def post(url: str, body: object, token: str | None = "good") -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def server():
    with CallbackServer(lambda token: token == "good") as srv:
        yield srv


def test_url_has_the_real_path_shape_on_loopback(server):
    url = server.create_endpoint(ENV)["url"]
    assert url.startswith("http://127.0.0.1:")
    assert "/v1/projects/p/locations/us-central1/workflows/wf/executions/e1/callbacks/" in url


def test_requests_before_the_await_are_held_in_order(server):
    cb = server.create_endpoint(ENV)
    assert post(cb["url"], {"n": 1}) == 200
    assert post(cb["url"], {"n": 2}) == 200
    first = server.await_request(cb, 1)
    second = server.await_request(cb, 1)
    assert first["http_request"]["body"] == {"n": 1}
    assert second["http_request"]["body"] == {"n": 2}
    assert first["type"] == "HTTP" and first["http_request"]["method"] == "POST"
    assert "Authorization" not in first["http_request"]["headers"]


def test_await_wakes_when_a_request_arrives(server):
    cb = server.create_endpoint(ENV)
    threading.Timer(0.2, post, (cb["url"], {"status": "succeeded"})).start()
    started = time.monotonic()
    event = server.await_request(cb, 5)
    assert event["http_request"]["body"] == {"status": "succeeded"}
    assert time.monotonic() - started < 2


def test_tokens_are_required_and_checked(server):
    cb = server.create_endpoint(ENV)
    assert post(cb["url"], {}, token=None) == 401
    assert post(cb["url"], {}, token="stolen") == 401
    with pytest.raises(WorkflowError) as info:
        server.await_request(cb, 0.1)
    assert info.value.tags == ["TimeoutError"]


def test_unknown_callback_is_404_and_wrong_method_405(server):
    cb = server.create_endpoint(ENV)
    assert post(cb["url"] + "x", {}) == 404
    get = urllib.request.Request(cb["url"], headers={"Authorization": "Bearer good"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(get, timeout=5)
    assert info.value.code == 405


def test_refusing_the_first_requests():
    with CallbackServer(lambda t: True, refuse_first=2) as srv:
        cb = srv.create_endpoint(ENV)
        assert [post(cb["url"], {"i": i}) for i in range(3)] == [503, 503, 200]
        assert srv.await_request(cb, 1)["http_request"]["body"] == {"i": 2}
        assert srv.refused == 2


def test_faults_parse_and_reject_nonsense():
    from wfgen.errors import UsageError
    from wfgen.local.faults import Faults

    faults = Faults.parse(["preempt@1.5s", "vanish@500ms", "refuse-callbacks=3", "insert-fail"])
    assert faults.preempt_after == 1.5 and faults.vanish_after == 0.5
    assert faults.refuse_callbacks == 3 and "QUOTA" in (faults.fail_insert or "")
    for bad in ["preempt", "preempt@soon", "explode", "refuse-callbacks=x"]:
        with pytest.raises(UsageError):
            Faults.parse([bad])
