"""Cloud Storage in `wfgen serve`, through the real clients: gcloud storage
(buckets create, cp incl. -r, ls, cat, rm) with the override serve prints, and
google.cloud.storage.Client() with STORAGE_EMULATOR_HOST (multipart and
multi-chunk resumable uploads, ranges, listing pages, copy/rewrite/compose,
preconditions, errors), what survives a restart, and a body bigger than any
other API takes, streamed."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import storage

from tests.server.serve_process import GCLOUD, Serve

pytestmark = pytest.mark.xdist_group("serve_storage")


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-storage")
    server = Serve(tmp, on_host=False).start()
    yield server
    assert server.stop() == 0, server.log()
    # every request of gcloud and google-cloud-storage passed Google's description, and
    # every answer field is in it
    for mark in ("is not in Google's description", "Cannot bind", "Unknown name",
                 "Invalid value at", "internal error"):
        assert mark not in server.log(), server.log()


def printed(serve: Serve, name: str) -> str:
    """The value of one `export NAME=...` line serve printed at start."""
    for line in serve.lines:
        if line.startswith(f"export {name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"serve printed no {name}:\n{serve.log()}")


@pytest.fixture
def client(serve, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", printed(serve, "STORAGE_EMULATOR_HOST"))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo")
    return storage.Client()


def gcloud(serve: Serve, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**serve.gcloud_env(), "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE":
           printed(serve, "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE")}
    assert GCLOUD
    return subprocess.run([GCLOUD, *args], capture_output=True, text=True, timeout=180,
                          env=env)


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_gcloud_storage_commands_work_unchanged(serve, client, tmp_path):
    made = gcloud(serve, "storage", "buckets", "create", "gs://gcloud-bucket")
    assert made.returncode == 0, made.stderr
    blob = os.urandom(3 * 1024 * 1024)  # a 3 MB binary
    (tmp_path / "model.bin").write_bytes(blob)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.txt").write_text("beta\n")
    for args in (["cp", str(tmp_path / "model.bin"), "gs://gcloud-bucket/model.bin"],
                 ["cp", "-r", str(tree), "gs://gcloud-bucket/run/"]):
        done = gcloud(serve, "storage", *args)
        assert done.returncode == 0, done.stderr
    listed = gcloud(serve, "storage", "ls", "gs://gcloud-bucket/run/tree/")
    assert listed.stdout.split() == ["gs://gcloud-bucket/run/tree/a.txt",
                                     "gs://gcloud-bucket/run/tree/sub/"]
    cat = gcloud(serve, "storage", "cat", "gs://gcloud-bucket/run/tree/sub/b.txt")
    assert cat.returncode == 0 and cat.stdout == "beta\n", cat.stderr
    back = gcloud(serve, "storage", "cp", "gs://gcloud-bucket/model.bin",
                  str(tmp_path / "back.bin"))
    assert back.returncode == 0, back.stderr
    assert (tmp_path / "back.bin").read_bytes() == blob
    # what gcloud wrote, the Python client reads, checksums verified by the client
    assert client.bucket("gcloud-bucket").blob("model.bin").download_as_bytes() == blob
    removed = gcloud(serve, "storage", "rm", "-r", "gs://gcloud-bucket/run/")
    assert removed.returncode == 0, removed.stderr
    left = gcloud(serve, "storage", "ls", "gs://gcloud-bucket")
    assert left.stdout.split() == ["gs://gcloud-bucket/model.bin"]
    missing = gcloud(serve, "storage", "cat", "gs://gcloud-bucket/nope.txt")
    assert missing.returncode != 0 and "nope.txt" in missing.stderr


def test_python_client_uploads_and_downloads_byte_exact(client, tmp_path):
    bucket = client.create_bucket("py-bucket")
    small = bucket.blob("small.txt")
    small.upload_from_string(b"hello world", content_type="text/plain")  # multipart
    big = os.urandom(5 * 1024 * 1024 + 123)
    chunked = bucket.blob("big.bin", chunk_size=1024 * 1024)  # resumable, six chunks
    chunked.upload_from_string(big)
    got = bucket.get_blob("big.bin")
    assert got.size == len(big)
    assert got.md5_hash and got.crc32c and got.generation
    assert bucket.blob("big.bin").download_as_bytes() == big
    assert bucket.blob("big.bin").download_as_bytes(start=10, end=19) == big[10:20]
    assert bucket.blob("small.txt").download_as_bytes(start=6) == b"world"
    target = tmp_path / "big.bin"
    bucket.blob("big.bin").download_to_filename(str(target))
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(big).digest()
    assert bucket.get_blob("small.txt").content_type == "text/plain"


def test_listing_prefixes_delimiters_and_pages(client):
    bucket = client.create_bucket("list-bucket")
    names = [f"data/part-{i:02d}.csv" for i in range(7)] + \
            ["data/sub/x.txt", "data/sub/y.txt", "data/zz/z.txt", "other.txt"]
    for name in names:
        bucket.blob(name).upload_from_string(name.encode())
    pages = client.list_blobs("list-bucket", prefix="data/", delimiter="/", page_size=3)
    seen = [blob.name for blob in pages]
    assert seen == [f"data/part-{i:02d}.csv" for i in range(7)]
    assert pages.prefixes == {"data/sub/", "data/zz/"}
    assert pages.num_results == 7
    assert [b.name for b in client.list_blobs("list-bucket", prefix="data/sub/")] == \
        ["data/sub/x.txt", "data/sub/y.txt"]
    everything = [b.name for b in client.list_blobs("list-bucket", page_size=4)]
    assert everything == sorted(names)
    globbed = [b.name for b in client.list_blobs("list-bucket", match_glob="**/*.txt")]
    assert globbed == ["data/sub/x.txt", "data/sub/y.txt", "data/zz/z.txt"]
    ranged = [b.name for b in client.list_blobs("list-bucket", start_offset="data/part-05",
                                                end_offset="data/sub/y")]
    assert ranged == ["data/part-05.csv", "data/part-06.csv", "data/sub/x.txt"]


def test_copy_rewrite_compose_delete_and_preconditions(client):
    bucket = client.create_bucket("ops-bucket")
    one, two = bucket.blob("one"), bucket.blob("two")
    one.upload_from_string(b"first-")
    two.upload_from_string(b"second")
    copied = bucket.copy_blob(one, bucket, "copy-of-one")
    assert copied.download_as_bytes() == b"first-"
    token, written, total = bucket.blob("rewritten").rewrite(two)
    assert (token, written, total) == (None, 6, 6)
    joined = bucket.blob("joined")
    joined.compose([one, two])
    assert joined.download_as_bytes() == b"first-second"
    assert bucket.get_blob("joined").component_count == 2
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("one").upload_from_string(b"again", if_generation_match=0)
    bucket.blob("copy-of-one").delete()
    assert bucket.get_blob("copy-of-one") is None
    with pytest.raises(exceptions.NotFound):
        bucket.blob("copy-of-one").download_as_bytes()
    with pytest.raises(exceptions.Conflict):
        bucket.delete()
    with pytest.raises(exceptions.Conflict):
        client.create_bucket("ops-bucket")
    with pytest.raises(exceptions.BadRequest, match="Invalid bucket name"):
        client.create_bucket("bad_bucket_name_with_google")
    with pytest.raises(exceptions.NotFound):
        client.get_bucket("no-such-bucket")


def test_a_body_bigger_than_other_apis_take_streams_through(serve, client):
    """40 MB in one media upload (other APIs stop at 10 MB): streamed, not refused."""
    client.create_bucket("stream-bucket")
    size = 40 * 1024 * 1024
    chunk = os.urandom(1 << 20)
    digest = hashlib.md5(usedforsecurity=False)
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=60)
    conn.putrequest("POST", "/upload/storage/v1/b/stream-bucket/o?uploadType=media&name=big")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    for _ in range(size // len(chunk)):
        conn.send(chunk)
        digest.update(chunk)
    response = conn.getresponse()
    body = json.loads(response.read())
    assert response.status == 200, body
    assert body["size"] == str(size)
    blob = client.bucket("stream-bucket").get_blob("big")
    assert blob.size == size and blob.md5_hash == body["md5Hash"]
    import base64

    assert base64.b64decode(body["md5Hash"]) == digest.digest()


def test_a_web_page_cannot_upload(serve):
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    conn.request("POST", "/upload/storage/v1/b/py-bucket/o?uploadType=media&name=evil",
                 body=b"x", headers={"Origin": "http://evil.example",
                                     "Content-Type": "text/plain"})
    response = conn.getresponse()
    assert response.status == 403
    response.read()


def test_objects_survive_a_restart(tmp_path, monkeypatch):
    data = tmp_path / "data"
    first = Serve(tmp_path, on_host=False, data_dir=data).start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", printed(first, "STORAGE_EMULATOR_HOST"))
        storage.Client(project="demo").create_bucket("kept").blob("a/b.txt") \
            .upload_from_string(b"still here")
    finally:
        assert first.stop() == 0, first.log()
    second = Serve(tmp_path, on_host=False, data_dir=data).start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", printed(second, "STORAGE_EMULATOR_HOST"))
        blob = storage.Client(project="demo").bucket("kept").blob("a/b.txt")
        assert blob.download_as_bytes() == b"still here"
        assert Path(data, "storage", "storage.sqlite3").exists()
    finally:
        assert second.stop() == 0, second.log()


def test_multipart_with_bare_lf_lines_and_crlf_in_the_media(serve, client):
    """apitools writes LF line breaks; the media itself may hold CRLF CRLF."""
    client.create_bucket("mp-bucket")
    media = b"head\r\n\r\nmiddle\n\ntail\r\n"
    body = (b"--XyZ\nContent-Type: application/json\n\n{\"name\": \"m.bin\"}\n--XyZ\n"
            b"Content-Type: application/octet-stream\n\n" + media + b"\n--XyZ--\n")
    conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    conn.request("POST", "/upload/storage/v1/b/mp-bucket/o?uploadType=multipart", body=body,
                 headers={"Content-Type": "multipart/related; boundary='XyZ'"})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    response.read()
    assert client.bucket("mp-bucket").blob("m.bin").download_as_bytes() == media


def test_a_resumable_upload_refused_at_its_end_ends_its_session(client):
    bucket = client.create_bucket("resume-bucket")
    bucket.blob("taken").upload_from_string(b"first")
    blob = bucket.blob("taken", chunk_size=256 * 1024)
    with pytest.raises(exceptions.PreconditionFailed):
        blob.upload_from_string(os.urandom(600 * 1024), if_generation_match=0)
    assert bucket.blob("taken").download_as_bytes() == b"first"
