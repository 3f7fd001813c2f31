"""gs:// URIs of a job's inputs and outputs: kinds, and every refusal naming
what is wrong (wfgen.job.data_uris, with the bucket rules of gcs_names)."""

from __future__ import annotations

import pytest

from wfgen.job.data_uris import check_data_map, parse_uri
from wfgen.job.gcs_names import bucket_problem, object_problem


@pytest.mark.parametrize(("text", "kind", "prefix"), [
    ("gs://my-bucket/data/", "folder", "data/"),
    ("gs://my-bucket/data/train.csv", "file", "data/train.csv"),
    ("gs://my-bucket/data/*.csv", "wildcard", "data/"),
    ("gs://my-bucket/part-?", "wildcard", ""),
    ("gs://a.b.c/x", "file", "x"),
])
def test_kinds(text, kind, prefix):
    uri = parse_uri(text)
    assert (uri.kind, uri.prefix, uri.uri) == (kind, prefix, text)


@pytest.mark.parametrize(("text", "output", "words"), [
    ("s3://bucket/x", False, "must start with gs://"),
    ("gs:///x", False, "names no bucket"),
    ("gs://bucket", False, "names only a bucket"),
    ("gs://bucket/", False, "names only a bucket"),
    ("gs://Bad_Bucket/x", False, "lower-case"),
    ("gs://ab/x", False, "3 to 63"),
    ("gs://google-data/x", False, "google"),
    ("gs://192.168.1.1/x", False, "IP address"),
    ("gs://bucket/a/../b", False, "'..'"),
    ("gs://bucket/a//b", False, "empty part"),
    ("gs://bucket/*/b.txt", False, "only in the last part"),
    ("gs://bucket/out/*.pt", True, "an output cannot be a wildcard"),
    (42, False, "gs:// URI string"),
])
def test_refusals(text, output, words):
    with pytest.raises(ValueError, match=None) as caught:
        parse_uri(text, output=output)
    assert words in str(caught.value)


def test_a_map_names_every_bad_entry():
    message = check_data_map({"OK": "gs://bucket/x", "bad-name": "gs://bucket/y",
                              "CKPT": "gs://bucket/*.pt"}, output=True)
    assert "'bad-name'" in message and "CKPT:" in message and "OK" not in message
    assert check_data_map({"DATA": "gs://bucket/d/"}, output=False) is None
    assert "map" in check_data_map(["gs://bucket/x"], output=False)


def test_naming_rules():
    assert bucket_problem("my-bucket") is None
    assert bucket_problem("a" * 64) is not None
    assert bucket_problem(("a" * 63 + ".") * 3 + "a") is None
    assert bucket_problem("-abc") is not None
    assert object_problem("x" * 1025) is not None
    assert object_problem("line\nbreak") is not None
    assert object_problem(".well-known/acme-challenge/x") is not None
    assert object_problem("ok/name.txt") is None
