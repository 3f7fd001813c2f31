"""A fan-out too large for one execution, run by the cloud commands against one
real `wfgen serve`: `wfgen run` deploys the parent and shard workflows and
exits with the first failed task's code, `wfgen status --task N` finds the
child execution and the VM of task N, `wfgen logs --task N` prints that task's
output only, and no VM is left."""

from __future__ import annotations

import json
import re

import pytest

from tests.cloud.serve_cli import PROJECT, Serve, job

# the 1,000-task run has a group of its own, which tests/conftest.py sends to a
# worker first (each worker running tests of this module starts its own serve)
SMALL = pytest.mark.xdist_group("split_serve")
SHARDS = f"projects/{PROJECT}/locations/us-central1/workflows/wide-shard/executions/"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("split-serve")).start()
    yield server
    assert server.stop() == 0, "\n".join(server.lines[-40:])
    assert not [line for line in server.lines if "Google's description" in line
                or "internal error" in line]


@pytest.fixture(scope="module")
def finished(serve, tmp_path_factory):
    """The done-when job: 1,000 tasks at parallelism 100 (so split: 5 children
    x 20 tasks at once, 7 shards) whose tasks 7 and 900 fail, run to its end."""
    spec = job(tmp_path_factory.mktemp("wide") / "wide.yaml", "wide",
               'echo "output of task $WFGEN_TASK_INDEX"; '
               'case "$WFGEN_TASK_INDEX" in 7) exit 3;; 900) exit 5;; esac',
               heartbeat="1s", timeout="5m", tasks={"count": 1000, "parallelism": 100})
    done = serve.wfgen("run", spec, timeout=900)
    name = re.search(r"\((projects/\S+/workflows/wide/executions/\S+)\)", done.stderr)
    assert name, done.stderr
    return done, name.group(1)


def _run_deploys_both_and_exits_with_the_first_failed_tasks_code(serve, finished):
    done, _ = finished
    assert done.returncode == 3, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["counts"] == {"succeeded": 998, "failed": 2} and summary["tasks"] == 1000
    assert {f["index"]: f["exit_code"] for f in summary["first_failures"]} == {7: 3, 900: 5}
    assert len(summary["shards"]) == 7
    assert all(name.startswith(SHARDS) for name in summary["shards"])
    assert serve.vms() == []


def _status_task_names_its_child_execution_and_vm(serve, finished):
    _, parent = finished
    status = serve.wfgen("status", parent, "--task", "900")
    assert status.returncode == 5, status.stderr  # the task's own exit code
    rows = dict(line.split(None, 1) for line in status.stdout.splitlines() if " " in line)
    assert rows["execution"].startswith(SHARDS) and rows["state"] == "FAILED"
    assert re.fullmatch(r"wide-[0-9a-f]{12}-900-1", rows["instance"]), rows
    first, last = map(int, re.fullmatch(r"tasks (\d+) to (\d+)", rows["shard"]).groups())
    assert first <= 900 <= last
    ok = serve.wfgen("status", parent, "--task", "8")
    assert ok.returncode == 0 and "SUCCEEDED" in ok.stdout, ok.stderr
    assert ok.stdout != status.stdout
    bad = serve.wfgen("status", parent, "--task", "1000")
    assert bad.returncode == 2 and "tasks 0 to 999" in bad.stderr


def _logs_task_prints_that_tasks_output_only(serve, finished):
    _, parent = finished
    logs = serve.wfgen("logs", parent, "--task", "7")
    assert logs.returncode == 0, logs.stderr
    assert "output of task 7" in logs.stdout.splitlines()
    assert "output of task 8" not in logs.stdout and "output of task 17" not in logs.stdout
    assert "output of task 70" not in logs.stdout
    assert serve.wfgen("logs", parent, "--task", "7", "--follow").returncode == 2


@pytest.mark.xdist_group("split_serve_1000")
def test_a_thousand_tasks_run_then_status_and_logs_find_a_task(serve, finished):
    # one test, not three: xdist may tear a module fixture down between tests of a
    # group, and this fixture is a 1,000-task run
    _run_deploys_both_and_exits_with_the_first_failed_tasks_code(serve, finished)
    _status_task_names_its_child_execution_and_vm(serve, finished)
    _logs_task_prints_that_tasks_output_only(serve, finished)


@SMALL
def test_a_nested_split_deploys_three_workflows_and_finds_its_tasks(serve, tmp_path):
    """A heartbeat so short that a child runs one task at once: 21 VMs at once
    need 21 children, so the parent runs 2 group executions of nest-group."""
    spec = job(tmp_path / "nest.yaml", "nest", 'echo "nested task $WFGEN_TASK_INDEX"; '
               '[ "$WFGEN_TASK_INDEX" != 27 ] || exit 6',
               heartbeat="1s", timeout="4h", tasks={"count": 30, "parallelism": 21})
    done = serve.wfgen("run", spec, timeout=600)
    assert done.returncode == 6, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["counts"] == {"succeeded": 29, "failed": 1}
    assert "job report: status failed, 29 task(s) succeeded, 1 failed" in done.stderr
    # every task's output line, shown once while the children ran (their VMs carry
    # the child's tag, not the parent's)
    shown = done.stderr + done.stdout
    assert all(shown.count(f"nested task {i}\n") == 1 for i in range(30)), done.stderr[-3000:]
    assert all("/workflows/nest-group/executions/" in name for name in summary["shards"])
    parent = re.search(r"\((projects/\S+/workflows/nest/executions/\S+)\)", done.stderr).group(1)
    status = serve.wfgen("status", parent, "--task", "27")
    assert status.returncode == 6 and "/workflows/nest-shard/executions/" in status.stdout
    logs = serve.wfgen("logs", parent, "--task", "27")
    assert logs.stdout.splitlines().count("nested task 27") == 1, logs.stdout
    assert serve.vms() == []


@SMALL
def test_items_past_128_kb_are_staged_and_each_child_reads_its_own(serve, tmp_path):
    """`wfgen run` through serve: the shard items go to serve's Cloud Storage
    (one object per shard) and each child, run by serve, reads its own with the
    storage connector; a task fails unless its item is the one made for its index."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": f"http://{serve.host}"})
    bucket = client.create_bucket("wfgen-split-stage")
    items = [f"{i:05d}-" + "z" * 700 for i in range(200)]
    spec = job(tmp_path / "staged.yaml", "staged",
               'case "$WFGEN_TASK_ITEM" in "$(printf %05d "$WFGEN_TASK_INDEX")-"*) exit 0;; '
               '*) exit 7;; esac', heartbeat="1s", timeout="5m",
               staging="gs://wfgen-split-stage/stage",
               tasks={"items": items, "parallelism": 40})
    done = serve.wfgen("run", spec, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["counts"] == {"succeeded": 200, "failed": 0}
    staged = list(bucket.list_blobs(prefix="stage/items-"))
    assert len(staged) == len(summary["shards"]) >= 2
    assert serve.vms() == []


def test_gcloud_cancelling_the_parent_cancels_every_child_and_leaves_no_vm(serve, tmp_path):
    """`gcloud workflows executions cancel` of the parent, nothing of wfgen's:
    serve leaves the children running (as Google does), and each child, watching
    its parent, deletes its VMs, starts no queued task and cancels itself."""
    spec = job(tmp_path / "halt.yaml", "halt", "sleep 300", heartbeat="1s", timeout="10m",
               tasks={"count": 30, "parallelism": 22})
    deployed = serve.wfgen("deploy", spec)
    assert deployed.returncode == 0, deployed.stderr
    started = serve.gcloud("workflows", "execute", "halt", "--format=value(name)")
    assert started.returncode == 0, started.stderr
    parent_id = started.stdout.strip().rsplit("/", 1)[-1]
    serve.wait_for(lambda: len(serve.vms()) == 22, "22 VMs (2 children x 11 tasks)", 120)
    cancelled = serve.gcloud("workflows", "executions", "cancel", parent_id,
                             "--workflow=halt", "--quiet", "--format=json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["state"] == "CANCELLED"

    def children() -> list[dict]:
        listed = serve.gcloud("workflows", "executions", "list", "halt-shard", "--format=json")
        assert listed.returncode == 0, listed.stderr
        return json.loads(listed.stdout)

    serve.wait_for(lambda: [c["state"] for c in children()] == ["CANCELLED"] * 2,
                   "both children CANCELLED", 60)
    assert serve.vms() == []


@SMALL
def test_gc_finds_the_vms_of_a_child_cancelled_by_hand(serve, tmp_path):
    """A child cancelled with gcloud runs no cleanup: `wfgen gc` names its VMs
    (and not those of its running sibling), `--delete` deletes them; the
    parent, cancelled next, stops the other child through its watch."""
    spec = job(tmp_path / "stray.yaml", "stray", "sleep 300", heartbeat="1s", timeout="10m",
               tasks={"count": 30, "parallelism": 22})
    assert serve.wfgen("deploy", spec).returncode == 0
    started = serve.gcloud("workflows", "execute", "stray", "--format=value(name)")
    assert started.returncode == 0, started.stderr
    parent_id = started.stdout.strip().rsplit("/", 1)[-1]
    serve.wait_for(lambda: len(serve.vms()) == 22, "22 VMs (2 children x 11 tasks)", 120)
    listed = serve.gcloud("workflows", "executions", "list", "stray-shard", "--format=json")
    child, sibling = [c["name"].rsplit("/", 1)[-1] for c in json.loads(listed.stdout)]
    cancelled = serve.gcloud("workflows", "executions", "cancel", child,
                             "--workflow=stray-shard", "--quiet")
    assert cancelled.returncode == 0, cancelled.stderr
    left = {vm["name"] for vm in serve.vms(child)}
    assert len(left) == 11, "a child cancelled by hand deletes nothing itself"

    found = serve.wfgen("gc")
    assert found.returncode == 0, found.stderr
    rows = [line for line in found.stdout.splitlines() if line.startswith("stray-")]
    assert {row.split()[0] for row in rows} == left, found.stdout
    assert all("its execution is CANCELLED" in row and child in row for row in rows)
    deleted = serve.wfgen("gc", "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert serve.vms(child) == [] and len(serve.vms(sibling)) == 11

    assert serve.gcloud("workflows", "executions", "cancel", parent_id, "--workflow=stray",
                        "--quiet").returncode == 0
    serve.wait_for(lambda: serve.vms() == [], "the sibling's VMs deleted by its watch", 60)
