"""`tasks.report` under `wfgen run --local --on-host`, against a `wfgen serve`'s
Cloud Storage (STORAGE_EMULATOR_HOST): a split job's children each upload their
part with the Cloud Storage connector, the parent composes them into one JSON
Lines object (one line per task, in index order) and deletes the parts; a job
that fits one execution writes the report itself."""

from __future__ import annotations

import json

import pytest
from google.cloud import storage

from tests.cloud.serve_cli import Serve
from tests.local.test_run_local import result_of, run_local

pytestmark = pytest.mark.xdist_group("task_report_local")
BUCKET = "wfgen-task-report"
# tasks 3 and 31 fail, each with its own exit code
FAIL_SOME = ('case "$WFGEN_TASK_INDEX" in 3) exit 5;; 31) exit 9;; esac; exit 0')


@pytest.fixture(scope="module")
def bucket(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("task-report-serve")).start()
    try:
        with pytest.MonkeyPatch.context() as env:  # set for the module, restored after
            env.setenv("STORAGE_EMULATOR_HOST", f"http://{server.host}")
            yield storage.Client(project="local-project").create_bucket(BUCKET)
    finally:
        assert server.stop() == 0


def _job(tmp_path, count: int, report: str, **tasks):
    spec = {"name": "reported", "container": {"image": "alpine:3.20", "script": FAIL_SOME},
            "timeout": "5m", "heartbeat": "1s", "retries": 0,
            "tasks": {"count": count, "report": report, **tasks}}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def _lines(bucket, name: str) -> list[dict]:
    text = bucket.blob(name).download_as_bytes().decode()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _check_report(lines: list[dict], count: int) -> None:
    assert [line["index"] for line in lines] == list(range(count))  # one a task, in order
    failed = {line["index"]: line["exit_code"] for line in lines if line["status"] != "succeeded"}
    assert failed == {3: 5, 31: 9}
    assert all(line["attempts"] == 1 and line["instance"].startswith("reported-")
               for line in lines)


def test_a_split_job_writes_one_line_per_task_and_leaves_no_part(bucket, tmp_path):
    job = _job(tmp_path, 45, f"gs://{BUCKET}/runs/report.jsonl", split=True, parallelism=30)
    run = run_local(tmp_path, job, timeout=600)
    assert run.returncode == 5, run.stderr[-3000:]  # task 3's exit code
    summary = result_of(run)
    assert summary["counts"] == {"succeeded": 43, "failed": 2}, summary
    assert len(summary["shards"]) >= 2  # more than one part was composed
    assert summary["report"] == f"gs://{BUCKET}/runs/report.jsonl"
    assert summary["report_error"] is None
    _check_report(_lines(bucket, "runs/report.jsonl"), 45)
    left = [b.name for b in bucket.list_blobs(prefix="runs/")]
    assert left == ["runs/report.jsonl"], run.stderr[-3000:]


def test_a_job_in_one_execution_writes_its_report_itself(bucket, tmp_path):
    job = _job(tmp_path, 40, f"gs://{BUCKET}/one/report.jsonl", parallelism=20)
    run = run_local(tmp_path, job, timeout=600)
    assert run.returncode == 5, run.stderr[-3000:]
    assert result_of(run)["failed"] == 2
    _check_report(_lines(bucket, "one/report.jsonl"), 40)
