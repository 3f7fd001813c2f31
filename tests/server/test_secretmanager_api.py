"""Secret Manager in `wfgen serve`: the real gcloud creates, reads, lists,
versions, disables and deletes secrets (payload bytes exact, its CRC32C
checked by gcloud itself); raw REST for what gcloud cannot send (bad
checksums, names, fields); the IAM rule for local VMs' tokens; payloads in no
answer but :access and never in serve's log; the store keeps them 0600."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.serve_process import GCLOUD, Serve
from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server.secretmanager_api import SecretManagerRest, crc32c
from wfgen.server.store import Store

pytestmark = [pytest.mark.xdist_group("serve_secrets")]
needs_gcloud = pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")

PAYLOAD = "hf_Sécret-value\n with 'quotes' $(id) ${x}\n"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("serve-secrets")).start()
    yield server
    assert server.stop() == 0, server.log()
    assert "hf_Sécret" not in server.log()  # no payload in serve's log, ever


def gcloud(serve: Serve, *args: str, data: bytes | None = None
           ) -> subprocess.CompletedProcess[bytes]:
    assert GCLOUD
    return subprocess.run([GCLOUD, *args], input=data, capture_output=True, timeout=120,
                          env=serve.gcloud_env())


def test_serve_prints_the_secretmanager_override(serve):
    assert f"export CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER={serve.url}/" in serve.log()


@needs_gcloud
def test_gcloud_create_access_add_list_disable_delete(serve):
    made = gcloud(serve, "secrets", "create", "hf-token", "--data-file=-",
                  data=PAYLOAD.encode())
    assert made.returncode == 0, made.stderr
    assert b"Created version [1] of the secret [hf-token]" in made.stderr
    got = gcloud(serve, "secrets", "versions", "access", "latest", "--secret=hf-token")
    assert got.returncode == 0, got.stderr
    assert got.stdout == PAYLOAD.encode()  # byte for byte, trailing newline included
    added = gcloud(serve, "secrets", "versions", "add", "hf-token", "--data-file=-",
                   data=b"second")
    assert added.returncode == 0, added.stderr  # gcloud saw clientSpecifiedPayloadChecksum
    assert gcloud(serve, "secrets", "versions", "access", "latest",
                  "--secret=hf-token").stdout == b"second"
    assert gcloud(serve, "secrets", "versions", "access", "1",
                  "--secret=hf-token").stdout == PAYLOAD.encode()
    listed = gcloud(serve, "secrets", "versions", "list", "hf-token", "--format=json")
    versions = json.loads(listed.stdout)
    assert [v["name"].rsplit("/", 1)[1] for v in versions] == ["2", "1"]  # newest first
    assert all(v["state"] == "ENABLED" for v in versions)
    assert b"second" not in listed.stdout and b"hf_S" not in listed.stdout

    disabled = gcloud(serve, "secrets", "versions", "disable", "2", "--secret=hf-token")
    assert disabled.returncode == 0, disabled.stderr
    # latest is the newest ENABLED version; a disabled one cannot be read
    assert gcloud(serve, "secrets", "versions", "access", "latest",
                  "--secret=hf-token").stdout == PAYLOAD.encode()
    refused = gcloud(serve, "secrets", "versions", "access", "2", "--secret=hf-token")
    assert refused.returncode == 1
    assert b"FAILED_PRECONDITION" in refused.stderr and b"DISABLED" in refused.stderr

    secrets = json.loads(gcloud(serve, "secrets", "list", "--format=json").stdout)
    assert [s["name"] for s in secrets] == ["projects/demo/secrets/hf-token"]
    assert secrets[0]["replication"] == {"automatic": {}}
    again = gcloud(serve, "secrets", "create", "hf-token", "--data-file=-", data=b"x")
    assert again.returncode == 1 and b"already exists" in again.stderr

    deleted = gcloud(serve, "secrets", "delete", "hf-token", "--quiet")
    assert deleted.returncode == 0, deleted.stderr
    gone = gcloud(serve, "secrets", "versions", "access", "latest", "--secret=hf-token")
    assert gone.returncode == 1 and b"NOT_FOUND" in gone.stderr
    assert b"projects/demo/secrets/hf-token" in gone.stderr  # the message names it


@needs_gcloud
def test_gcloud_user_managed_replication_and_labels(serve):
    made = gcloud(serve, "secrets", "create", "regional", "--replication-policy=user-managed",
                  "--locations=us-central1,europe-west1", "--labels=team=ml")
    assert made.returncode == 0, made.stderr
    described = json.loads(gcloud(serve, "secrets", "describe", "regional",
                                  "--format=json").stdout)
    assert described["labels"] == {"team": "ml"}
    assert described["replication"]["userManaged"]["replicas"] == [
        {"location": "us-central1"}, {"location": "europe-west1"}]
    none = gcloud(serve, "secrets", "versions", "access", "latest", "--secret=regional")
    assert none.returncode == 1 and b"not found or has no versions" in none.stderr


def test_rest_refuses_bad_input_with_400_never_500(serve):
    base = "/v1/projects/demo/secrets"
    assert serve.call("POST", f"{base}?secretId=ok", {"replication": {"automatic": {}}}
                      )[0] == 200
    cases = [
        ("POST", f"{base}?secretId=bad/id", {"replication": {"automatic": {}}}, 400),
        ("POST", f"{base}?secretId=b%20d", {"replication": {"automatic": {}}}, 400),
        ("POST", f"{base}?secretId=x", {}, 400),  # replication is required
        ("POST", f"{base}?secretId=x", {"replication": {"automatic": {}}, "bogus": 1}, 400),
        ("POST", f"{base}?secretId=x", {"replication": {"automatic": {}}, "labels": [1]}, 400),
        ("POST", base, {"replication": {"automatic": {}}}, 400),  # no secretId
        ("POST", f"{base}/ok:addVersion", {"payload": {"data": "not base64!"}}, 400),
        ("POST", f"{base}/ok:addVersion", {"payload": {"data": "aGk=", "dataCrc32c": "1"}},
         400),
        ("POST", f"{base}/ok:addVersion", {"payload": {"data": base64.b64encode(
            b"x" * 65537).decode()}}, 400),
        ("POST", f"{base}/ok:addVersion", {}, 400),
        ("POST", f"{base}/ok:addVersion", [1, 2], 400),
        ("GET", f"{base}/ok/versions/0:access", None, 400),
        ("GET", f"{base}/ok/versions/abc", None, 400),
        ("GET", f"{base}/ok/versions/7:access", None, 404),
        ("GET", f"{base}/missing/versions/latest:access", None, 404),
        ("POST", f"{base}/missing:addVersion", {"payload": {"data": "aGk="}}, 404),
        ("PUT", f"{base}/ok", {}, 405),
        ("DELETE", f"{base}/ok?etag=%22nope%22", None, 409),
        ("POST", f"{base}/ok:setIamPolicy", {"policy": {"bindings": "all"}}, 400),
        ("GET", f"{base}/ok/versions/latest:frobnicate", None, 405),
    ]
    for method, path, body, want in cases:
        status, answer = serve.call(method, path, body)
        assert status == want, (method, path, answer)
        assert answer["error"]["code"] == want and answer["error"]["message"]


def test_rest_access_shape_and_checksum(serve):
    base = "/v1/projects/demo/secrets/shape"
    assert serve.call("POST", "/v1/projects/demo/secrets?secretId=shape",
                      {"replication": {"automatic": {}}})[0] == 200
    data = b"\x00\xffbinary\n"
    status, version = serve.call("POST", f"{base}:addVersion", {"payload": {
        "data": base64.b64encode(data).decode(), "dataCrc32c": crc32c(data)}})
    assert status == 200 and version["name"] == f"{base[4:]}/versions/1", version
    assert version["state"] == "ENABLED" and version["clientSpecifiedPayloadChecksum"] is True
    assert "payload" not in version
    status, access = serve.call("GET", f"{base}/versions/latest:access")
    assert status == 200
    assert access["name"] == f"{base[4:]}/versions/1"  # the number, not "latest"
    assert base64.b64decode(access["payload"]["data"]) == data
    assert access["payload"]["dataCrc32c"] == crc32c(data)
    assert crc32c(b"123456789") == str(0xE3069283)  # CRC-32C's published check value
    status, got = serve.call("GET", f"{base}/versions/1")
    assert status == 200 and "payload" not in got
    status, destroyed = serve.call("POST", f"{base}/versions/1:destroy", {})
    assert status == 200 and destroyed["state"] == "DESTROYED" and destroyed["destroyTime"]
    status, answer = serve.call("GET", f"{base}/versions/1:access")
    assert status == 400 and answer["error"]["status"] == "FAILED_PRECONDITION"


def _answer(api: SecretManagerRest, request: Request) -> Response:
    """What the loopback server would send: an ApiError as its error body."""
    try:
        answer = api.handle(request)
    except ApiError as exc:
        return exc.response()
    assert answer is not None
    return answer


def _request(method: str, path: str, body: object = None, token: str = "") -> Request:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return Request(method, path, {}, headers, json.dumps(body).encode() if body else b"")


def test_a_policy_limits_local_vm_tokens_to_its_readers():
    """A VM's token reads a secret with a policy only when its account is bound to
    roles/secretmanager.secretAccessor; without a policy, or without a VM token, anyone."""
    accounts = {"tok-a": "a@p.iam.gserviceaccount.com", "tok-b": "b@p.iam.gserviceaccount.com"}
    api = SecretManagerRest(Store(":memory:"), accounts.get)
    base = "/v1/projects/p/secrets/k"
    assert _answer(api, _create(api)).status == 200
    data = base64.b64encode(b"v").decode()
    assert _answer(api, _request("POST", f"{base}:addVersion", {"payload": {"data": data}}))
    access = f"{base}/versions/latest:access"
    assert _answer(api, _request("GET", access, token="tok-b")).status == 200  # no policy yet
    policy = {"policy": {"bindings": [{"role": "roles/secretmanager.secretAccessor",
                                       "members": ["serviceAccount:" + accounts["tok-a"]]}]}}
    assert _answer(api, _request("POST", f"{base}:setIamPolicy", policy)).status == 200
    assert _answer(api, _request("GET", access, token="tok-a")).status == 200
    denied = _answer(api, _request("GET", access, token="tok-b"))
    assert denied.status == 403
    assert json.loads(denied.body)["error"] == {
        "code": 403, "status": "PERMISSION_DENIED",
        "message": "Permission 'secretmanager.versions.access' denied for resource "
                   "'projects/p/secrets/k/versions/1' (or it may not exist)."}
    assert _answer(api, _request("GET", access)).status == 200  # the user (no VM token)
    got = json.loads(_answer(api, _request("GET", f"{base}:getIamPolicy")).body)
    assert got["bindings"] == policy["policy"]["bindings"] and got["etag"]


def _create(_api: SecretManagerRest) -> Request:
    request = _request("POST", "/v1/projects/p/secrets", {"replication": {"automatic": {}}})
    request.query = {"secretId": ["k"]}
    return request


def test_store_keeps_secrets_across_restarts_readable_by_the_user_only(tmp_path):
    path = tmp_path / "serve.sqlite3"
    store = Store(path)
    api = SecretManagerRest(store)
    _answer(api, _create(api))
    data = base64.b64encode(b"kept").decode()
    _answer(api, _request("POST", "/v1/projects/p/secrets/k:addVersion",
                        {"payload": {"data": data}}))
    store.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = SecretManagerRest(Store(path))
    answer = _answer(again, _request("GET", "/v1/projects/p/secrets/k/versions/1:access"))
    assert json.loads(answer.body)["payload"]["data"] == data


SEGMENTS = st.sampled_from(["projects", "p", "", "secrets", "k", "versions", "1", "latest",
                            "0", "-1", "k:access", "1:access", "k:addVersion", "latest:access",
                            "k:setIamPolicy", "k:getIamPolicy", "1:destroy", "x:y:z", "%",
                            "locations", "\x00", "é", "a" * 300])
BODIES = st.one_of(st.none(), st.just({"replication": {"automatic": {}}}),
                   st.dictionaries(st.sampled_from(["payload", "policy", "replication",
                                                    "labels", "etag", "bindings", "x"]),
                                   st.recursive(st.one_of(st.none(), st.booleans(),
                                                          st.integers(), st.text(max_size=8)),
                                                lambda inner: st.one_of(
                                                    st.lists(inner, max_size=3),
                                                    st.dictionaries(st.text(max_size=6), inner,
                                                                    max_size=3)),
                                                max_leaves=6), max_size=3),
                   st.lists(st.integers(), max_size=2), st.text(max_size=5))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "DELETE", "PATCH", "PUT"]),
       project=st.sampled_from(["p", "", "q", "%2F"]),
       head=st.sampled_from(["secrets", "secrets:x", "secretsx", "locations"]),
       path=st.lists(SEGMENTS, max_size=4), body=BODIES,
       query=st.dictionaries(st.sampled_from(["secretId", "pageSize", "pageToken", "etag",
                                              "filter"]),
                             st.sampled_from(["k", "", "-3", "abc", "1", "\x00", "a" * 300]),
                             max_size=2))
def test_hostile_requests_get_an_answer_never_a_crash(method, project, head, path, body, query):
    """Whatever arrives, the API answers (an ApiError is a 4xx/501 body) or passes."""
    store = Store(":memory:")
    api = SecretManagerRest(store, lambda _token: "vm@p.iam.gserviceaccount.com")
    _answer(api, _create(api))
    _answer(api, _request("POST", "/v1/projects/p/secrets/k:addVersion",
                          {"payload": {"data": "aGk="}}))
    full = "/".join([f"/v1/projects/{project}", head, *path]).rstrip("/")
    request = Request(method, full, {k: [v] for k, v in query.items()},
                      {"authorization": "Bearer t"},
                      json.dumps(body).encode() if body is not None else b"")
    try:
        answer = api.handle(request)
    except ApiError as exc:
        assert 400 <= exc.status < 600 and exc.status != 500, exc
        return
    assert answer is None or answer.status == 200


def test_list_filters_by_name_and_label_and_refuses_what_it_cannot_read():
    store = Store(":memory:")
    api = SecretManagerRest(store, lambda _token: "vm@p.iam.gserviceaccount.com")
    for secret_id, env in (("wandb-key", "prod"), ("hf-token", "dev")):
        request = _request("POST", "/v1/projects/p/secrets",
                           {"replication": {"automatic": {}}, "labels": {"env": env}})
        request.query = {"secretId": [secret_id]}
        _answer(api, request)

    def names(filter_text: str) -> list[str]:
        request = _request("GET", "/v1/projects/p/secrets")
        request.query = {"filter": [filter_text]}
        answer = json.loads(_answer(api, request).body)
        return [s["name"].rsplit("/", 1)[1] for s in answer.get("secrets", [])]

    assert names("name:wandb") == ["wandb-key"]
    assert names("labels.env=dev") == ["hf-token"]
    assert names("labels.env:* AND name:key") == ["wandb-key"]
    assert names("labels.env=staging") == []
    request = _request("GET", "/v1/projects/p/secrets")
    request.query = {"filter": ["(name:a OR name:b)"]}
    refused = _answer(api, request)
    assert refused.status == 400 and b"Invalid filter" in refused.body
