"""container.secret_env end to end against one `wfgen serve`: the secret made
with the real `gcloud secrets create`, the job deployed and run with wfgen's
cloud commands, the value reaching the container, and appearing in none of:
the generated YAML, the VM's metadata, serve's log, the serial console, the
Logging entries, the result map, `wfgen status`, `gcloud workflows executions
describe`. A missing secret and a denied one fail the run before the
container starts, naming the secret."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cloud.serve_cli import GCLOUD, PROJECT, Serve

pytestmark = [pytest.mark.xdist_group("secrets_serve"),
              pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")]

CANARY = f"wfgen-canary-{secrets.token_hex(8)}"
VALUE = f"{CANARY} 'q' $(id)\n"
SHOW_HASH = 'printf %s "$WANDB_API_KEY" | sha256sum; echo "plain=$PLAIN"; sleep 2'


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("secrets-serve")).start()
    yield server
    assert server.stop() == 0
    assert CANARY not in "\n".join(server.lines)  # serve's log


def gcloud(serve: Serve, *args: str, data: bytes | None = None
           ) -> subprocess.CompletedProcess[bytes]:
    env = serve_gcloud_env(serve)
    return subprocess.run([GCLOUD or "gcloud", *args], input=data, capture_output=True,
                          timeout=180, env=env)


def serve_gcloud_env(serve: Serve) -> dict[str, str]:
    config = serve.tmp / "gcloud-config"
    config.mkdir(exist_ok=True)
    url = f"http://{serve.host}/"
    from tests.cloud.serve_cli import clean_env

    return clean_env(
        CLOUDSDK_CONFIG=str(config), CLOUDSDK_AUTH_DISABLE_CREDENTIALS="true",
        CLOUDSDK_CORE_PROJECT=PROJECT, CLOUDSDK_CORE_DISABLE_PROMPTS="true",
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="true",
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
        CLOUDSDK_WORKFLOWS_LOCATION="us-central1",
        CLOUDSDK_API_ENDPOINT_OVERRIDES_WORKFLOWS=url,
        CLOUDSDK_API_ENDPOINT_OVERRIDES_WORKFLOWEXECUTIONS=url,
        CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=url,
        CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER=url)


def spec(tmp: Path, name: str, secret_env: dict[str, str], **container: object) -> str:
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps({
        "name": name, "timeout": "5m", "heartbeat": "2s", "retries": 0,
        "container": {"image": "alpine:3.20", "script": SHOW_HASH, "env": {"PLAIN": "shown"},
                      "secret_env": secret_env, **container}}))
    return str(path)


def leaked(text: str) -> bool:
    encoded = base64.b64encode(VALUE.encode()).decode()
    return CANARY in text or encoded[:16] in text


def test_secret_reaches_the_container_and_leaks_nowhere(serve, tmp_path):
    made = gcloud(serve, "secrets", "create", "wandb-key", "--data-file=-", data=VALUE.encode())
    assert made.returncode == 0, made.stderr
    job = spec(tmp_path, "secret-job", {"WANDB_API_KEY": "wandb-key"})

    generated = serve.wfgen("generate", job)
    assert generated.returncode == 0, generated.stderr
    assert not leaked(generated.stdout)

    started = serve.wfgen("run", job, "--detach")
    assert started.returncode == 0, started.stderr
    name = started.stdout.strip()
    execution_id = name.rsplit("/", 1)[1]
    vms = serve.wait_for(lambda: serve.vms(execution_id), "the job's VM")
    items = {i["key"]: i["value"] for i in vms[0]["metadata"]["items"]}
    assert json.loads(items["wfgen-secret-env"]) == {"WANDB_API_KEY": "wandb-key"}
    assert not leaked(json.dumps(vms[0]))  # the VM's metadata
    zone = vms[0]["zone"].rsplit("/", 1)[1]
    serial_path = (f"/compute/v1/projects/{PROJECT}/zones/{zone}/instances/"
                   f"{vms[0]['name']}/serialPort")

    def console() -> str:
        try:
            return serve.rest("GET", serial_path)["contents"]
        except OSError:
            return ""

    seen = serve.wait_for(lambda: (text := console()) and "plain=shown" in text and text,
                          "the job's output on the serial console")
    assert "read 1 secret(s) from Secret Manager" in seen and not leaked(seen)

    serve.wait_for(lambda: "SUCCEEDED" in serve.wfgen("status", name).stdout,
                   "the execution to succeed")
    status = serve.wfgen("status", name)
    assert status.returncode == 0 and not leaked(status.stdout + status.stderr)
    described = gcloud(serve, "workflows", "executions", "describe", execution_id,
                       "--workflow=secret-job", "--format=json")
    assert described.returncode == 0, described.stderr
    execution = json.loads(described.stdout)
    assert execution["state"] == "SUCCEEDED" and not leaked(described.stdout.decode())
    result = json.loads(execution["result"])
    digest = hashlib.sha256(VALUE.encode()).hexdigest()
    assert digest in result["output_tail"]  # the container had the exact value
    assert not leaked(json.dumps(result))

    entries = serve.rest("POST", "/v2/entries:list", {"resourceNames": [f"projects/{PROJECT}"]})
    texts = json.dumps(entries)
    assert "plain=shown" in texts and not leaked(texts)  # Logging entries


@pytest.mark.parametrize("case", ["missing", "denied"])
def test_an_unreadable_secret_fails_before_the_container_starts(serve, tmp_path, case):
    secret = f"{case}-key"
    if case == "denied":
        made = gcloud(serve, "secrets", "create", secret, "--data-file=-", data=b"v")
        assert made.returncode == 0, made.stderr
        bound = gcloud(serve, "secrets", "add-iam-policy-binding", secret,
                       "--member=serviceAccount:someone@local-project.iam.gserviceaccount.com",
                       "--role=roles/secretmanager.secretAccessor")
        assert bound.returncode == 0, bound.stderr
    marker = tmp_path / "ran"
    job = spec(tmp_path, f"{case}-job", {"API_KEY": secret}, script=f"touch {marker}")
    run = serve.wfgen("run", job)
    assert run.returncode == 125, run.stderr
    result = json.loads(run.stdout)
    ref = f"projects/{PROJECT}/secrets/{secret}/versions/latest"
    assert result["status"] == "error"
    assert result["message"].startswith(f"secret API_KEY ({ref}) could not be read: HTTP "
                                        + ("404" if case == "missing" else "403"))
    if case == "denied":
        assert "roles/secretmanager.secretAccessor" in result["message"]
    assert not marker.exists()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
