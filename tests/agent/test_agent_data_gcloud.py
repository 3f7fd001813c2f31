"""The transfer step as a real VM runs it: `gcloud storage` (data.sh's
gcloud_transfer; on a VM inside the pinned cloud-sdk image, here the host's real
gcloud through WFGEN_GCLOUD) against serve's Cloud Storage on loopback: a folder,
a wildcard and a file come down, a folder (rsync) and a file go up, a missing
input is named with 404, and the tally is what moved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from wfgen.job.resources import startup_dir
from wfgen.local.loopback import LoopbackServer
from wfgen.server.storage_api import StorageApi
from wfgen.server.storage_store import ObjectStore

GCLOUD = shutil.which("gcloud")
pytestmark = [pytest.mark.xdist_group("agent_data_gcloud"),
              pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")]
BLOB = os.urandom(3 << 20)


@pytest.fixture(scope="module")
def storage_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent-gcloud-storage")
    server = LoopbackServer([StorageApi(ObjectStore(root), "local-project")]).start()
    from google.cloud import storage

    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    try:
        bucket = storage.Client(project="local-project").create_bucket("agent-data")
        for name, body in (("train/a.txt", b"alpha\n"), ("train/sub/b.txt", b"beta\n"),
                           ("shards/s1.csv", b"1\n"), ("shards/s2.csv", b"2\n"),
                           ("shards/x.txt", b"no\n"), ("weights.bin", BLOB)):
            bucket.blob(name).upload_from_string(body)
        yield server.url, bucket
    finally:
        if old is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = old
        server.stop()


def transfer(tmp: Path, url: str, direction: str, mapping: dict[str, str]
             ) -> tuple[int, str, str]:
    """Source startup.sh and data.sh, run `transfer DIRECTION MAP`; (status, REPLY, log)."""
    config = tmp / "gcloud-config"
    config.mkdir(exist_ok=True)
    gcloud = (f"env CLOUDSDK_CONFIG={config} CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true "
              "CLOUDSDK_CORE_PROJECT=local-project CLOUDSDK_CORE_DISABLE_PROMPTS=true "
              f"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true {GCLOUD}")
    script = (f'source {startup_dir() / "startup.sh"}; source {startup_dir() / "data.sh"}; '
              f'STORAGE_ENDPOINT={url}; mkdir -p "$STATE"; '
              'if transfer "$1" "$2"; then echo "OK $REPLY"; else echo "ERR $REPLY"; fi')
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "WFGEN_STATE_DIR": str(tmp / "state"),
           "WFGEN_DATA_DIR": str(tmp / "data"), "WFGEN_GCLOUD": gcloud}
    done = subprocess.run(["bash", "-c", script, "agent", direction, json.dumps(mapping)],
                          capture_output=True, text=True, timeout=300, env=env)
    status, _, reply = done.stdout.strip().rpartition("\n")[2].partition(" ")
    return (0 if status == "OK" else 1), reply, done.stderr


def test_gcloud_storage_down_and_up(storage_url, tmp_path):
    url, bucket = storage_url
    rc, reply, log = transfer(tmp_path, url, "download", {
        "DATA": "gs://agent-data/train/", "S": "gs://agent-data/shards/*.csv",
        "W": "gs://agent-data/weights.bin"})
    assert rc == 0, log
    tally = json.loads(reply)
    assert (tally["objects"], tally["bytes"]) == (5, 6 + 5 + 2 + 2 + len(BLOB))
    data = tmp_path / "data"
    assert (data / "DATA" / "sub" / "b.txt").read_bytes() == b"beta\n"
    assert sorted(p.name for p in (data / "S").iterdir()) == ["s1.csv", "s2.csv"]
    assert (data / "W").read_bytes() == BLOB

    (data / "OUT").mkdir()
    (data / "OUT" / "m.txt").write_text("metrics\n")
    (data / "MODEL").write_bytes(BLOB[::-1])
    rc, reply, log = transfer(tmp_path, url, "upload", {
        "OUT": "gs://agent-data/runs/out/", "MODEL": "gs://agent-data/runs/model.bin"})
    assert rc == 0, log
    assert json.loads(reply)["objects"] == 2
    assert bucket.blob("runs/out/m.txt").download_as_bytes() == b"metrics\n"
    assert bucket.blob("runs/model.bin").download_as_bytes() == BLOB[::-1]


def test_gcloud_storage_names_a_missing_input(storage_url, tmp_path):
    url, _ = storage_url
    rc, reply, log = transfer(tmp_path, url, "download", {"X": "gs://agent-data/nope.bin"})
    assert rc == 1, log
    assert reply.startswith("input gs://agent-data/nope.bin: HTTP 404: "), reply
    assert "matched no objects" in reply


def test_a_long_transfer_logs_its_progress(tmp_path):
    """A step that takes 6 s (here a script that writes 1 MB, waits and reports, in
    the transfer step's place): the agent logs the bytes so far every 5 s."""
    step = tmp_path / "slow-step"
    step.write_text('#!/bin/bash\nmkdir -p "$2/D"; head -c 1048576 /dev/zero > "$2/D/f"\n'
                    'sleep 6\necho \'{"objects": 1, "bytes": 1048576, "seconds": 6.0}\'\n')
    step.chmod(0o755)
    script = (f'source {startup_dir() / "startup.sh"}; source {startup_dir() / "data.sh"}; '
              'STORAGE_ENDPOINT=http://127.0.0.1:9; mkdir -p "$STATE"; '
              'transfer download \'{"D": "gs://agent-data/d/"}\' && echo "OK $REPLY"')
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "WFGEN_STATE_DIR": str(tmp_path / "state"), "WFGEN_DATA_DIR": str(tmp_path / "data"),
           "WFGEN_TRANSFER": str(step)}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.stdout.strip() == 'OK {"objects": 1, "bytes": 1048576, "seconds": 6.0}'
    progress = [line for line in done.stderr.splitlines() if "downloading: " in line]
    assert len(progress) == 1, done.stderr
    assert "1048576 bytes in" in progress[0] and "after 5s" in progress[0]
