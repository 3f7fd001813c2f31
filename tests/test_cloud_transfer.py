"""The transfer step's host equivalent (wfgen.backends.cloud_transfer) against
`wfgen serve`'s Storage, through google-cloud-storage: folder, file and
wildcard inputs; folder and file outputs readable by the client and by
`gcloud storage cat`; a 3 MB binary byte-exact; a missing input and a failed
upload named with their URI and status; sliced downloads of a big object."""

from __future__ import annotations

import os
import subprocess

import pytest
from google.cloud import storage

from tests.server.serve_process import GCLOUD, Serve
from wfgen.backends import cloud_transfer as transfer
from wfgen.backends.cloud_transfer import TransferError, Transfers

pytestmark = pytest.mark.xdist_group("serve_transfer")


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("serve-transfer"), on_host=False).start()
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture
def client(serve, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", serve.url)
    return storage.Client(project="demo")


@pytest.fixture(scope="module")
def dataset(serve):
    """A bucket with a folder, files and a 3 MB binary."""
    before = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = serve.url
    try:
        return _fill(storage.Client(project="demo"))
    finally:
        if before is None:
            del os.environ["STORAGE_EMULATOR_HOST"]
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = before


def _fill(client: storage.Client) -> bytes:
    bucket = client.create_bucket("data-bucket")
    blob = os.urandom(3 * 1024 * 1024)
    bucket.blob("train/model.bin").upload_from_string(blob)
    for name in ("train/a.csv", "train/b.csv", "train/deep/c.csv", "logs/x.txt"):
        bucket.blob(name).upload_from_string(name.encode())
    client.create_bucket("out-bucket")
    return blob


def test_inputs_arrive_folder_file_and_wildcard(client, dataset, tmp_path):
    inputs = {"DATA": "gs://data-bucket/train/", "MODEL": "gs://data-bucket/train/model.bin",
              "CSVS": "gs://data-bucket/train/*.csv"}
    tally = Transfers(client).download(inputs, tmp_path)
    assert (tmp_path / "MODEL").read_bytes() == dataset
    assert (tmp_path / "DATA" / "model.bin").read_bytes() == dataset
    assert (tmp_path / "DATA" / "deep" / "c.csv").read_text() == "train/deep/c.csv"
    assert sorted(p.name for p in (tmp_path / "CSVS").iterdir()) == ["a.csv", "b.csv"]
    assert tally["objects"] == 4 + 1 + 2
    csv = len("train/a.csv")  # a.csv and b.csv: in the folder and by the wildcard
    assert tally["bytes"] == 2 * len(dataset) + 4 * csv + len("train/deep/c.csv")
    assert tally["seconds"] >= 0
    assert not list(tmp_path.rglob("*.wfgen-partial"))


def test_a_missing_input_is_named_with_its_status(client, dataset, tmp_path):
    with pytest.raises(TransferError, match=r"gs://data-bucket/nope\.bin: HTTP 404"):
        Transfers(client).download({"X": "gs://data-bucket/nope.bin"}, tmp_path)
    with pytest.raises(TransferError, match=r"gs://data-bucket/empty/: HTTP 404"):
        Transfers(client).download({"X": "gs://data-bucket/empty/"}, tmp_path)
    with pytest.raises(TransferError, match=r"gs://no-bucket-here/x: HTTP 404"):
        Transfers(client).download({"X": "gs://no-bucket-here/x"}, tmp_path)


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_outputs_are_readable_by_the_client_and_gcloud(serve, client, dataset, tmp_path):
    (tmp_path / "CKPT" / "epoch-1").mkdir(parents=True)
    (tmp_path / "CKPT" / "epoch-1" / "w.pt").write_bytes(dataset)
    (tmp_path / "CKPT" / "metrics.json").write_text('{"loss": 0.1}')
    (tmp_path / "MODEL").write_bytes(b"final model")
    outputs = {"CKPT": "gs://out-bucket/run-1/ckpt/", "MODEL": "gs://out-bucket/run-1/model",
               "NEVER_WRITTEN": "gs://out-bucket/run-1/absent"}
    tally = Transfers(client).upload(outputs, tmp_path)
    assert tally["objects"] == 3
    bucket = client.bucket("out-bucket")
    assert bucket.blob("run-1/ckpt/epoch-1/w.pt").download_as_bytes() == dataset
    assert bucket.get_blob("run-1/absent") is None
    env = {**serve.gcloud_env(),
           "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{serve.url}/storage/v1/"}
    cat = subprocess.run([GCLOUD, "storage", "cat", "gs://out-bucket/run-1/ckpt/metrics.json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert cat.returncode == 0 and cat.stdout == '{"loss": 0.1}', cat.stderr


def test_a_failed_upload_names_the_object(client, dataset, tmp_path):
    (tmp_path / "OUT").write_text("x")
    (tmp_path / "OK").write_text("y")
    with pytest.raises(TransferError, match=r"output gs://missing-bucket/o\.txt: HTTP 404"):
        Transfers(client).upload({"OUT": "gs://missing-bucket/o.txt",
                                  "OK": "gs://out-bucket/ok.txt"}, tmp_path)
    # the other output still went up: one failure does not stop the rest
    assert client.bucket("out-bucket").blob("ok.txt").download_as_bytes() == b"y"


def test_a_big_object_downloads_in_verified_slices(client, dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "SLICE_AT", 1 << 20)
    monkeypatch.setattr(transfer, "SLICE", 512 * 1024)
    tally = Transfers(client).download({"M": "gs://data-bucket/train/model.bin"}, tmp_path)
    assert (tmp_path / "M").read_bytes() == dataset
    assert tally == {"objects": 1, "bytes": len(dataset), "seconds": tally["seconds"]}


def test_the_step_as_a_process(serve, dataset, tmp_path):
    """What the VM agent runs: a JSON tally on stdout, or the URI and status on stderr."""
    import json
    import sys

    env = {**os.environ, "STORAGE_EMULATOR_HOST": serve.url, "GOOGLE_CLOUD_PROJECT": "demo"}

    def step(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wfgen.backends.cloud_transfer", *args],
                              capture_output=True, text=True, env=env, timeout=120)

    done = step("download", str(tmp_path), json.dumps({"M": "gs://data-bucket/logs/x.txt"}))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["objects"] == 1
    assert (tmp_path / "M").read_text() == "logs/x.txt"
    missing = step("download", str(tmp_path), json.dumps({"M": "gs://data-bucket/gone"}))
    assert missing.returncode == 1
    assert "gs://data-bucket/gone: HTTP 404" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = step("upload", str(tmp_path), "{not json")
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    wildcard_out = step("upload", str(tmp_path), json.dumps({"M": "gs://out-bucket/*.txt"}))
    assert wildcard_out.returncode == 1 and "cannot be a wildcard" in wildcard_out.stderr
