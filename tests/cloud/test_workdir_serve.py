"""Code without a rebuild, end to end: a job with `workdir` runs through `wfgen run`
against one `wfgen serve` (and `run --local` against its Cloud Storage). The tree is
uploaded once to staging, named by its content; the VM downloads it with the
transfer step and runs the code in it. Code edited after a run runs next time
with the same image; an unchanged tree uploads nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.cloud import storage

from tests.cloud.serve_cli import Serve, clean_env

pytestmark = pytest.mark.xdist_group("workdir_serve")
BUCKET = "wfgen-staging-test"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("workdir-serve")).start()
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def bucket(serve):
    with pytest.MonkeyPatch.context() as env:  # set for the module, restored after
        env.setenv("STORAGE_EMULATOR_HOST", f"http://{serve.host}")
        yield storage.Client(project="local-project").create_bucket(BUCKET)


def project(tmp: Path, prefix: str, **extra: Any) -> Path:
    """A job spec beside its src/ folder (a script, a module, an ignored log)."""
    (tmp / "src" / "lib").mkdir(parents=True)
    (tmp / "src" / "train.sh").write_text('. lib/common.sh\necho "version $VERSION"\n')
    (tmp / "src" / "lib" / "common.sh").write_text("VERSION=1\n")
    (tmp / "src" / ".gitignore").write_text("*.log\n")
    (tmp / "src" / "debug.log").write_text("not packed\n")
    spec = {"name": "code", "timeout": "5m", "heartbeat": "2s", "retries": 0,
            "container": {"image": "alpine:3.20", "command": ["sh", "train.sh"]},
            "workdir": "./src", "staging": f"gs://{BUCKET}/{prefix}", **extra}
    path = tmp / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def staged(bucket: Any, prefix: str) -> dict[str, int]:
    return {b.name: b.generation for b in bucket.client.list_blobs(bucket, prefix=prefix + "/")}


def test_edited_code_runs_without_a_rebuild_and_an_unchanged_tree_uploads_nothing(
        serve, bucket, tmp_path):
    spec = project(tmp_path, "serve")
    first = serve.wfgen("run", str(spec))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["output_tail"] == "version 1\n"
    assert "staged: 4 files" not in first.stderr  # debug.log is ignored: 3 files
    assert "staged: 3 files" in first.stderr, first.stderr
    after_first = staged(bucket, "serve")
    assert len(after_first) == 1
    (name,) = after_first
    assert name.startswith("serve/workdir-") and name.endswith(".tar.gz")

    (tmp_path / "src" / "debug.log").write_text("changed, still ignored\n")
    again = serve.wfgen("run", str(spec))
    assert again.returncode == 0, again.stderr
    assert "nothing uploaded" in again.stderr
    assert staged(bucket, "serve") == after_first  # no new object, no new generation

    (tmp_path / "src" / "lib" / "common.sh").write_text("VERSION=2\n")  # edit the code
    edited = serve.wfgen("run", str(spec))
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout)["output_tail"] == "version 2\n"  # same image
    assert len(staged(bucket, "serve")) == 2

    # the execution argument may point at another uploaded tree: the first one
    back = serve.wfgen("run", str(spec), "--data", json.dumps({"workdir": f"gs://{BUCKET}/{name}"}))
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["output_tail"] == "version 1\n"
    assert not serve.vms()


def test_a_missing_tree_fails_naming_it_and_a_folder_uri_is_refused(serve, bucket, tmp_path):
    spec = project(tmp_path, "missing")
    gone = f"gs://{BUCKET}/missing/workdir-{'0' * 64}.tar.gz"
    done = serve.wfgen("run", str(spec), "--data", json.dumps({"workdir": gone}))
    assert done.returncode != 0
    result = json.loads(done.stdout)
    assert result["status"] == "error" and gone in result["message"]
    assert "404" in result["message"]
    folder = serve.wfgen("run", str(spec), "--data",
                         json.dumps({"workdir": f"gs://{BUCKET}/missing/"}))
    assert folder.returncode == 2 and "workdir" in folder.stderr
    # the deployed workflow checks the argument itself (a caller other than wfgen)
    workflow = "/v1/projects/local-project/locations/us-central1/workflows/code"
    started = serve.rest("POST", f"{workflow}/executions", {"argument": json.dumps(
        {"workdir": f"gs://{BUCKET}/a/../b.tar.gz"})})
    ended = serve.wait_for(lambda: (e := serve.rest("GET", f"/v1/{started['name']}"))["state"]
                           not in ("ACTIVE", "QUEUED") and e, "the execution's end")
    assert ended["state"] == "FAILED" and "workdir" in ended["error"]["payload"]
    assert not serve.vms()


def test_a_local_run_stages_to_serves_storage_with_staging_from_the_command_line(
        serve, bucket, tmp_path):
    spec = project(tmp_path, "unused")
    env = clean_env(STORAGE_EMULATOR_HOST=f"http://{serve.host}",
                    WFGEN_BACKOFF_MS="100", WFGEN_BACKOFF_MAX_MS="400")
    args = [sys.executable, "-m", "wfgen", "run", "--local", "--on-host", str(spec),
            "--staging", f"gs://{BUCKET}/cli"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output_tail"] == "version 1\n"
    assert len(staged(bucket, "cli")) == 1 and not staged(bucket, "unused")
    twice = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env)
    assert twice.returncode == 0 and "nothing uploaded" in twice.stderr, twice.stderr


def test_a_local_run_without_a_storage_says_so_and_starts_nothing(tmp_path):
    spec = project(tmp_path, "none")
    done = subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", "--on-host",
                           str(spec)], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in clean_env().items()
                               if k != "STORAGE_EMULATOR_HOST"})
    assert done.returncode == 2
    assert "need a Cloud Storage" in done.stderr and "Traceback" not in done.stderr
