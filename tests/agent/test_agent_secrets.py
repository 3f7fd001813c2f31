"""The startup script's secrets (metadata wfgen-secret-env): each value read
from Secret Manager (serve's own implementation, on loopback) with the VM's
token, reaching the container byte for byte through docker's environment, and
appearing nowhere else: not in the agent's output (the serial console), even
under `bash -x`, not in the report, not in docker's argv, not on disk. A
secret that cannot be read ends the job before `docker run` with a sentence
naming it and the HTTP status (exit 125 path)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.agentbed import Bed, only_report
from wfgen.local.loopback import LoopbackServer, Request, Response
from wfgen.server.secretmanager_api import SecretManagerRest
from wfgen.server.store import Store

VALUE = "wandb-Sécret 'q' \"dq\" $(id) `id` ${HOME}\nline2\n\n"
OTHER = "hf_" + "x" * 2000


class Flaky:
    """Answers 503 to the first `failures` requests, then lets Secret Manager answer."""

    def __init__(self, api: SecretManagerRest, failures: int) -> None:
        self.api = api
        self.failures = failures
        self.seen = 0

    def handle(self, request: Request) -> Response | None:
        self.seen += 1
        if self.seen <= self.failures:
            return Response.of_json({"error": {"code": 503, "status": "UNAVAILABLE",
                                               "message": "try again"}}, 503)
        return self.api.handle(request)


class SecretsBed:
    """A Bed whose project metadata points the agent at a local Secret Manager."""

    def __init__(self, bed: Bed, failures: int = 0) -> None:
        self.bed = bed
        md = bed.md
        self.api = SecretManagerRest(
            Store(":memory:"), lambda token: md.service_account if md.check_token(token)
            else None)
        self.front = Flaky(self.api, failures)
        self.server = LoopbackServer([self.front]).start()
        md.set_project_attribute("wfgen-secretmanager-endpoint", self.server.url)

    def add(self, secret: str, value: bytes) -> None:
        """A new version of SECRET (created when missing)."""
        if self.api.store.get_secret(f"projects/test-project/secrets/{secret}") is None:
            self.call("POST", "/v1/projects/test-project/secrets", {"replication": {
                "automatic": {}}}, secretId=secret)
        self.call("POST", f"/v1/projects/test-project/secrets/{secret}:addVersion",
                  {"payload": {"data": base64.b64encode(value).decode()}})

    def call(self, method: str, path: str, body: object = None, **query: str) -> Response:
        """Straight to Secret Manager (the flaky front is for the agent only)."""
        request = Request(method, path, {k: [v] for k, v in query.items()}, {},
                          json.dumps(body).encode() if body is not None else b"")
        answer = self.api.handle(request)
        assert answer is not None and answer.status == 200, answer
        return answer

    def secret_env(self, mapping: dict[str, str]) -> None:
        self.bed.md.set_attribute("wfgen-secret-env", json.dumps(mapping))


@pytest.fixture
def sm(bed: Bed) -> Iterator[SecretsBed]:
    s = SecretsBed(bed)
    yield s
    s.server.stop()


def everything_written(bed: Bed) -> bytes:
    """Every file the agent and the stand-ins left (state dir, records, home)."""
    return b"".join(p.read_bytes() for p in Path(bed.tmp).rglob("*")
                    if p.is_file() and not p.name.startswith("seen-"))


def test_secrets_reach_the_container_and_nothing_else(bed: Bed, sm: SecretsBed) -> None:
    sm.add("wandb-key", VALUE.encode())
    sm.add("hf", OTHER.encode())
    sm.add("hf", b"newer")  # latest = version 2
    sm.secret_env({"WANDB_API_KEY": "wandb-key",  # short: latest, in the VM's project
                   "HF_TOKEN": "projects/test-project/secrets/hf/versions/1"})
    seen = bed.tmp / "seen-wandb"
    seen_hf = bed.tmp / "seen-hf"
    bed.job(["sh", "-c", f'printf %s "$WANDB_API_KEY" > {seen}; printf %s "$HF_TOKEN" > '
                         f'{seen_hf}; echo "PLAIN=$PLAIN"'], env={"PLAIN": "visible"})
    proc = bed.start(bash_args=("-x",))
    proc.wait(30)
    report = only_report(bed)
    assert report["status"] == "succeeded", proc.log
    assert seen.read_bytes() == VALUE.encode()  # byte for byte, trailing newlines too
    assert seen_hf.read_bytes() == OTHER.encode()  # version 1, not latest
    assert "PLAIN=visible" in report["output_tail"]
    assert "read 2 secret(s) from Secret Manager" in proc.log
    run = bed.calls("docker", "run")[0]
    assert "--env=WANDB_API_KEY" in run and "--env=HF_TOKEN" in run  # names only
    for value in (VALUE, OTHER, "wandb-Sécret", "hf_xxxxxxxx"):
        assert value not in proc.log  # the serial console, under bash -x too
        assert value not in json.dumps(bed.receiver.accepted, ensure_ascii=False)
        assert value not in json.dumps(bed.calls("docker"), ensure_ascii=False)
        assert value.encode() not in everything_written(bed)
        encoded = base64.b64encode(value.encode()).decode()
        assert encoded not in proc.log and encoded.encode() not in everything_written(bed)


def test_no_secret_env_means_no_secret_manager_call(bed: Bed, sm: SecretsBed) -> None:
    proc = bed.run()
    assert only_report(bed)["status"] == "succeeded", proc.log
    assert sm.front.seen == 0 and "secret" not in proc.log


@pytest.mark.parametrize(("setup", "status_text", "hint"), [
    ("missing", "HTTP 404 NOT_FOUND", "no such secret or version"),
    ("denied", "HTTP 403 PERMISSION_DENIED",
     "the VM's service account needs roles/secretmanager.secretAccessor"),
    ("disabled", "HTTP 400 FAILED_PRECONDITION", "is in DISABLED state"),
])
def test_an_unreadable_secret_fails_the_job_before_docker_run(
        bed: Bed, sm: SecretsBed, setup: str, status_text: str, hint: str) -> None:
    ref = "projects/test-project/secrets/api-key/versions/latest"
    if setup != "missing":
        sm.add("api-key", b"v")
    if setup == "denied":
        sm.call("POST", "/v1/projects/test-project/secrets/api-key:setIamPolicy", {"policy": {
            "bindings": [{"role": "roles/secretmanager.secretAccessor",
                          "members": ["serviceAccount:someone-else@p.iam.gserviceaccount.com"]}]}})
    if setup == "disabled":
        ref = "projects/test-project/secrets/api-key/versions/1"
        sm.call("POST", "/v1/projects/test-project/secrets/api-key/versions/1:disable", {})
    sm.secret_env({"API_KEY": ref})
    proc = bed.run(timeout=30)
    report = only_report(bed)
    assert (report["status"], report["exit_code"]) == ("error", 125), proc.log
    assert report["message"].startswith(f"secret API_KEY ({ref}) could not be read: "
                                        f"{status_text}"), report["message"]
    assert hint in report["message"]
    assert bed.calls("docker", "pull") == [] and bed.calls("docker", "run") == []


def test_transient_errors_are_retried(bed: Bed) -> None:
    sm = SecretsBed(bed, failures=2)
    try:
        sm.add("k", b"value-1")
        sm.secret_env({"K": "projects/test-project/secrets/k/versions/latest"})
        seen = bed.tmp / "seen-k"
        bed.job(["sh", "-c", f'printf %s "$K" > {seen}'])
        proc = bed.run(timeout=30)
        assert only_report(bed)["status"] == "succeeded", proc.log
        assert seen.read_bytes() == b"value-1"
        assert sm.front.seen == 3 and proc.log.count("Secret Manager answered 503") == 2
    finally:
        sm.server.stop()


@pytest.mark.parametrize(("mapping", "message"), [
    ({"BAD-NAME": "projects/p/secrets/s/versions/1"}, "bad wfgen-secret-env: name BAD-NAME"),
    ({"K": "projects/p/secrets/s"}, "bad wfgen-secret-env: K is not a secret version"),
    ({"K": "projects/p/secrets/s/versions/1?x=1"}, "K is not a secret version"),
    ({"K": "https://evil.example/x"}, "K is not a secret version"),
])
def test_bad_references_are_refused_before_any_request(bed: Bed, sm: SecretsBed,
                                                        mapping: dict[str, str],
                                                        message: str) -> None:
    sm.secret_env(mapping)
    bed.run()
    report = only_report(bed)
    assert report["status"] == "error" and message in report["message"]
    assert sm.front.seen == 0


def test_a_nul_byte_cannot_travel_in_the_environment(bed: Bed, sm: SecretsBed) -> None:
    sm.add("bin", b"a\x00b")
    sm.secret_env({"BIN": "projects/test-project/secrets/bin/versions/latest"})
    proc = bed.run()
    report = only_report(bed)
    assert report["status"] == "error", proc.log
    assert "holds a NUL byte" in report["message"] and "warning" not in proc.log


def test_unreachable_secret_manager_names_it(bed: Bed, sm: SecretsBed) -> None:
    sm.server.stop()
    sm.secret_env({"K": "projects/test-project/secrets/k/versions/latest"})
    proc = bed.run(timeout=40)
    report = only_report(bed)
    assert report["status"] == "error", proc.log
    assert "HTTP 000: no answer from Secret Manager at http://127.0.0.1:" in report["message"]
