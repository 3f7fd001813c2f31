"""`tasks.report` under `wfgen run --local --on-host`, against a `wfgen serve`'s
Cloud Storage (STORAGE_EMULATOR_HOST): a split job's children each upload their
part with the Cloud Storage connector, the parent composes them into one JSON
Lines object (one line per task, in index order) and deletes the parts; a job
that fits one execution writes the report itself."""

from __future__ import annotations

import json

import pytest

from tests.cloud.serve_cli import serve_bucket
from tests.local.test_run_local import result_of, run_local

pytestmark = pytest.mark.xdist_group("task_report_local")
BUCKET = "wfgen-task-report"
# tasks 3 and 31 fail, each with its own exit code
FAIL_SOME = ('case "$WFGEN_TASK_INDEX" in 3) exit 5;; 31) exit 9;; esac; exit 0')


@pytest.fixture(scope="module")
def bucket(tmp_path_factory):
    with serve_bucket(tmp_path_factory.mktemp("task-report-serve"), BUCKET) as made:
        yield made


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


def test_a_nested_job_writes_its_report_through_its_groups(bucket, tmp_path):
    # a heartbeat of 1s over 4h: one task a child (each beat also watches the
    # parent), 22 children at once, so the parent awaits 2 group executions that
    # await the shards
    job = _job(tmp_path, 40, f"gs://{BUCKET}/nested/report.jsonl", parallelism=22)
    spec = json.loads(job.read_text())
    job.write_text(json.dumps({**spec, "timeout": "4h"}))
    run = run_local(tmp_path, job, timeout=600)
    assert run.returncode == 5, run.stderr[-3000:]
    summary = result_of(run)
    assert len(summary["shards"]) == 2  # the groups
    _check_report(_lines(bucket, "nested/report.jsonl"), 40)
    assert [b.name for b in bucket.list_blobs(prefix="nested/")] == ["nested/report.jsonl"]


def test_a_job_in_one_execution_writes_its_report_itself(bucket, tmp_path):
    job = _job(tmp_path, 40, f"gs://{BUCKET}/one/report.jsonl", parallelism=20)
    run = run_local(tmp_path, job, timeout=600)
    assert run.returncode == 5, run.stderr[-3000:]
    assert result_of(run)["failed"] == 2
    _check_report(_lines(bucket, "one/report.jsonl"), 40)


def _report_workflow(tmp_path, main: str, *, compose: bool, total: int, shard_size: int):
    """`main` followed by the report's subworkflows as a parent of `total` tasks
    in shards of `shard_size` carries them (templates/report.yaml.j2)."""
    from wfgen.job.render import _environment

    module = _environment().get_template("report.yaml.j2").make_module({
        "report": {"bucket": BUCKET, "object": "sub/report.jsonl",
                   "uri": f"gs://{BUCKET}/sub/report.jsonl"},
        "total": total, "shard_size": shard_size})
    path = tmp_path / "report.yaml"
    path.write_text(main + str(module.subworkflows(compose)))
    return path


def _run_workflow(path):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", "--stats",
                           str(path)], capture_output=True, text=True, timeout=300)


def test_seventy_parts_compose_in_rounds_in_order_then_go(bucket, tmp_path):
    parts = 70  # over 32: 3 intermediate objects, then the report
    for k in range(parts):
        bucket.blob(f"sub/report.jsonl.parts/run-a/{k}.jsonl").upload_from_string(
            "".join(json.dumps({"index": 2 * k + j}) + "\n" for j in range(2)))
    main = ("main:\n  steps:\n    - compose:\n        call: report_compose\n"
            f"        args: {{parent_id: run-a, parts: {parts}}}\n        result: error\n"
            "    - done:\n        return: ${error}\n")
    run = _run_workflow(_report_workflow(tmp_path, main, compose=True, total=140,
                                         shard_size=2))
    assert run.returncode == 0 and json.loads(run.stdout) is None, run.stderr
    assert [line["index"] for line in _lines(bucket, "sub/report.jsonl")] == list(range(140))
    assert [b.name for b in bucket.list_blobs(prefix="sub/")] == ["sub/report.jsonl"]
    billed = int(run.stderr.split("billed steps: ")[1].split(" internal")[0])
    from wfgen.job.shards import STEPS_REPORT_FIXED, STEPS_REPORT_PER_SHARD

    assert billed <= STEPS_REPORT_FIXED + parts * STEPS_REPORT_PER_SHARD  # the budget holds


def test_a_part_no_child_wrote_has_an_error_line_per_task(bucket, tmp_path):
    main = ('main:\n  steps:\n    - missing:\n        call: report_missing\n'
            '        args: {parent_id: run-b, first_shard: 1, shards: 2, '
            'message: "cancelled \\"x\\" \\\\ y"}\n')
    run = _run_workflow(_report_workflow(tmp_path, main, compose=False, total=25,
                                         shard_size=10))
    assert run.returncode == 0, run.stderr
    names = sorted(b.name for b in bucket.list_blobs(prefix="sub/report.jsonl.parts/run-b/"))
    assert names == [f"sub/report.jsonl.parts/run-b/{k}.jsonl" for k in (1, 2)]
    second, third = (_lines(bucket, name) for name in names)
    assert [line["index"] for line in second + third] == list(range(10, 25))  # shard 2: 5
    assert all(line == {"index": line["index"], "status": "error", "exit_code": None,
                        "attempts": None, "instance": None, "message": 'cancelled "x" \\ y'}
               for line in second + third)
