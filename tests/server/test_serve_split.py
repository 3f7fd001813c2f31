"""A split job through `wfgen serve` with the real gcloud: both workflows
deployed, the parent run by `gcloud workflows run`, its children started by the
Workflow Executions connector as serve's own executions (listed by `gcloud
workflows executions list`), a failed task's shard raising the error that
carries its report, and every VM deleted."""

from __future__ import annotations

import json

import pytest

from tests.server.serve_process import Serve
from wfgen.job.render_split import render_split
from wfgen.job.spec import load_spec_text

pytestmark = pytest.mark.xdist_group("serve_split")

JOB = {"name": "many", "container": {"image": "alpine:3.20",
                                     "script": '[ "$WFGEN_TASK_INDEX" != 1 ] || exit 4'},
       "timeout": "5m", "heartbeat": "1s", "retries": 0,
       "tasks": {"count": 3, "parallelism": 3, "split": True}}


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("serve-split"), data_dir=":memory:").start()
    yield server
    assert server.stop() == 0, server.log()


def test_a_split_job_runs_through_serve_with_gcloud(serve, tmp_path):
    split = render_split(load_spec_text(json.dumps(JOB), "job.yaml"))
    for workflow_id, source in (("many-shard", split.shard), ("many", split.parent)):
        path = tmp_path / f"{workflow_id}.yaml"
        path.write_text(source)
        deployed = serve.gcloud("workflows", "deploy", workflow_id, f"--source={path}")
        assert deployed.returncode == 0, deployed.stderr
    run = serve.gcloud("workflows", "run", "many", "--format=json")
    execution = json.loads(run.stdout)
    assert execution["state"] == "FAILED", run.stderr
    summary = json.loads(execution["error"]["payload"])["result"]
    assert summary["counts"] == {"succeeded": 2, "failed": 1}
    assert summary["first_failed"]["index"] == 1 and summary["first_failed"]["exit_code"] == 4
    listed = serve.gcloud("workflows", "executions", "list", "many-shard", "--format=json")
    children = json.loads(listed.stdout)
    assert [c["name"] for c in children] == summary["shards"]
    assert [c["state"] for c in children] == ["FAILED"]
    vms = serve.gcloud("compute", "instances", "list", "--format=json")
    assert vms.returncode == 0 and json.loads(vms.stdout) == [], vms.stdout
