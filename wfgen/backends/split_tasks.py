"""One task of a split job, found from its parent execution: the child
execution that runs it and the task's VMs (`wfgen status/logs --task N`).

A split job's parent starts each shard as an execution of its own workflow
plus "-shard", whose argument carries `shard: {index, first, count, parent}`
(wfgen.job.render_split). So the child of task N is the shard workflow's
execution whose argument names this parent and whose range holds N; the
task's VMs carry the labels wfgen-execution (the child) and wfgen-task (N),
and are named NAME-TAG-N-ATTEMPT, so their logs are found after they are gone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from wfgen.backends.base import Backend, Execution, Vm
from wfgen.errors import UsageError

SHARD_SUFFIX = "-shard"  # as wfgen.job.render_split (not imported: it pulls in jinja2)
MAX_SHARDS_LISTED = 10_000  # a split job has at most one shard per task


@dataclass
class TaskPlace:
    """Where task `index` of a split job runs (or ran)."""

    index: int
    child: Execution
    first: int  # the child's shard: tasks first .. first+count-1
    count: int
    vms: list[Vm] = field(default_factory=list)  # its VMs that exist now

    @property
    def result(self) -> dict[str, Any] | None:
        """The task's entry in the child's report, once the child has ended."""
        tasks = _report(self.child).get("tasks")
        if isinstance(tasks, list) and 0 <= self.index - self.first < len(tasks):
            entry = tasks[self.index - self.first]
            return entry if isinstance(entry, dict) else None
        return None

    def owns(self, vm_name: str) -> bool:
        """Whether a VM of the child (NAME-TAG-TASK-ATTEMPT) is this task's."""
        return re.search(rf"-{self.index}-\d+$", vm_name) is not None


def _report(ex: Execution) -> dict[str, Any]:
    if isinstance(ex.result, dict):
        return ex.result
    if ex.error is not None:
        from wfgen.backends.cloud_convert import error_value

        value = error_value(ex)
        if isinstance(value, dict) and isinstance(value.get("result"), dict):
            return value["result"]
    return {}


def _shard_of(ex: Execution) -> dict[str, Any] | None:
    argument = ex.argument
    if isinstance(argument, str):
        import json

        try:
            argument = json.loads(argument)
        except ValueError:
            return None
    shard = argument.get("shard") if isinstance(argument, dict) else None
    return shard if isinstance(shard, dict) else None


def find_task(backend: Backend, parent: str, index: int) -> TaskPlace:
    """The child execution of `parent` that runs task `index`, and its VMs now;
    a clear error when `parent` is not a split job's or has not started it."""
    ex = backend.get(parent)
    report = _report(ex)
    total = report.get("tasks")
    if isinstance(total, int) and not 0 <= index < total:
        raise UsageError(f"--task {index}: the job has tasks 0 to {total - 1}")
    shard_workflow = ex.workflow + SHARD_SUFFIX
    for child in backend.list(shard_workflow, limit=MAX_SHARDS_LISTED):
        shard = _shard_of(child)
        if shard is None or str(shard.get("parent")) != ex.id:
            continue
        first, count = shard.get("first"), shard.get("count")
        if isinstance(first, int) and isinstance(count, int) and first <= index < first + count:
            vms = [vm for vm in backend.list_vms(child.name)
                   if vm.labels.get("wfgen-task") == str(index)]
            return TaskPlace(index, child, first, count, vms)
    if "shards" not in report and ex.state == "ACTIVE":
        raise UsageError(f"--task {index}: no child execution of {parent} runs task {index} "
                         "yet (its shard has not started)")
    raise UsageError(f"--task {index}: no child execution of {parent} ran task {index} "
                     f"(is it a split job's parent? its shards run as {shard_workflow})")


def task_lines(backend: Backend, place: TaskPlace) -> Iterator[str]:
    """The task's output: its VMs already gone from the backend's logs, then the
    consoles of those that exist."""
    present = {vm.name for vm in place.vms}
    logged = getattr(backend, "logged_output", None)
    if logged is not None:
        for vm, line in logged(place.child, skip=present):
            if place.owns(vm):
                yield line
    for vm in place.vms:
        text, _ = backend.console(vm)
        yield from text.splitlines()
