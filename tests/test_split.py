"""Split fan-out (tasks.split): the spec's limits and guards, how a job is cut
into shards, the two generated workflows, and end to end under the local
runtime: exact counts, the first failed task's exit code, first_failures,
cancelling the parent, and a preempted task retried alone."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest

from tests.local.test_run_local import FAST, result_of, run_local
from wfgen.backends.base import CANCELLED
from wfgen.engine import load_workflow
from wfgen.errors import SpecError
from wfgen.job import shards
from wfgen.job.render_split import render_split, shard_output_path
from wfgen.job.spec import load_spec, load_spec_text
from wfgen.limits import MAX_SOURCE_BYTES

BASE = ("name: many\ncontainer: {image: alpine, script: 'true'}\ntimeout: 1h\nheartbeat: 1m\n"
        "retries: 1\n")


def spec_of(text: str, path: str = "job.yaml"):
    return load_spec_text(text, path)


def error_of(text: str, path: str = "job.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, path)
    return info.value


# -- the spec ---------------------------------------------------------------------

def test_parallelism_over_20_splits_by_itself_unless_told_not_to():
    spec = spec_of(BASE + "tasks: {count: 100, parallelism: 100}\n")
    assert spec.data["tasks"]["parallelism"] == 100 and spec.data["tasks"]["split"] is True
    err = error_of(BASE + "tasks: {count: 100, parallelism: 100, split: false}\n")
    assert err.location.field == "tasks.parallelism" and "tasks.split: false" in str(err)


@pytest.mark.parametrize("tasks, why", [
    ("{count: 100, parallelism: 21}", "parallelism 21 is over the 20 concurrent"),
    ("{count: 2000, parallelism: 2}", "KB of variables, over the 460 KB"),
    ("{count: 3000, parallelism: 20}", "steps, over the 90,000"),
])
def test_a_job_that_does_not_fit_one_execution_is_split_and_says_why(tasks, why):
    spec = spec_of(BASE + f"tasks: {tasks}\n")
    assert spec.data["tasks"]["split"] is True
    assert why in shards.one_execution_problem(spec)
    assert why in shards.describe(spec)[0]


@pytest.mark.parametrize("tasks, field", [
    ("{count: 100, parallelism: 21, split: false}", "tasks.parallelism"),
    ("{count: 2000, parallelism: 2, split: false}", "tasks.count"),
    ("{count: 3000, parallelism: 20, split: false}", "tasks.count"),
])
def test_split_false_refuses_what_one_execution_cannot_hold(tasks, field):
    assert error_of(BASE + f"tasks: {tasks}\n").location.field == field


def test_a_job_that_fits_stays_one_execution_and_split_true_still_splits():
    spec = spec_of(BASE + "tasks: {count: 20}\n")
    assert "split" not in spec.data["tasks"]
    assert shards.describe(spec) == [
        "one execution: 20 tasks, 20 at once (fits Cloud Workflows' limits; no split)"]
    forced = spec_of(BASE + "tasks: {count: 20, split: true}\n")
    assert forced.data["tasks"]["split"] is True
    assert shards.describe(forced)[0] == "split (asked by tasks.split: true)"


def test_a_plain_fan_out_reads_as_before():
    spec = spec_of(BASE + "tasks: {count: 3}\n")
    assert spec.data["tasks"] == {"items": None, "count": 3, "parallelism": 3}
    assert "quota" not in spec.data


def test_the_split_plan_never_runs_more_vms_than_parallelism():
    for count, parallelism in ((1000, 100), (10_000, 400), (45, 41), (7, 30), (10_000, 21)):
        spec = spec_of(BASE + f"tasks: {{count: {count}, parallelism: {parallelism}, "
                              "split: true}\n")
        p = shards.split_plan(spec)
        assert p.peak_vms <= min(parallelism, count)
        assert p.children_at_once <= 20 and p.tasks_per_child <= 20
        ranges = p.ranges()
        assert sum(n for _, n in ranges) == count and len(ranges) == p.shards
        assert [first for first, _ in ranges] == sorted({first for first, _ in ranges})
        assert p.child_steps <= shards.STEP_BUDGET and p.parent_steps <= shards.STEP_BUDGET
        assert p.parent_memory <= shards.MEMORY_BUDGET


def test_over_400_vms_at_once_nest_one_level_and_past_that_is_refused_naming_the_bound():
    spec = spec_of(BASE + "tasks: {count: 10000, parallelism: 1000}\n")
    p = shards.split_plan(spec)
    assert p.groups == 3 and p.shards_per_group_at_once <= 20 and p.tasks_per_child <= 20
    assert 900 <= p.peak_vms <= 1000
    assert sum(n for _, n, _, _ in p.group_table()) == p.shards
    assert sum(n for _, _, _, n in p.group_table()) == 10000
    assert max(p.parent_steps, p.group_steps, p.child_steps) <= shards.STEP_BUDGET
    assert "split, nested: 10000 tasks" in shards.describe(spec)[1]
    split = render_split(spec)
    for text in (split.parent, split.group, split.shard):
        assert len(text.encode()) <= MAX_SOURCE_BYTES
    assert [name for name, _ in split.others("many")] == ["many-shard", "many-group"]
    load_workflow(split.group, "many-group")
    # a heartbeat so short that a child runs one task at once: 401 VMs need 21 groups
    err = error_of("container: {image: a}\ntimeout: 4h\nheartbeat: 1s\n"
                   "tasks: {count: 1000, parallelism: 401}\n")
    assert err.location.field == "tasks.parallelism"
    assert "21 group executions at once" in str(err) and "at most 400 VMs" in str(err)
    assert "1000 is over 1000" not in str(error_of(
        BASE + "tasks: {count: 10, parallelism: 1001, split: true}\n"))


def test_a_short_heartbeat_gives_each_child_fewer_tasks_at_once_and_more_children():
    spec = spec_of("container: {image: a}\ntimeout: 2h\nheartbeat: 2s\n"
                   "tasks: {count: 1000, parallelism: 20}\n")
    p = shards.split_plan(spec)
    # 3,600 heartbeats x 5 steps (3, and a child's watch of its parent) per task at once
    assert (p.children_at_once, p.tasks_per_child) == (5, 4) and p.peak_vms <= 20
    assert p.shard_size >= p.tasks_per_child and p.child_steps <= shards.STEP_BUDGET
    assert spec_of("container: {image: a}\ntimeout: 2h\nheartbeat: 2s\n"
                   "tasks: {count: 1000, parallelism: 200}\n").data["tasks"]["split"]
    assert shards.split_plan(spec_of("container: {image: a}\ntimeout: 2h\nheartbeat: 2s\n"
                                     "tasks: {count: 1000, parallelism: 200}\n")).groups == 3


def test_the_split_plan_counts_notify_messages_and_failover_state_as_one_execution_does():
    """A child publishes the notify retry messages (2 steps each, per retry of
    each task) and holds each running task's capacity-failover state: the split
    plan counts both, as wfgen.job.budget does for one execution."""
    from wfgen.job import budget, capacity

    tasks = "tasks: {count: 400, parallelism: 40}\n"
    plain = spec_of(BASE + tasks)
    notify = spec_of(BASE + tasks + "notify: {pubsub_topic: projects/my-project/topics/training, "
                                    "events: [retry, end]}\n")
    a, b = shards.split_plan(plain), shards.split_plan(notify)
    assert (a.shard_size, a.tasks_per_child) == (b.shard_size, b.tasks_per_child)
    per_retry = budget.notify_steps(notify)[0]
    assert per_retry == budget.STEPS_PER_MESSAGE
    assert b.child_steps - a.child_steps == a.shard_size * 1 * per_retry  # retries: 1
    machine = "machine: {type: g2-standard-8}\n"
    failover = spec_of(BASE + tasks + machine + "zone: any\n"
                       "fallback: [{provisioning: flex-start}]\n")
    fixed = spec_of(BASE + tasks + machine)
    c, d = shards.split_plan(fixed), shards.split_plan(failover)
    assert capacity.state_bytes(failover.plan) > 0
    assert d.child_memory - c.child_memory >= (
        d.tasks_per_child * capacity.state_bytes(failover.plan))


def test_a_child_over_its_steps_is_refused_naming_the_bound():
    err = error_of("container: {image: a}\ntimeout: 100d\nheartbeat: 10s\n"
                   "tasks: {count: 100, parallelism: 100, split: true}\n")
    assert "100,000" in str(err) and "child" in str(err)


def test_the_gpu_quota_and_max_vms_are_checked_before_any_vm():
    gpu = BASE + "machine: {accelerator: {type: nvidia-tesla-t4, count: 2}}\n"
    err = error_of(gpu + "quota: {gpus: 64}\ntasks: {count: 500, parallelism: 40, split: true}\n")
    assert err.location.field == "quota.gpus" and err.location.line == 7
    assert "40 VMs at once x 2 GPUs = 80 GPUs" in str(err) and "32" in str(err)
    spec_of(gpu + "quota: {gpus: 80}\ntasks: {count: 500, parallelism: 40, split: true}\n")
    err = error_of(BASE + "tasks: {count: 500, parallelism: 40, split: true, max_vms: 30}\n")
    assert err.location.field == "tasks.max_vms" and "40 VMs" in str(err)
    assert "4 GPUs" in str(error_of(
        "container: {image: a}\nmachine: {accelerator: {type: nvidia-tesla-t4, count: 4}}\n"
        "quota: {gpus: 2}\n"))


def test_items_file_is_read_beside_the_spec(tmp_path):
    (tmp_path / "items.jsonl").write_text('"a"\n{"lr": 0.1}\n\nplain text\n3\nNaN\n')
    path = tmp_path / "job.yaml"
    path.write_text(BASE + "tasks: {items_file: items.jsonl, parallelism: 2}\n")
    assert load_spec(path).data["tasks"]["items"] == ["a", {"lr": 0.1}, "plain text", 3, "NaN"]


@pytest.mark.parametrize(("content", "name", "words"), [
    (None, "items.jsonl", "not found"),
    ("", "items.jsonl", "no items"),
    ("a\n" * 10_001, "items.jsonl", "more than 10000"),
    ("a\n", "../items.jsonl", "spec's folder"),
])
def test_a_bad_items_file_is_named(tmp_path, content, name, words):
    folder = tmp_path / "job"
    folder.mkdir()
    if content is not None:
        (folder / "items.jsonl").write_text(content)
        (tmp_path / "items.jsonl").write_text(content)
    path = folder / "job.yaml"
    path.write_text(BASE + f"tasks: {{items_file: '{name}', split: true}}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert words in str(info.value) and "items" in str(info.value)
    assert info.value.location.line > 0


def test_schema_caps_parallelism_at_20_only_with_split_false():
    import jsonschema

    from wfgen.job.schema import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    base = {"container": {"image": "a"}}
    assert not list(validator.iter_errors({**base, "tasks": {"count": 9, "parallelism": 500,
                                                             "split": True}}))
    assert not list(validator.iter_errors({**base, "tasks": {"count": 9, "parallelism": 500}}))
    assert list(validator.iter_errors({**base, "tasks": {"count": 9, "parallelism": 21,
                                                         "split": False}}))
    assert list(validator.iter_errors({**base, "tasks": {"count": 9, "parallelism": 1001}}))
    assert not list(validator.iter_errors({**base, "tasks": {"items_file": "x.jsonl"}}))


# -- the two workflows ---------------------------------------------------------------

def test_ten_thousand_tasks_and_1500_file_items_fit_the_sources(tmp_path):
    split = render_split(spec_of(BASE + "tasks: {count: 10000, parallelism: 400, split: true}\n"))
    load_workflow(split.parent, "parent")
    load_workflow(split.shard, "shard")
    assert "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run" \
        in split.parent
    (tmp_path / "items.jsonl").write_text(
        "".join(f"gs://bucket/shard-{i:05d}.tar\n" for i in range(1500)))
    path = tmp_path / "job.yaml"
    path.write_text(BASE + "tasks: {items_file: items.jsonl, parallelism: 100, split: true}\n")
    split = render_split(load_spec(path))
    assert len(split.shard.encode()) <= MAX_SOURCE_BYTES
    load_workflow(split.shard, "shard")


def test_items_past_the_source_limit_are_refused_naming_tasks_items():
    items = ["x" * 40 for _ in range(3000)]
    with pytest.raises(SpecError) as info:
        render_split(spec_of(BASE + "tasks: {parallelism: 40, split: true, items: "
                             + json.dumps(items) + "}\n"))
    assert "128 KB" in str(info.value) and info.value.location.field == "tasks.items"
    assert "set staging: gs://BUCKET/PREFIX (or --staging)" in str(info.value)


def test_items_past_the_source_limit_go_to_staging_one_object_per_shard():
    items = ["x" * 40 + str(i) for i in range(3000)]
    spec = spec_of(BASE + "staging: gs://stage-bucket/runs/\ntasks: {parallelism: 40, "
                   "split: true, items: " + json.dumps(items) + "}\n")
    split = render_split(spec)
    assert len(split.shard.encode()) <= MAX_SOURCE_BYTES
    load_workflow(split.shard, "shard")
    assert "googleapis.storage.v1.objects.get" in split.shard and "x" * 40 not in split.shard
    ranges = shards.split_plan(spec).ranges()
    assert len(split.staged_items) == len(ranges)
    for (uri, body), (first, count) in zip(split.staged_items, ranges, strict=True):
        digest = hashlib.sha256(body).hexdigest()
        assert uri == f"gs://stage-bucket/runs/items-{digest}.json"
        assert json.loads(body) == items[first:first + count]
        assert uri.split("/", 3)[3] in split.shard  # the child finds its object by index
    # items that fit stay in the source: nothing staged, the workflows unchanged
    small = BASE + "tasks: {parallelism: 40, split: true, items: [a, b, c]}\n"
    plain = render_split(spec_of(small))
    assert plain.staged_items == ()
    assert render_split(spec_of(BASE + "staging: gs://stage-bucket/runs\n"
                                + small.removeprefix(BASE))) == plain


def test_validate_says_the_items_go_to_staging(tmp_path, cli):
    path = tmp_path / "job.yaml"
    items = ["x" * 40 + str(i) for i in range(3000)]
    path.write_text(BASE + "staging: gs://stage-bucket/runs\ntasks: {parallelism: 40, "
                    "items: " + json.dumps(items) + "}\n")
    run = cli("validate", str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "upload them to gs://stage-bucket/runs, one object per shard" in run.stdout


def test_generate_writes_both_and_validate_says_how_it_splits(tmp_path, cli):
    path = tmp_path / "job.yaml"
    path.write_text(BASE + "tasks: {count: 1000, parallelism: 100, split: true}\n")
    run = cli("validate", str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 children at once x 20 tasks at once = 100 VMs" in run.stdout
    assert "worst-case billed steps: parent" in run.stdout
    out = tmp_path / "wf.yaml"
    run = cli("generate", str(path), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert shard_output_path(str(out)) == str(tmp_path / "wf-shard.yaml")
    load_workflow(out.read_text(), "wf")
    load_workflow((tmp_path / "wf-shard.yaml").read_text(), "wf-shard")
    assert cli("generate", str(path)).returncode == 2  # stdout cannot hold two workflows


# -- end to end under the local runtime ------------------------------------------------

def _job(tmp_path: Path, script: str, count: int, parallelism: int, retries: int = 0,
         split: bool | None = True) -> Path:
    tasks = {"count": count, "parallelism": parallelism}
    spec = {"name": "many", "container": {"image": "alpine:3.20", "script": script},
            "timeout": "5m", "heartbeat": "1s", "retries": retries,
            "tasks": tasks if split is None else {**tasks, "split": split}}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.xdist_group("split_e2e_1000")
def test_a_thousand_tasks_at_parallelism_100_exact_counts_first_failed_code(tmp_path):
    """The done-when run: 1,000 trivial tasks, 100 VMs at once, split by itself
    over child executions; tasks 7 and 900 fail; every VM is gone at the end
    (run_local checks no VM process or scratch directory is left)."""
    script = ('case "$WFGEN_TASK_INDEX" in 7) exit 3;; 900) exit 5;; esac; '
              '[ "$WFGEN_TASK_COUNT" = 1000 ]')
    run = run_local(tmp_path, _job(tmp_path, script, 1000, 100, split=None), timeout=900)
    assert run.returncode == 3, run.stderr[-3000:]
    summary = result_of(run)
    assert summary["counts"] == {"succeeded": 998, "failed": 2} and summary["tasks"] == 1000
    failures = {f["index"]: f["exit_code"] for f in summary["first_failures"]}
    assert failures == {7: 3, 900: 5}
    assert summary["first_failed"]["index"] == 7
    assert len(summary["shards"]) == 7  # 100 VMs: 5 children x 20 tasks at once
    assert all("/workflows/many-shard/executions/" in name for name in summary["shards"])
    assert len(re.findall(r"VM many-[0-9a-f]{12}-\d+-1 deleted", run.stderr)) == 1000


@pytest.fixture
def backend(monkeypatch):
    from wfgen.backends.local import LocalBackend
    from wfgen.local.faults import Faults

    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    made = []

    def make(faults: list[str] | None = None) -> LocalBackend:
        b = LocalBackend(project="p", use_container_engine=False, on_host=True,
                         faults=Faults.parse(faults or []))
        made.append(b)
        return b

    yield make
    for b in made:
        assert b.shutdown() == []


ROOT = "projects/p/locations/us-central1/workflows/"


def _start(backend, tmp_path: Path, script: str, count: int, parallelism: int,
           retries: int = 0):
    split = render_split(load_spec(_job(tmp_path, script, count, parallelism, retries)))
    backend.deploy(ROOT + "many-shard", split.shard)
    backend.deploy(ROOT + "many", split.parent)
    return backend.start(ROOT + "many")


@pytest.mark.xdist_group("split_e2e")
def test_cancelling_the_parent_cancels_every_child_and_leaves_no_vm(backend, tmp_path):
    """As on Google, cancelling the parent does not touch its children (the
    connector leaves them running): each child notices at its tasks' next
    heartbeat, deletes its VMs, starts no queued task and cancels itself."""
    b = backend()
    parent = _start(b, tmp_path, "sleep 120", 30, 22)
    deadline = time.monotonic() + 60
    while len(b.list_vms()) < 22 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(b.list_vms()) == 22  # 2 children x 11 tasks at once, 8 tasks queued
    assert b.cancel(parent.name).state == CANCELLED
    children = b.list(ROOT + "many-shard")
    assert len(children) == 2
    for child in children:
        assert b.wait(child.name, 30).state == CANCELLED
    assert b.list_vms() == []
    assert len(b.compute.known_instances()) == 22  # no queued task made a VM


SLEEPING_PARENT = ("main:\n  steps:\n    - wait:\n        call: sys.sleep\n"
                   "        args: {seconds: 600}\n")


def _child_steps(b, tmp_path: Path, script: str, count: int, heartbeat: str
                 ) -> tuple[int, int]:
    """(billed steps, heartbeats) of one shard child of `count` tasks at once,
    its parent a stand-in that sleeps (ACTIVE) all along."""
    spec = {"name": "many", "container": {"image": "alpine:3.20", "script": script},
            "timeout": "5m", "heartbeat": heartbeat, "retries": 0,
            "tasks": {"count": count, "parallelism": count, "split": True}}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    b.deploy(ROOT + "many-shard", render_split(load_spec(path)).shard)
    b.deploy(ROOT + "many", SLEEPING_PARENT)
    parent = b.start(ROOT + "many")
    child = b.start(ROOT + "many-shard", {"shard": {
        "index": 0, "first": 0, "count": count, "parent": parent.name.rsplit("/", 1)[1]}})
    done = b.wait(child.name, 120)
    assert done.state == "SUCCEEDED", done.error
    beats = sum(1 for _, _, step in b.step_log(child.name)[0] if step == "check_vm")
    b.cancel(parent.name)
    return sum(done.steps), beats


@pytest.mark.xdist_group("split_e2e")
def test_a_childs_watch_of_its_parent_bills_what_the_plan_counts(backend, tmp_path):
    """One executions.get per task start and per heartbeat of a running task (4
    steps a heartbeat instead of 3), two at the child's end: within the split
    plan's figures (which count a failed get's except too)."""
    b = backend()
    one, none = _child_steps(b, tmp_path, "true", 1, "1m")
    two, none2 = _child_steps(b, tmp_path, "true", 2, "1m")
    assert none == none2 == 0
    per_task = two - one
    assert per_task == 16  # a fan-out task's 15 in a child, and its watch at its start
    assert per_task <= (shards.STEPS_PER_TASK + shards.STEPS_PER_SHARD_TASK
                        + shards.STEPS_PER_WATCH)
    slow, beats = _child_steps(b, tmp_path, "sleep 3", 2, "1s")
    assert beats >= 2 and slow - two == 4 * beats
    assert shards.CHILD_STEPS_PER_HEARTBEAT >= 4
    spec = load_spec(tmp_path / "job.yaml")
    assert shards.split_plan(spec).child_steps >= slow


@pytest.mark.xdist_group("split_e2e")
def test_a_preempted_task_is_retried_alone(backend, tmp_path):
    b = backend(["preempt@1s,task=3"])
    parent = _start(b, tmp_path, "sleep 2", 4, 4, retries=1)
    done = b.wait(parent.name, 120)
    assert done.state == "SUCCEEDED", done.error
    assert done.result["counts"] == {"succeeded": 4, "failed": 0}
    (child,) = b.list(ROOT + "many-shard")
    tasks = child.result["tasks"]
    assert [t["attempts"] for t in tasks] == [1, 1, 1, 2]
    assert tasks[3]["instance"].endswith("-3-2")


def _nested_job(tmp_path: Path, script: str) -> Path:
    """30 tasks at parallelism 21 with a heartbeat so short that a child runs one
    task at once: 21 children at once, so nested (2 groups of shards)."""
    path = tmp_path / "nest.yaml"
    path.write_text(json.dumps({
        "name": "nest", "container": {"image": "alpine:3.20", "script": script},
        "timeout": "4h", "heartbeat": "1s", "retries": 0,
        "tasks": {"count": 30, "parallelism": 21}}))
    return path


@pytest.mark.xdist_group("split_e2e")
def test_a_nested_split_runs_locally_with_exact_counts_and_the_first_failed_code(tmp_path):
    job = _nested_job(tmp_path, 'case "$WFGEN_TASK_INDEX" in 3) exit 4;; 27) exit 6;; esac')
    assert shards.split_plan(load_spec(job)).groups == 2
    run = run_local(tmp_path, job, timeout=300)
    assert run.returncode == 4, run.stderr[-3000:]
    summary = result_of(run)
    assert summary["counts"] == {"succeeded": 28, "failed": 2} and summary["tasks"] == 30
    assert {f["index"]: f["exit_code"] for f in summary["first_failures"]} == {3: 4, 27: 6}
    assert summary["first_failed"]["index"] == 3
    assert len(summary["shards"]) == 2  # the parent's children: the two groups
    assert all("/workflows/nest-group/executions/" in name for name in summary["shards"])


@pytest.mark.xdist_group("split_e2e")
def test_cancelling_a_nested_parent_cancels_its_groups_and_shards_and_leaves_no_vm(
        backend, tmp_path):
    b = backend()
    spec = load_spec(_nested_job(tmp_path, "sleep 120"))
    plan = shards.split_plan(spec)
    assert plan.groups == 2 and plan.shards == 15 and plan.shard_size == 2
    split = render_split(spec)
    for other, source in split.others("nest"):
        b.deploy(ROOT + other, source)
    b.deploy(ROOT + "nest", split.parent)
    parent = b.start(ROOT + "nest")
    deadline = time.monotonic() + 90
    while len(b.list_vms()) < 15 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(b.list_vms()) == 15  # every shard's first task; its second waits
    assert b.cancel(parent.name).state == CANCELLED
    children = b.list(ROOT + "nest-group") + b.list(ROOT + "nest-shard", limit=100)
    assert len(children) == 2 + 15
    for child in children:
        assert b.wait(child.name, 30).state == CANCELLED, child.name
    assert b.list_vms() == []
    assert len(b.compute.known_instances()) == 15  # no queued task made a VM


@pytest.mark.xdist_group("split_e2e")
def test_find_task_reaches_a_task_through_the_groups(backend, tmp_path):
    from wfgen.backends.split_tasks import find_task, task_lines

    b = backend()
    split = render_split(load_spec(_nested_job(tmp_path, 'echo "out of $WFGEN_TASK_INDEX"')))
    for other, source in split.others("nest"):
        b.deploy(ROOT + other, source)
    b.deploy(ROOT + "nest", split.parent)
    parent = b.wait(b.start(ROOT + "nest").name, 240)
    assert parent.state == "SUCCEEDED", parent.error
    place = find_task(b, parent.name, 22)
    assert place.child.name.startswith(ROOT + "nest-shard/executions/")
    assert place.first <= 22 < place.first + place.count
    assert place.result["index"] == 22 and place.result["status"] == "succeeded"
    assert place.vms == []  # deleted once the task ended
    lines = list(b.logs(place.child.name))  # the child that ran it, on the VM of its name
    assert f"{place.result['instance']} | out of 22" in lines
    assert list(task_lines(b, place)) == []  # no console left, no logs kept past the VM


def test_generate_writes_the_group_workflow_of_a_nested_split(tmp_path, cli):
    out = tmp_path / "wf.yaml"
    run = cli("generate", str(_nested_job(tmp_path, "true")), "-o", str(out))
    assert run.returncode == 0, run.stderr
    for path, name in ((out, "wf"), (tmp_path / "wf-shard.yaml", "wf-shard"),
                       (tmp_path / "wf-group.yaml", "wf-group")):
        load_workflow(path.read_text(), name)
    assert '+ "-group"' in out.read_text() and "wf-group.yaml" in run.stderr
