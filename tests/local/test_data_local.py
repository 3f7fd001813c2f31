"""A job's inputs and outputs on the local runtime (`wfgen run --local` with
STORAGE_EMULATOR_HOST pointing at a `wfgen serve`): a preempted attempt uploads
its outputs (the checkpoint it saved in its stop grace) before the retry starts;
without a Cloud Storage a job with data is refused before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from google.cloud import storage

from tests.cloud.serve_cli import Serve
from tests.local.test_run_local import _billed, job_file, result_of, run_local

pytestmark = pytest.mark.xdist_group("data_local")
BUCKET = "wfgen-local-data"

PREEMPTIBLE = r"""
mkdir -p "$CK"
if [ "$WFGEN_ATTEMPT" = 2 ]; then cat "$CK"/* 2>/dev/null; echo second > "$CK/attempt2"; exit 0; fi
trap 'echo saved-in-grace > "$CK/attempt1"; exit 0' TERM
echo "working attempt=$WFGEN_ATTEMPT"
while :; do sleep 0.1; done
"""


@pytest.fixture(scope="module")
def bucket(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("data-local-serve")).start()
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://{server.host}"
    try:
        made = storage.Client(project="local-project").create_bucket(BUCKET)
        made.blob("in/data.txt").upload_from_string(b"local-input\n")
        yield made
    finally:
        if old is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = old
        assert server.stop() == 0


def test_a_preempted_attempt_uploads_before_the_retry(bucket, tmp_path):
    job = job_file(tmp_path, {"script": PREEMPTIBLE}, retries=1,
                   outputs={"CK": f"gs://{BUCKET}/ck/"})
    run = run_local(tmp_path, job, "--fault", "preempt@3s")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert (result["status"], result["attempts"]) == ("succeeded", 2)
    assert bucket.blob("ck/attempt1").download_as_bytes() == b"saved-in-grace\n"
    assert bucket.blob("ck/attempt2").download_as_bytes() == b"second\n"
    # the first attempt's upload is done before the second attempt's container starts
    assert run.stderr.count("docker run (restarts") == 2
    assert run.stderr.index("outputs uploaded") < run.stderr.rindex("docker run (restarts")


def test_an_input_arrives_on_the_local_runtime(bucket, tmp_path):
    job = job_file(tmp_path, {"script": 'cat "$DATA"'},
                   inputs={"DATA": f"gs://{BUCKET}/in/data.txt"}, heartbeat="1m")
    run = run_local(tmp_path, job, "--stats")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["output_tail"] == "local-input\n"
    assert _billed(run.stderr) == 11  # data moves on the VM: no step of the workflow
    assert result["data"]["in"] == {**result["data"]["in"], "objects": 1, "bytes": 12}


def test_without_a_storage_a_job_with_data_is_refused(tmp_path):
    job = job_file(tmp_path, {"script": "true"}, outputs={"OUT": "gs://some-bucket/x/"})
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    done = subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", "--on-host",
                           str(job)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert "STORAGE_EMULATOR_HOST" in done.stderr and "nothing was started" in done.stderr
    assert "Traceback" not in done.stderr and not done.stdout.strip()
