"""Where `run --local` VMs read secrets: serve's Secret Manager when
WORKFLOWS_EMULATOR_HOST is set, else a private one holding --secret
NAME=@FILE; bad options are usage errors naming the option."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from wfgen.errors import UsageError
from wfgen.server.local_secrets import LocalSecrets, parse_secret_option


def access(endpoint: str, ref: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{endpoint}/v1/{ref}:access", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_private_secret_manager_holds_the_files(tmp_path):
    key = tmp_path / "wandb.key"
    key.write_bytes(b"s3cret\n")
    secrets = LocalSecrets("proj", [f"hf-token=@{key}"], environ={})
    try:
        assert not secrets.from_serve and secrets.given == {"hf-token"}
        endpoint = secrets.project_metadata["wfgen-secretmanager-endpoint"]
        assert endpoint.startswith("http://127.0.0.1:")
        status, answer = access(endpoint, "projects/proj/secrets/hf-token/versions/latest")
        assert status == 200 and base64.b64decode(answer["payload"]["data"]) == b"s3cret\n"
        assert access(endpoint, "projects/proj/secrets/other/versions/latest")[0] == 404
    finally:
        secrets.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{endpoint}/v1/x", timeout=2)


def test_serve_when_the_emulator_is_set():
    secrets = LocalSecrets("proj", [], environ={"WORKFLOWS_EMULATOR_HOST": "127.0.0.1:8787"})
    assert secrets.from_serve
    assert secrets.project_metadata == {"wfgen-secretmanager-endpoint": "http://127.0.0.1:8787"}
    with pytest.raises(UsageError, match="gcloud secrets create NAME --data-file=FILE"):
        LocalSecrets("p", ["a=@/x"], environ={"WORKFLOWS_EMULATOR_HOST": "127.0.0.1:8787"})
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        LocalSecrets("p", [], environ={"WORKFLOWS_EMULATOR_HOST": "http://x/"})


@pytest.mark.parametrize(("option", "message"), [
    ("hf", "--secret hf: expected NAME=@FILE"),
    ("hf=value", "--secret hf: expected NAME=@FILE (the value is read from FILE"),
    ("hf=@", "expected NAME=@FILE"),
    ("bad/name=@f", "a secret name is 1-255 letters"),
])
def test_bad_options(option, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        parse_secret_option(option)


def test_bad_files(tmp_path):
    (tmp_path / "nul").write_bytes(b"a\0b")
    (tmp_path / "big").write_bytes(b"x" * 65537)
    (tmp_path / "ok").write_bytes(b"x")
    cases = [([f"a=@{tmp_path}/missing"], "cannot read it: No such file"),
             ([f"a=@{tmp_path}/nul"], "holds a NUL byte"),
             ([f"a=@{tmp_path}/big"], "65537 bytes; Secret Manager takes at most 65536"),
             ([f"a=@{tmp_path}/ok", f"a=@{tmp_path}/ok"], "--secret a is given twice")]
    for options, message in cases:
        with pytest.raises(UsageError, match=message):
            LocalSecrets("p", options, environ={})
