"""tasks.report: the spec's check (one gs:// object, named by file, line and
field), what it adds to the generated workflows (nothing without it), and its
cost in the budget and in validate's words. The runs are in
tests/local/test_task_report_local.py and tests/cloud/test_task_report_serve.py."""

from __future__ import annotations

import pytest

from wfgen.engine import load_workflow
from wfgen.engine.errors import WorkflowError
from wfgen.errors import SpecError
from wfgen.job import budget, shards
from wfgen.job.render import render_workflow
from wfgen.job.render_split import render_split
from wfgen.job.spec import load_spec_text

BASE = ("name: many\ncontainer: {image: alpine, script: 'true'}\ntimeout: 1h\nheartbeat: 1m\n"
        "retries: 1\n")


def _spec(tasks: str):
    return load_spec_text(BASE + f"tasks: {tasks}\n", "job.yaml")


@pytest.mark.parametrize("uri, words", [
    ("gs://my-bucket/runs/", "is a folder; name one object"),
    ("gs://my-bucket/runs/*.jsonl", "not a wildcard"),
    ("gs://My_Bucket/r.jsonl", "bucket 'My_Bucket'"),
    ("gs://my-bucket", "names only a bucket"),
    ("s3://my-bucket/r.jsonl", "must start with gs://"),
    ("gs://my-bucket/a/../r.jsonl", "'.' or '..'"),
])
def test_a_report_that_is_not_one_object_is_refused_naming_the_field(uri, words):
    with pytest.raises(SpecError) as info:
        _spec(f"{{count: 10, report: '{uri}'}}")
    err = info.value
    assert err.location.field == "tasks.report" and err.location.line == 6, err
    assert words in str(err)


def test_validate_refuses_a_folder_with_file_line_and_field(tmp_path, cli):
    path = tmp_path / "job.yaml"
    path.write_text(BASE + "tasks:\n  count: 45\n  report: gs://my-bucket/runs/\n")
    run = cli("validate", str(path))
    assert run.returncode != 0 and "Traceback" not in run.stderr + run.stdout
    assert f"{path}:8:11: tasks.report: 'gs://my-bucket/runs/' is a folder" in (
        run.stdout + run.stderr)


def test_without_a_report_nothing_changes_and_with_one_each_workflow_writes_its_part():
    plain, reported = (_spec("{count: 45, split: true" + extra + "}")
                       for extra in ("", ", report: gs://my-bucket/r/report.jsonl"))
    assert "report" not in plain.data["tasks"]
    before, after = render_split(plain), render_split(reported)
    assert "googleapis.storage.v1.objects" not in before.parent + before.shard
    assert "report_compose" in after.parent and "report_missing" in after.parent
    assert "googleapis.storage.v1.objects.insert" in after.shard
    assert "report_compose" not in after.shard
    for name, text in (("p", after.parent), ("p-shard", after.shard)):
        load_workflow(text, name)  # Google's deploy checks
    one = render_workflow(_spec("{count: 10, report: gs://my-bucket/one.jsonl}"))
    assert "googleapis.storage.v1.objects.insert" in one and "report_compose" not in one
    assert "googleapis.storage.v1.objects" not in render_workflow(_spec("{count: 10}"))


def test_the_report_costs_its_steps_and_bytes_in_the_budget():
    plain = _spec("{count: 1000, parallelism: 100}")
    reported = _spec("{count: 1000, parallelism: 100, report: gs://b-1/r.jsonl}")
    a, b = shards.split_plan(plain), shards.split_plan(reported)
    assert b.child_steps == a.child_steps + budget.STEPS_REPORT_WRITE
    assert b.shards == a.shards
    assert b.parent_steps == a.parent_steps + (
        shards.STEPS_REPORT_FIXED + b.shards * shards.STEPS_REPORT_PER_SHARD
        + 1000 * shards.STEPS_REPORT_PER_MISSING_TASK)
    assert b.child_memory - a.child_memory == budget.report_bytes(b.shard_size)
    one_a, one_b = (budget.plan(_spec("{count: 100" + extra + "}"))
                    for extra in ("", ", report: gs://b-1/r.jsonl"))
    assert one_b.steps == one_a.steps + budget.STEPS_REPORT_WRITE
    assert one_b.memory == one_a.memory + budget.report_bytes(100)
    assert "report: gs://b-1/r.jsonl" in shards.describe(reported)[-1]


def test_a_report_past_one_string_splits_the_job_and_keeps_each_part_under_it():
    spec = _spec(f"{{count: {shards.REPORT_MOST_LINES + 1}, parallelism: 1, "
                 "report: gs://b-1/r.jsonl}")
    assert spec.data["tasks"]["split"] is True
    assert "256 KB of one string" in shards.one_execution_problem(spec)
    assert shards.split_plan(spec).shard_size <= shards.REPORT_MOST_LINES


def test_serves_check_takes_a_media_body_as_the_objects_content():
    from wfgen.server.apicheck import check_connector

    insert = {"bucket": "b-1", "name": "r%2Fp.jsonl", "body": "{\"index\":0}\n"}
    assert check_connector("googleapis.storage.v1.objects.insert",
                           {**insert, "uploadType": "media"}) is None
    # without uploadType media the body is the Object resource, as Google reads it
    assert "Expected an object" in check_connector("googleapis.storage.v1.objects.insert",
                                                   {**insert, "uploadType": "multipart"})
    compose = {"destinationBucket": "b-1", "destinationObject": "r.jsonl"}
    assert check_connector("googleapis.storage.v1.objects.compose", {
        **compose, "body": {"sourceObjects": [{"name": "p/0.jsonl"}],
                            "destination": {"contentType": "application/jsonl"}}}) is None
    assert "Unknown name" in check_connector("googleapis.storage.v1.objects.compose", {
        **compose, "body": {"sources": []}})


def test_items_given_at_run_time_are_held_to_the_reports_bytes_too():
    from wfgen.job.tasks import item_rules, items_problem

    plain = item_rules(_spec("{count: 10, parallelism: 2}"))
    reported = item_rules(_spec("{count: 10, parallelism: 2, report: gs://b-1/r.jsonl}"))
    assert reported.most <= budget.REPORT_MOST_LINES and not plain.report
    items = [str(i) for i in range(900)]
    assert items_problem(items, plain) is None
    assert "KB of workflow variables" in items_problem(items, reported)


def test_without_credentials_the_upload_fails_as_a_connector_error(monkeypatch, tmp_path):
    from wfgen.backends.storage_connector import ObjectsInsert

    for name in ("STORAGE_EMULATOR_HOST", "WORKFLOWS_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))
    with pytest.raises(WorkflowError) as info:  # the HttpError a workflow can catch
        ObjectsInsert()(None, bucket="b-1", name="r.jsonl", body="x\n", uploadType="media")
    error = info.value.value
    assert error["tags"] == ["HttpError"] and error["code"] == 401
    assert "STORAGE_EMULATOR_HOST" in error["message"]
