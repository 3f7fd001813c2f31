"""Secret Manager API v1 (`secretmanager.googleapis.com`) in `wfgen serve`, the
subset gcloud and the VM agent use, with the routes of Google's discovery
document (secretmanager v1, the global `projects/*/secrets` forms):

    POST   /v1/projects/P/secrets?secretId=S            create     -> Secret
    GET    /v1/projects/P/secrets                       list       -> {secrets, totalSize}
    GET    /v1/projects/P/secrets/S                     get        -> Secret
    DELETE /v1/projects/P/secrets/S[?etag=E]            delete     -> {}
    POST   /v1/projects/P/secrets/S:addVersion          {payload: {data, dataCrc32c}}
    GET    /v1/projects/P/secrets/S:getIamPolicy        -> Policy
    POST   /v1/projects/P/secrets/S:setIamPolicy        {policy} -> Policy
    GET    /v1/projects/P/secrets/S/versions            list       -> {versions, totalSize}
    GET    /v1/projects/P/secrets/S/versions/V          get (V: a number or `latest`)
    GET    /v1/projects/P/secrets/S/versions/V:access   -> {name, payload: {data, dataCrc32c}}
    POST   /v1/projects/P/secrets/S/versions/V:enable|:disable|:destroy

`data` is base64 (at most 64 KiB decoded); `dataCrc32c` is the CRC32C of the
bytes as a decimal string, checked on addVersion and returned by access, where
gcloud checks it (google-crc32c computes it). `latest` is the newest ENABLED
version. Payloads live in their own column of the store and appear in no
answer but :access and in no log line.

IAM: serve authenticates nobody (as for its other APIs), except that a bearer
token a local VM's metadata server issued is that VM's service account. A
secret with an IAM policy (`gcloud secrets add-iam-policy-binding`) lets such
a VM read its versions only when the policy binds the account to
roles/secretmanager.secretAccessor (or admin/owner); otherwise :access answers
403 as Google does, naming the permission. Without a policy anyone may read.

Error texts follow what Google's service is seen to answer; where unseen they
are written in its style."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
from collections.abc import Callable
from typing import Any

import google_crc32c

from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server import wire
from wfgen.server.store import Resource, Store

SECRET_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
PROJECT_RE = re.compile(r"[^/:]+")
MAX_PAYLOAD = 64 * 1024
POLICY_KIND = "secretmanager.policy"
READER_ROLES = ("roles/secretmanager.secretAccessor", "roles/secretmanager.admin",
                "roles/owner")
# the Secret fields of the discovery document; output-only ones are ignored on input
SECRET_FIELDS = {"annotations", "createTime", "customerManagedEncryption", "etag",
                 "expireTime", "labels", "name", "policyMember", "replication", "rotation",
                 "secretType", "tags", "topics", "ttl", "versionAliases", "versionDestroyTtl"}
KEPT_FIELDS = ("labels", "annotations", "replication", "expireTime", "ttl", "topics",
               "rotation", "versionAliases", "versionDestroyTtl", "secretType", "tags")
Who = Callable[[str], str | None]  # bearer token -> a local VM's service account, or None


def crc32c(data: bytes) -> str:
    """The payload checksum as the API spells it (int64 as a decimal string)."""
    return str(google_crc32c.value(data))


def _etag(stamp: str) -> str:
    return '"' + format(int(wire.parse_timestamp(stamp) * 1e6), "x") + '"'


class SecretManagerRest:
    """The REST front and the rules; state in the Store."""

    def __init__(self, store: Store, who: Who = lambda _token: None) -> None:
        self.store = store
        self.who = who

    # -- routing ---------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        path = request.path
        parts = path[len("/v1/"):].split("/") if path.startswith("/v1/projects/") else []
        if len(parts) < 3 or parts[2].partition(":")[0] != "secrets":
            return None
        if not PROJECT_RE.fullmatch(parts[1]):
            raise ApiError(400, f"Invalid resource name: {path[len('/v1/'):]}")
        method = request.method
        parent = f"projects/{parts[1]}"
        if len(parts) == 3 and parts[2] == "secrets":
            if method == "POST":
                return Response.of_json(self.create(parent, request.arg("secretId"),
                                                    request.json()))
            if method == "GET":
                return Response.of_json(self.list_secrets(parent, request))
            raise _not_allowed(request)
        if len(parts) == 4 and parts[2] == "secrets":
            secret_id, _, custom = parts[3].partition(":")
            name = f"{parent}/secrets/{_secret_id(secret_id)}"
            return self._secret_call(request, name, custom)
        if len(parts) in (5, 6) and parts[2] == "secrets" and parts[4] == "versions":
            name = f"{parent}/secrets/{_secret_id(parts[3])}"
            if len(parts) == 5:
                if method != "GET":
                    raise _not_allowed(request)
                return Response.of_json(self.list_versions(name, request))
            version, _, custom = parts[5].partition(":")
            return self._version_call(request, name, version, custom)
        raise ApiError(404, f"no Secret Manager method serves {method} {path}")

    def _secret_call(self, request: Request, name: str, custom: str) -> Response:
        method = request.method
        if not custom and method == "GET":
            return Response.of_json(self._secret(name))
        if not custom and method == "DELETE":
            return Response.of_json(self.delete(name, request.arg("etag")))
        if custom == "addVersion" and method == "POST":
            return Response.of_json(self.add_version(name, request.json()))
        if custom == "getIamPolicy" and method == "GET":
            return Response.of_json(self.get_policy(name))
        if custom == "setIamPolicy" and method == "POST":
            return Response.of_json(self.set_policy(name, request.json()))
        if (not custom and method == "PATCH") or custom in (
                "testIamPermissions", "enableManagedRotation", "rotateSecret"):
            raise ApiError(501, f"wfgen serve does not implement {method} "
                                f"{name}{':' + custom if custom else ''}")
        raise _not_allowed(request)

    def _version_call(self, request: Request, secret: str, version: str,
                      custom: str) -> Response:
        method = request.method
        if method == "GET" and custom in ("", "access"):
            found, payload = self._version(secret, version)
            if not custom:
                return Response.of_json(found)
            self._check_reader(secret, found["name"], request)
            if found["state"] != "ENABLED" or payload is None:
                raise ApiError(400, f"Secret Version [{found['name']}] is in "
                                    f"{found['state']} state.", code_name="FAILED_PRECONDITION")
            return Response.of_json({"name": found["name"], "payload": {
                "data": base64.b64encode(payload).decode(), "dataCrc32c": crc32c(payload)}})
        if method == "POST" and custom in ("enable", "disable", "destroy"):
            return Response.of_json(self.set_state(secret, version, custom, request.json()))
        raise _not_allowed(request)

    # -- secrets -----------------------------------------------------------------
    def create(self, parent: str, secret_id: str | None, body: Any) -> Resource:
        if not secret_id:
            raise ApiError(400, "secret_id is required: pass ?secretId=NAME")
        _secret_id(secret_id)
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: a Secret object is expected")
        unknown = sorted(set(body) - SECRET_FIELDS)
        if unknown:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}" '
                                "at 'secret': Cannot find field.")
        replication = body.get("replication")
        if not isinstance(replication, dict) or not (
                isinstance(replication.get("automatic"), dict)
                or _replicas(replication.get("userManaged"))):
            raise ApiError(400, "Secret.replication is required: automatic, or userManaged "
                                "with at least one replica location")
        for key in ("labels", "annotations"):
            value = body.get(key, {})
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise ApiError(400, f"Invalid value at 'secret.{key}': a map of strings is "
                                    "expected")
        name = f"{parent}/secrets/{secret_id}"
        stamp = wire.now()[1]
        secret: Resource = {"name": name, "createTime": stamp, "etag": _etag(stamp)}
        secret.update({k: body[k] for k in KEPT_FIELDS if body.get(k) not in (None, {}, [])})
        if not self.store.put_secret(secret):
            raise ApiError(409, f"Secret [{name}] already exists.", resource=name)
        return secret

    def _secret(self, name: str) -> Resource:
        secret = self.store.get_secret(name)
        if secret is None:
            raise ApiError(404, f"Secret [{name}] not found.", resource=name)
        return secret

    def list_secrets(self, parent: str, request: Request) -> Resource:
        return _filtered_page("secrets", parent, request,
                              lambda offset, n: self.store.list_secrets(parent, offset, n))

    def delete(self, name: str, etag: str | None) -> Resource:
        secret = self._secret(name)
        if etag and etag != secret.get("etag"):
            raise ApiError(409, f"The etag provided for Secret [{name}] does not match.",
                           code_name="ABORTED")
        self.store.delete_secret(name)
        self.store.delete_resource(POLICY_KIND, name)
        return {}

    # -- versions ------------------------------------------------------------------
    def add_version(self, secret_name: str, body: Any) -> Resource:
        payload = body.get("payload") if isinstance(body, dict) else None
        if not isinstance(payload, dict) or not isinstance(payload.get("data", ""), str):
            raise ApiError(400, "AddSecretVersionRequest.payload is required: "
                                "{\"payload\": {\"data\": BASE64}}")
        text = payload.get("data", "")
        try:
            data = base64.b64decode(text.replace("-", "+").replace("_", "/")
                                    + "=" * (-len(text) % 4), validate=True)
        except (ValueError, binascii.Error):
            raise ApiError(400, "Invalid value at 'payload.data' (TYPE_BYTES): not base64"
                           ) from None
        if len(data) > MAX_PAYLOAD:
            raise ApiError(400, f"Secret payload is larger than {MAX_PAYLOAD} bytes.")
        given = payload.get("dataCrc32c")
        if given is not None and str(given) != crc32c(data):
            raise ApiError(400, "Checksum mismatch: the payload's dataCrc32c does not match "
                                "its data.")
        secret = self._secret(secret_name)
        stamp = wire.now()[1]

        def make(number: int) -> Resource:
            version: Resource = {
                "name": f"{secret_name}/versions/{number}", "createTime": stamp,
                "state": "ENABLED", "etag": _etag(stamp),
                "replicationStatus": _replication_status(secret.get("replication", {}))}
            if given is not None:
                version["clientSpecifiedPayloadChecksum"] = True
            return version

        version = self.store.add_secret_version(secret_name, make, data)
        if version is None:  # deleted meanwhile
            raise ApiError(404, f"Secret [{secret_name}] not found.", resource=secret_name)
        return version

    def _version(self, secret: str, version: str) -> tuple[Resource, bytes | None]:
        if version == "latest":
            found = self.store.get_secret_version(secret, None)
            if found is None:
                raise ApiError(404, f"Secret [{secret}] not found or has no versions.",
                               resource=secret)
            return found
        if not re.fullmatch(r"[1-9][0-9]{0,17}", version):
            raise ApiError(400, f"Invalid resource field value in the request: version "
                                f"{version!r} is not a number or 'latest'")
        found = self.store.get_secret_version(secret, int(version))
        if found is None:
            self._secret(secret)
            name = f"{secret}/versions/{version}"
            raise ApiError(404, f"Secret Version [{name}] not found.", resource=name)
        return found

    def list_versions(self, secret: str, request: Request) -> Resource:
        self._secret(secret)
        return _filtered_page("versions", secret, request,
                              lambda offset, n: self.store.list_secret_versions(secret, offset, n))

    def set_state(self, secret: str, version: str, verb: str, body: Any) -> Resource:
        found, _payload = self._version(secret, version)
        etag = body.get("etag") if isinstance(body, dict) else None
        if etag and etag != found.get("etag"):
            raise ApiError(409, f"The etag provided for Secret Version [{found['name']}] "
                                "does not match.", code_name="ABORTED")
        if found["state"] == "DESTROYED" and verb != "destroy":
            raise ApiError(400, f"Secret Version [{found['name']}] is in DESTROYED state.",
                           code_name="FAILED_PRECONDITION")
        stamp = wire.now()[1]
        found["state"] = {"enable": "ENABLED", "disable": "DISABLED",
                          "destroy": "DESTROYED"}[verb]
        found["etag"] = _etag(stamp)
        if verb == "destroy":
            found.setdefault("destroyTime", stamp)
        number = int(found["name"].rsplit("/", 1)[1])
        self.store.update_secret_version(secret, number, found,
                                         drop_payload=verb == "destroy")
        return found

    # -- IAM ---------------------------------------------------------------------
    def get_policy(self, name: str) -> Resource:
        self._secret(name)
        policy = self.store.get_resource(POLICY_KIND, name) or {}
        return {k: v for k, v in policy.items() if k != "name"}

    def set_policy(self, name: str, body: Any) -> Resource:
        self._secret(name)
        policy = body.get("policy") if isinstance(body, dict) else None
        if not isinstance(policy, dict):
            raise ApiError(400, "SetIamPolicyRequest.policy is required")
        bindings = policy.get("bindings", [])
        if not isinstance(bindings, list) or not all(
                isinstance(b, dict) and isinstance(b.get("role"), str)
                and isinstance(b.get("members", []), list)
                and all(isinstance(m, str) for m in b.get("members", [])) for b in bindings):
            raise ApiError(400, "Invalid value at 'policy.bindings': a list of {role, "
                                "members} is expected")
        current = self.store.get_resource(POLICY_KIND, name) or {}
        if policy.get("etag") and policy["etag"] != current.get("etag"):
            raise ApiError(409, "There were concurrent policy changes. Please retry the whole "
                                "read-modify-write with exponential backoff.",
                           code_name="ABORTED")
        stamp = wire.now()[1]
        kept: Resource = {"version": int(policy.get("version") or 1), "etag": base64.b64encode(
            _etag(stamp).strip('"').encode()).decode()}
        if bindings:
            kept["bindings"] = [{"role": b["role"], "members": list(b.get("members", []))}
                                for b in bindings]
        self.store.put_resource(POLICY_KIND, {"name": name, **kept}, name)
        return kept

    def _check_reader(self, secret: str, version: str, request: Request) -> None:
        """A local VM's token reads a secret that has a policy only with a reader role."""
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        account = self.who(token) if token else None
        policy = self.store.get_resource(POLICY_KIND, secret)
        if account is None or not policy or not policy.get("bindings"):
            return
        member = f"serviceAccount:{account}"
        if any(b["role"] in READER_ROLES and member in b["members"]
               for b in policy["bindings"]):
            return
        raise ApiError(403, f"Permission 'secretmanager.versions.access' denied for resource "
                            f"'{version}' (or it may not exist).")


def _secret_id(secret_id: str) -> str:
    if not SECRET_ID_RE.fullmatch(secret_id):
        raise ApiError(400, f"Secret ID [{secret_id[:300]}] is invalid: up to 255 letters, "
                            "digits, '-' and '_'")
    return secret_id


def _replicas(user_managed: Any) -> bool:
    if not isinstance(user_managed, dict):
        return False
    replicas = user_managed.get("replicas")
    return isinstance(replicas, list) and bool(replicas) and all(
        isinstance(r, dict) and isinstance(r.get("location"), str) for r in replicas)


def _replication_status(replication: Resource) -> Resource:
    if "userManaged" in replication:
        return {"userManaged": {"replicas": [{"location": r["location"]} for r in
                                             replication["userManaged"]["replicas"]]}}
    return {"automatic": {}}


_TERM = re.compile(r"([A-Za-z_][\w.]*)\s*([:=])\s*(\"[^\"]*\"|[^\s\"]+)")


def _filtered_page(kind: str, parent: str, request: Request,
                   read: Any) -> Resource:
    """A list page; with `filter`, the terms Secret Manager documents in their
    simplest form (`FIELD:VALUE` has/contains with `*`, `FIELD=VALUE` equals,
    joined by spaces or AND), evaluated over every item before paging."""
    text = (request.arg("filter") or "").strip()
    if not text:
        out = wire.paged(kind, parent, request.arg("pageSize"), request.arg("pageToken"),
                         read, default=25000, maximum=25000)
        out["totalSize"] = len(read(0, -1))
        return out
    terms = _filter_terms(text)
    kept = [item for item in read(0, -1) if all(_matches(item, *t) for t in terms)]
    out = wire.paged(kind, parent, request.arg("pageSize"), request.arg("pageToken"),
                     lambda offset, n: kept[offset:] if n < 0 else kept[offset:offset + n],
                     default=25000, maximum=25000)
    out["totalSize"] = len(kept)
    return out


def _filter_terms(text: str) -> list[tuple[str, str, str]]:
    terms, at = [], 0
    while at < len(text):
        space = re.match(r"\s+(?:AND\s+)?", text[at:])
        if space:
            at += space.end()
            continue
        term = _TERM.match(text, at)
        if term is None:
            raise ApiError(400, f"Invalid filter: cannot read {text[at:at + 40]!r} (wfgen "
                                "serve reads FIELD:VALUE and FIELD=VALUE terms joined by AND)")
        terms.append((term.group(1), term.group(2), term.group(3).strip('"')))
        at = term.end()
    return terms


def _matches(item: Any, field: str, op: str, value: str) -> bool:
    found: Any = item
    for part in field.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    if found is None:
        return False
    got = found if isinstance(found, str) else json.dumps(found)
    if op == "=":
        return got == value
    if value == "*":
        return True
    return fnmatch.fnmatchcase(got.lower(), f"*{value.lower()}*")


def _not_allowed(request: Request) -> ApiError:
    return ApiError(405, f"{request.method} is not allowed on {request.path}",
                    code_name="UNIMPLEMENTED")
