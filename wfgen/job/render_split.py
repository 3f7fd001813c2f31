"""A `tasks.split: true` job -> two workflows: the parent (templates/
split_parent.yaml.j2), which hands each shard to a child execution by index
range, and the shard workflow (the fan-out workflow of wfgen.job.render, told
by `shard` to run only the tasks of its arg.shard range). The shard workflow
is deployed as the parent's name plus SHARD_SUFFIX: the parent finds it from
its own workflow ID, so `wfgen deploy --name` keeps the pair together.

Items travel in the shard workflow's own source, one base64 block per shard
(never in an execution argument, which Google caps at 32 KB). Items that do not
fit its 128 KB go to Cloud Storage when the spec names `staging`: one JSON
array per shard, named by its sha256 (`items-SHA.json`, uploaded once by
run/deploy, wfgen.backends.cloud_staging), which the child reads with the
Cloud Storage connector (objects.get, alt=media: the decoded JSON) so each
child reads only its own shard, far under the 2 MB response limit. Without
staging such items are refused, naming tasks.items and the bound.

A child watches its parent (templates/parent_watch.yaml.j2), since on Google a
cancelled parent leaves its children running: an executions.get of the parent
(named from the child's own workflow ID less SHARD_SUFFIX, and the parent's ID
in arg.shard) at each task's start, retry and heartbeat; once the parent has
ended, its tasks delete their VMs, queued tasks do not start, and the child
cancels itself. A group does the same at its end."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from wfgen.errors import SpecError
from wfgen.job.arguments import workflow_checks
from wfgen.job.budget import items_of
from wfgen.job.model import JobSpec
from wfgen.job.render import (
    _b64,
    _environment,
    parse_rendered,
    template_context,
)
from wfgen.job.rules import argument_keys
from wfgen.job.shards import POLL_INITIAL_S, POLL_MAX_DELAY_S, split_plan
from wfgen.limits import MAX_SOURCE_BYTES

SHARD_SUFFIX = "-shard"
GROUP_SUFFIX = "-group"  # the same length as SHARD_SUFFIX: the group template relies on it
MAX_CONNECTOR_TIMEOUT_S = 31_536_000  # the connector's longest wait: one year


@dataclass(frozen=True)
class SplitWorkflows:
    """The two sources of a split job."""

    parent: str
    shard: str
    group: str | None = None  # nested: the group workflow (parent -> groups -> shards)
    # items past the source limit: (gs:// URI, JSON bytes) of every shard, to upload first
    staged_items: tuple[tuple[str, bytes], ...] = ()

    def others(self, name: str) -> list[tuple[str, str]]:
        """(workflow id, source) of the workflows the parent starts, in deploy order."""
        extra = [(name + SHARD_SUFFIX, self.shard)]
        return extra + ([(name + GROUP_SUFFIX, self.group)] if self.group else [])


def shard_workflow_id(workflow_id: str) -> str:
    return workflow_id + SHARD_SUFFIX


def shard_output_path(parent_path: str, suffix: str = SHARD_SUFFIX) -> str:
    """Where `wfgen generate -o wf.yaml` writes the shard workflow (wf-shard.yaml)
    or, with GROUP_SUFFIX, the group workflow (wf-group.yaml)."""
    stem, dot, ext = parent_path.rpartition(".")
    return f"{stem}{suffix}.{ext}" if dot and "/" not in ext else parent_path + suffix


def is_split(spec: JobSpec) -> bool:
    tasks = spec.data.get("tasks")
    return bool(tasks and tasks.get("split"))


def render_split(spec: JobSpec) -> SplitWorkflows:
    """Both workflows of a split job, each parsed back and held to 128 KB."""
    plan = split_plan(spec)
    ranges = plan.ranges()
    secrets = bool(spec.data["container"].get("secret_env"))
    env = _environment()
    context = template_context(spec)
    items = items_of(spec) if spec.data["tasks"]["items"] is not None else None
    shard_texts = None if items is None else [
        json.dumps(items[first:first + size], ensure_ascii=False, separators=(",", ":"))
        for first, size in ranges]
    context.update(
        shard=True, shard_suffix=SHARD_SUFFIX, parallelism=plan.tasks_per_child,
        task_index="first + index", task_count=str(plan.count), total=plan.count,
        shard_items_b64=None if shard_texts is None else [_b64(t) for t in shard_texts],
        shard_items_bucket=None, shard_items_objects=None,
        argument_checks=workflow_checks("default(input, {})", ("shard",),
                                        argument_keys(secrets)),
        item_checks=[('not("shard" in default(input, {}))',
                      json.dumps("this is the shard workflow of a split job: start its parent "
                                 "workflow, which gives each child its shard"))],
    )
    shard = env.get_template("workflow.yaml.j2").render(**context)
    staged: tuple[tuple[str, bytes], ...] = ()
    if (shard_texts is not None and len(shard.encode("utf-8")) > MAX_SOURCE_BYTES
            and spec.data.get("staging")):
        bucket, objects, staged = _staged_items(spec.data["staging"], shard_texts)
        context.update(shard_items_b64=None, shard_items_bucket=bucket,
                       shard_items_objects=objects)
        shard = env.get_template("workflow.yaml.j2").render(**context)
    common = dict(
        version=context["version"], source=context["source"], count=plan.count,
        shards=plan.shards, shard_size=plan.shard_size, tasks_per_child=plan.tasks_per_child,
        peak_vms=plan.peak_vms, groups=0, group=False,
        ranges_yaml=json.dumps([list(r) for r in ranges], separators=(",", ":")),
        argument_checks=workflow_checks("default(input, {})", (), argument_keys(secrets)),
        child_timeout_s=min(MAX_CONNECTOR_TIMEOUT_S, spec.timeout_s + spec.heartbeat_s + 900),
        poll_initial_s=POLL_INITIAL_S, poll_max_s=POLL_MAX_DELAY_S,
        report=context["report"], total=plan.count)
    template = env.get_template("split_parent.yaml.j2")
    group = None
    if plan.groups:
        group = template.render(**{
            **common, "group": True, "children_at_once": plan.shards_per_group_at_once,
            "argument_checks": [
                *workflow_checks("default(input, {})", ("group",), argument_keys(secrets)),
                ('not("group" in default(input, {}))',
                 json.dumps("this is the group workflow of a split job: start its parent "
                            "workflow, which gives each group its shards"))]})
        parent = template.render(**{
            **common, "groups": plan.groups, "children_at_once": plan.groups,
            "groups_yaml": json.dumps([list(g) for g in plan.group_table()],
                                      separators=(",", ":"))})
    else:
        parent = template.render(**{**common, "children_at_once": plan.children_at_once})
    for text, what in ((shard, "shard"), (parent, "parent"), (group, "group")):
        if text is None:
            continue
        parse_rendered(text)
        size = len(text.encode("utf-8"))
        if size > MAX_SOURCE_BYTES:
            where = "tasks.items_file" if spec.data["tasks"].get("items_file") else "tasks.items"
            staging = ("" if what != "shard" or spec.data.get("staging") else
                       "; or set staging: gs://BUCKET/PREFIX (or --staging) and the items "
                       "go to Cloud Storage, one object per shard")
            raise SpecError(f"the generated {what} workflow would be {size // 1024} KB, over "
                            "the 128 KB Cloud Workflows accepts: the items are carried in its "
                            "source; use smaller items (or give each task an index into data "
                            f"it reads itself){staging}", spec.location(where))
    return SplitWorkflows(parent, shard, group, staged)


def _staged_items(staging: str, texts: list[str]
                  ) -> tuple[str, list[str], tuple[tuple[str, bytes], ...]]:
    """(bucket, object name per shard, (URI, bytes) per distinct object): each
    shard's items as one JSON array named by its sha256 under the staging prefix."""
    bucket, _, prefix = staging[len("gs://"):].partition("/")
    prefix = prefix.strip("/")
    objects, staged = [], {}
    for text in texts:
        body = text.encode("utf-8")
        name = f"{prefix}/items-{hashlib.sha256(body).hexdigest()}.json".lstrip("/")
        objects.append(name)
        staged[f"gs://{bucket}/{name}"] = body
    return bucket, objects, tuple(staged.items())
