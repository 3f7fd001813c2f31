"""`tasks.report` through `wfgen serve` with the cloud commands: `wfgen run`
deploys the parent and shard workflows, the children upload their parts to
serve's Cloud Storage with the connector (checked against Google's Discovery
document like every connector call), the parent composes them, and the real
`gcloud storage cat` reads one line per task, in index order."""

from __future__ import annotations

import json

import pytest
from google.cloud import storage

from tests.cloud.serve_cli import GCLOUD, Serve, job
from tests.cloud.test_data_serve import gcloud_storage

pytestmark = pytest.mark.xdist_group("task_report_serve")
BUCKET = "wfgen-report-serve"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("report-serve")).start()
    yield server
    assert server.stop() == 0, "\n".join(server.lines[-40:])
    assert not [line for line in server.lines if "Google's description" in line
                or "internal error" in line]


@pytest.fixture(scope="module")
def bucket(serve):
    with pytest.MonkeyPatch.context() as env:  # set for the module, restored after
        env.setenv("STORAGE_EMULATOR_HOST", f"http://{serve.host}")
        yield storage.Client(project="local-project").create_bucket(BUCKET)


@pytest.mark.skipif(not GCLOUD, reason="needs the gcloud CLI")
def test_a_split_job_through_serve_writes_its_report(serve, bucket, tmp_path):
    spec = job(tmp_path / "rep.yaml", "rep",
               'case "$WFGEN_TASK_INDEX" in 7) exit 3;; 40) exit 6;; esac',
               heartbeat="1s", timeout="5m",
               tasks={"count": 45, "parallelism": 30, "split": True,
                      "report": f"gs://{BUCKET}/runs/rep.jsonl"})
    done = serve.wfgen("run", spec, timeout=600)
    assert done.returncode == 3, done.stderr[-3000:]  # task 7's exit code
    summary = json.loads(done.stdout)
    assert summary["counts"] == {"succeeded": 43, "failed": 2}
    assert summary["report"] == f"gs://{BUCKET}/runs/rep.jsonl" and not summary["report_error"]
    cat = gcloud_storage(serve, "cat", f"gs://{BUCKET}/runs/rep.jsonl")
    assert cat.returncode == 0, cat.stderr
    lines = [json.loads(line) for line in cat.stdout.splitlines()]
    assert [line["index"] for line in lines] == list(range(45))
    assert {line["index"]: line["exit_code"] for line in lines
            if line["status"] == "failed"} == {7: 3, 40: 6}
    assert [b.name for b in bucket.list_blobs(prefix="runs/")] == ["runs/rep.jsonl"]
    assert serve.vms() == []
