"""A job's inputs and outputs end to end: `wfgen run JOB` against one `wfgen
serve`, whose local VMs run the real startup script, download the inputs from
serve's Cloud Storage before the container starts and upload the outputs after
it exits (the transfer step as a host process). What arrives is read back with
the Python client and the real `gcloud storage cat`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.cloud import storage

from tests.cloud.serve_cli import GCLOUD, Serve, clean_env

pytestmark = pytest.mark.xdist_group("data_serve")
BUCKET = "wfgen-data-test"
BLOB = os.urandom(3 << 20)  # 3 MB of binary: arrives byte-exact both ways


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("data-serve")).start()
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def client(serve):
    with pytest.MonkeyPatch.context() as env:  # set for the module, restored after
        env.setenv("STORAGE_EMULATOR_HOST", f"http://{serve.host}")
        made = storage.Client(project="local-project")
        bucket = made.create_bucket(BUCKET)
        bucket.blob("train/a.txt").upload_from_string(b"alpha\n")
        bucket.blob("train/sub/b.txt").upload_from_string(b"beta\n")
        bucket.blob("shards/s1.csv").upload_from_string(b"1\n")
        bucket.blob("shards/s2.csv").upload_from_string(b"2\n")
        bucket.blob("shards/skip.txt").upload_from_string(b"no\n")
        bucket.blob("weights.bin").upload_from_string(BLOB)
        yield made


def job(tmp: Path, name: str, script: str, *, inputs: dict[str, str] | None = None,
        outputs: dict[str, Any] | None = None, **extra: Any) -> str:
    spec: dict[str, Any] = {"name": name, "timeout": "5m", "heartbeat": "2s", "retries": 0,
                            "container": {"image": "alpine:3.20", "script": script}, **extra}
    if inputs:
        spec["inputs"] = inputs
    if outputs:
        spec["outputs"] = outputs
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(spec))
    return str(path)


def result_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(done.stdout)


COPY = """set -e
cat "$DATA/a.txt" "$DATA/sub/b.txt" > /dev/null
ls "$SHARDS" | sort | tr '\\n' ' '
mkdir -p "$RESULTS/epoch1"
cp "$DATA/a.txt" "$RESULTS/epoch1/a.txt"
cp "$WEIGHTS" "$MODEL"
echo done"""


def test_folder_file_and_wildcard_in_folder_and_file_out(serve, client, tmp_path):
    spec = job(tmp_path, "data-io", COPY,
               inputs={"DATA": f"gs://{BUCKET}/train/", "SHARDS": f"gs://{BUCKET}/shards/*.csv",
                       "WEIGHTS": f"gs://{BUCKET}/weights.bin"},
               outputs={"RESULTS": f"gs://{BUCKET}/runs/r1/", "MODEL": f"gs://{BUCKET}/runs/model.bin"})
    done = serve.wfgen("run", spec)
    assert done.returncode == 0, done.stderr
    result = result_of(done)
    assert result["status"] == "succeeded"
    assert "s1.csv s2.csv" in result["output_tail"] and "skip" not in result["output_tail"]
    data = result["data"]
    assert data["in"]["objects"] == 5 and data["in"]["bytes"] == len(BLOB) + 6 + 5 + 2 + 2
    assert data["out"]["objects"] == 2 and data["out"]["bytes"] == len(BLOB) + 6
    bucket = client.bucket(BUCKET)
    assert bucket.blob("runs/model.bin").download_as_bytes() == BLOB
    assert bucket.blob("runs/r1/epoch1/a.txt").download_as_bytes() == b"alpha\n"
    if GCLOUD:
        cat = gcloud_storage(serve, "cat", f"gs://{BUCKET}/runs/r1/epoch1/a.txt")
        assert cat.returncode == 0 and cat.stdout == "alpha\n", cat.stderr
    assert not serve.vms()  # the VM is gone


def test_a_missing_input_fails_naming_it_before_the_container(serve, client, tmp_path):
    spec = job(tmp_path, "data-missing", "echo RAN-THE-CONTAINER",
               inputs={"DATA": f"gs://{BUCKET}/nothing-here.bin"})
    done = serve.wfgen("run", spec)
    assert done.returncode != 0
    result = result_of(done)
    assert result["status"] == "error"
    assert f"gs://{BUCKET}/nothing-here.bin" in result["message"]
    assert "404" in result["message"]
    assert "RAN-THE-CONTAINER" not in result["output_tail"]
    assert not serve.vms()


def test_exit_3_still_uploads_and_reports_3(serve, client, tmp_path):
    spec = job(tmp_path, "data-exit3", 'echo partial > "$OUT"; exit 3',
               outputs={"OUT": f"gs://{BUCKET}/runs/partial.txt"})
    done = serve.wfgen("run", spec)
    assert done.returncode == 3, done.stderr
    result = result_of(done)
    assert result["status"] == "failed" and result["exit_code"] == 3
    assert result["data"]["out"]["objects"] == 1
    assert client.bucket(BUCKET).blob("runs/partial.txt").download_as_bytes() == b"partial\n"


def test_a_failed_upload_fails_a_job_that_exited_0(serve, client, tmp_path):
    spec = job(tmp_path, "data-upfail", 'echo x > "$OUT"',
               outputs={"OUT": "gs://no-such-bucket-here/out.txt"})
    done = serve.wfgen("run", spec)
    assert done.returncode != 0
    result = result_of(done)
    assert result["status"] == "error"
    assert "gs://no-such-bucket-here/out.txt" in result["message"]
    assert "404" in result["message"]
    assert not serve.vms()


def test_sync_every_uploads_while_the_container_runs(serve, client, tmp_path):
    script = 'mkdir -p "$CK"; echo one > "$CK/step1"; sleep 25; echo two > "$CK/step2"'
    spec = job(tmp_path, "data-sync", script,
               outputs={"CK": {"uri": f"gs://{BUCKET}/ck/", "sync_every": "10s"}})
    run = serve.popen("run", spec)
    try:
        blob = client.bucket(BUCKET).blob("ck/step1")
        serve.wait_for(blob.exists, "the synced checkpoint while the job runs", timeout=60)
        assert run.poll() is None  # still running: synced mid-run
        assert not client.bucket(BUCKET).blob("ck/step2").exists()
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert client.bucket(BUCKET).blob("ck/step2").download_as_bytes() == b"two\n"
    # step1 went up while it ran and is unchanged: the last upload does not send it again
    # (step2 goes with it, unless a sync took it between its write and the exit)
    assert json.loads(out)["data"]["out"]["objects"] <= 1


def test_the_argument_overrides_an_input(serve, client, tmp_path):
    spec = job(tmp_path, "data-arg", 'cat "$DATA"',
               inputs={"DATA": f"gs://{BUCKET}/nothing-here.bin"})
    done = serve.wfgen("run", spec, "--data",
                       json.dumps({"inputs": {"DATA": f"gs://{BUCKET}/train/a.txt"}}))
    assert done.returncode == 0, done.stderr
    assert "alpha" in result_of(done)["output_tail"]
    bad = serve.wfgen("run", spec, "--data",
                      json.dumps({"inputs": {"DATA": f"gs://{BUCKET}/../x"}}))
    assert bad.returncode == 2 and "inputs.DATA" in bad.stderr


def gcloud_storage(serve: Serve, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `gcloud storage` pointed at serve (a config of its own, no credentials)."""
    config = serve.tmp / "gcloud-storage-config"
    config.mkdir(exist_ok=True)
    env = clean_env(CLOUDSDK_CONFIG=str(config), CLOUDSDK_AUTH_DISABLE_CREDENTIALS="true",
                    CLOUDSDK_CORE_PROJECT="local-project", CLOUDSDK_CORE_DISABLE_PROMPTS="true",
                    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
                    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="true",
                    CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=f"http://{serve.host}/storage/v1/")
    return subprocess.run([GCLOUD or "gcloud", "storage", *args], capture_output=True,
                          text=True, timeout=120, env=env)
