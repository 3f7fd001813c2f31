"""`wfgen run --local` with container.secret_env: values from --secret
NAME=@FILE (a private Secret Manager for the run) or, with
WORKFLOWS_EMULATOR_HOST, from `wfgen serve`'s; overrides through --data; the
value reaches the container and shows nowhere in wfgen's output; a job
without secrets still bills 11 steps, and one with secrets bills no more."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.local.test_run_local import FAST, vm_processes
from tests.server.serve_process import Serve

pytestmark = pytest.mark.xdist_group("run_local_secrets")

VALUE = "sk-local-Sécret 'q' $(id)\n"
SHOW = 'printf %s "$API_KEY" | sha256sum; echo "plain=$PLAIN"'


def job(tmp: Path, secret_env: dict[str, str] | None, **container: object) -> Path:
    spec = {"name": "sec", "timeout": "5m", "heartbeat": "1m", "retries": 0,
            "container": {"image": "alpine:3.20", "script": SHOW, "env": {"PLAIN": "p"},
                          **container}}
    if secret_env is not None:
        spec["container"]["secret_env"] = secret_env
    path = tmp / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def run(tmp: Path, spec: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOWS_EMULATOR")}
    done = subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", "--on-host",
                           str(spec), *args], capture_output=True, text=True, timeout=120,
                          env={**base, **FAST, "TMPDIR": str(scratch), **env})
    assert "Traceback" not in done.stderr, done.stderr
    assert vm_processes(scratch) == [], done.stderr
    return done


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def billed(stderr: str) -> int:
    return int(re.search(r"= (\d+);", stderr).group(1))


def test_secret_from_a_file_reaches_the_container_only(tmp_path):
    key = tmp_path / "api.key"
    key.write_text(VALUE)
    done = run(tmp_path, job(tmp_path, {"API_KEY": "api-key"}), "--secret",
               f"api-key=@{key}", "--stats")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert digest(VALUE) in result["output_tail"] and "plain=p" in result["output_tail"]
    assert "read 1 secret(s) from Secret Manager" in done.stderr
    assert "sk-local" not in done.stdout + done.stderr
    assert billed(done.stderr) == 11  # secrets cost no step


def test_a_job_without_secrets_still_bills_11_steps(tmp_path):
    done = run(tmp_path, job(tmp_path, None), "--stats")
    assert done.returncode == 0, done.stderr
    assert billed(done.stderr) == 11 and "secret" not in done.stderr


def test_data_overrides_secret_env_with_another_reference(tmp_path):
    (tmp_path / "a").write_text("first")
    (tmp_path / "b").write_text("second")
    spec = job(tmp_path, {"API_KEY": "key-a"})
    done = run(tmp_path, spec, "--secret", f"key-a=@{tmp_path}/a", "--secret",
               f"key-b=@{tmp_path}/b", "--data", '{"secret_env": {"API_KEY": "key-b"}}')
    assert done.returncode == 0, done.stderr
    assert digest("second") in json.loads(done.stdout)["output_tail"]


@pytest.mark.parametrize(("secret_env", "args", "message"), [
    ({"API_KEY": "api-key"}, [], "job.yaml:1: container.secret_env.API_KEY: secret api-key "
                                 "is not given: add --secret api-key=@FILE"),
    ({"API_KEY": "k"}, ["--secret", "k=@/nonexistent/file"],
     "--secret k=@/nonexistent/file: cannot read it"),
    ({"API_KEY": "k"}, ["--secret", "k=plain-value"], "--secret k: expected NAME=@FILE"),
    (None, ["--secret", "k=@/x"], "--secret: the job spec has no container.secret_env"),
    (None, ["--data", '{"secret_env": {"A": "k"}}'],
     "unknown key 'secret_env' (the job spec has no container.secret_env)"),
    ({"API_KEY": "k"}, ["--data", '{"secret_env": {"A": "the value"}}'],
     "secret_env: 'the value' is not a secret reference"),
    ({"API_KEY": "projects/other/secrets/k/versions/2"}, [],
     "cannot be read locally"),
])
def test_usage_errors_before_any_vm(tmp_path, secret_env, args, message):
    done = run(tmp_path, job(tmp_path, secret_env), *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "created" not in done.stderr


def test_a_missing_secret_in_serve_fails_before_the_container(tmp_path):
    serve = Serve(tmp_path / "serve", data_dir=":memory:").start()
    try:
        marker = tmp_path / "ran"
        spec = job(tmp_path, {"API_KEY": "absent"}, script=f"touch {marker}")
        done = run(tmp_path, spec, WORKFLOWS_EMULATOR_HOST=f"127.0.0.1:{serve.port}")
        assert done.returncode == 125, done.stderr
        result = json.loads(done.stdout)
        assert result["status"] == "error" and result["message"].startswith(
            "secret API_KEY (projects/local-project/secrets/absent/versions/latest) could "
            "not be read: HTTP 404 NOT_FOUND")
        assert not marker.exists()
        # and once it exists there, the same run reads it from serve
        made = serve.call("POST", "/v1/projects/local-project/secrets?secretId=absent",
                          {"replication": {"automatic": {}}})
        assert made[0] == 200, made
        import base64

        added = serve.call("POST", "/v1/projects/local-project/secrets/absent:addVersion",
                           {"payload": {"data": base64.b64encode(VALUE.encode()).decode()}})
        assert added[0] == 200, added
        again = run(tmp_path, job(tmp_path, {"API_KEY": "absent"}),
                    WORKFLOWS_EMULATOR_HOST=f"127.0.0.1:{serve.port}")
        assert again.returncode == 0, again.stderr
        assert digest(VALUE) in json.loads(again.stdout)["output_tail"]
    finally:
        assert serve.stop() == 0
    assert "sk-local" not in serve.log()


def test_every_task_of_a_fan_out_reads_the_secret(tmp_path):
    key = tmp_path / "api.key"
    key.write_text(VALUE)
    spec = job(tmp_path, {"API_KEY": "api-key"})
    data = json.loads(spec.read_text())
    data["tasks"] = {"count": 2}
    spec.write_text(json.dumps(data))
    done = run(tmp_path, spec, "--secret", f"api-key=@{key}")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["succeeded"] == 2, result
    assert done.stderr.count(digest(VALUE)) == 2 and "sk-local" not in done.stderr


def test_secret_is_for_local_runs_only(tmp_path):
    done = subprocess.run([sys.executable, "-m", "wfgen", "run", str(job(tmp_path, None)),
                           "--secret", "k=@/x"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--secret applies to --local runs" in done.stderr
