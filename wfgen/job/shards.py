"""Whether a fan-out fits one execution, how a job that does not (or says
`tasks.split: true`) is cut into child executions, and whether the platform
can run it.

A split job is two workflows: the parent awaits at most 20 children at once
(Cloud Workflows' concurrent iterations) through the Workflow Executions
connector; each child (the shard workflow) runs one shard, a contiguous range
of task indexes, at most 20 tasks at once. So:

- tasks at once per child: 20, or fewer when their heartbeats over the timeout
  would pass a child's steps; children at once `c = ceil(parallelism / that)`,
  tasks at once per child `parallelism // c` (never more VMs than
  `parallelism`);
- more than 20 children at once nest one level: the parent awaits up to 20
  group executions (a third workflow), all at once, each awaiting its part of
  the shards, up to 20 at once;
- a shard is as large as one child's 100,000 steps and 512 KB allow (the same
  figures as wfgen.job.budget) and as the parent can hold the results of `c`
  children at once (PARENT_RESULTS_BYTES), and there are at least `c` shards;
- the parent bills a few steps per shard plus the connector's polling of the
  children it awaits (initial 10 s, doubling, at most POLL_MAX_DELAY_S);
- a child watches its parent (STEPS_PER_WATCH at each task's start, retry and
  heartbeat, STEPS_CHILD_END at its end), so its heartbeats cost
  CHILD_STEPS_PER_HEARTBEAT.

`one_execution_problem` says why a job does not fit one execution (the split
is then automatic); `split_plan` computes the split; `split_problem` says what
the platform could not run, naming the bound (a child's, a group's or the
parent's steps, 512 KB, the 20 groups one parent awaits); `quota_problem` holds
the job to `tasks.max_vms` and `quota.gpus` before any VM is made."""

from __future__ import annotations

import math
from dataclasses import dataclass

from wfgen.job.budget import (
    MEMORY_BUDGET,
    REPORT_MOST_LINES,
    RESULT_BYTES,
    STEP_BUDGET,
    STEPS_PER_HEARTBEAT,
    STEPS_PER_RETRY,
    STEPS_PER_TASK,
    STEPS_REPORT_WRITE,
    _json_size,
    has_report,
    item_text,
    items_of,
    memory_needed,
    notify_steps,
    plan,
    steps_needed,
)
from wfgen.job.model import JobSpec, container_payload
from wfgen.limits import MAX_CONCURRENT_BRANCHES, MAX_STRING_BYTES

MAX_CHILDREN_AT_ONCE = MAX_CONCURRENT_BRANCHES
STEPS_PER_SHARD = 12  # the parent: start a child, await it, add up its summary
STEPS_PARENT_FIXED = 12
STEPS_PER_SHARD_TASK = 2  # a child building its shard's items (count: the indexes)
# A child watching its parent (templates/parent_watch.yaml.j2): one executions.get
# at each task's start, each retry and each heartbeat of a running task, 2 steps in
# the worst case (the get fails and its except runs); at its end one more get, the
# switch, and when the parent ended its own cancel and the sleep it never wakes from.
STEPS_PER_WATCH = 2
STEPS_CHILD_END = STEPS_PER_WATCH + 3
CHILD_STEPS_PER_HEARTBEAT = STEPS_PER_HEARTBEAT + STEPS_PER_WATCH
POLL_INITIAL_S = 10
POLL_MAX_DELAY_S = 600
POLL_WARMUP = 6  # polls before the delay reaches its maximum (10, 20, ... 320 s)
SHARD_PASSING_BYTES = 400  # per shard in the parent: its range, name and counts
SUMMARY_FAILURES = 20
FAILURE_BYTES = 600  # one first_failures entry (index, exit code, instance, message)
PARENT_RESULTS_BYTES = 300 * 1024  # the children's results the parent holds at once
# tasks.report in a split job (templates/report.yaml.j2), measured: the parent's
# compose (a call a round, then 32 sources a call); per shard: its source, the
# part's delete (2), the check for a missing part (1) and, when its child wrote
# none, the part the parent writes (4, and a line per task)
STEPS_REPORT_FIXED = 20
STEPS_REPORT_PER_SHARD = 10
STEPS_REPORT_PER_MISSING_TASK = 1


def one_execution_problem(spec: JobSpec) -> str | None:
    """Why the fan-out does not fit one execution (then it is split), or None.
    Items too large for one workflow source are not a reason: the shard
    workflow's source carries the same items."""
    parallelism = min(spec.data["tasks"]["parallelism"], len(items_of(spec)))
    if parallelism > MAX_CONCURRENT_BRANCHES:
        return (f"parallelism {parallelism} is over the {MAX_CONCURRENT_BRANCHES} concurrent "
                "iterations one execution runs")
    if has_report(spec) and len(items_of(spec)) > REPORT_MOST_LINES:
        return (f"its report (tasks.report) of {len(items_of(spec))} lines would be over "
                f"the {MAX_STRING_BYTES // 1024} KB of one string ({REPORT_MOST_LINES} "
                "lines)")
    p = plan(spec)
    if p.steps > STEP_BUDGET:
        return (f"its worst case needs {p.steps:,} steps, over the {STEP_BUDGET:,} wfgen "
                "allows of one execution's 100,000")
    if p.memory > MEMORY_BUDGET:
        return (f"its items and results need about {p.memory // 1024:,} KB of variables, over "
                f"the {MEMORY_BUDGET // 1024} KB wfgen allows of one execution's 512 KB")
    return None


@dataclass(frozen=True)
class SplitPlan:
    """A split job's shape and worst-case cost."""

    count: int
    parallelism: int
    children_at_once: int
    tasks_per_child: int  # tasks (VMs) at once inside one child
    shard_size: int
    shards: int
    child_steps: int  # worst case of the largest shard
    parent_steps: int
    child_memory: int
    parent_memory: int
    most_per_child: int  # the tasks at once a child's steps allow (20 at most)
    groups: int = 0  # nested: the parent's children are this many group executions
    shards_per_group_at_once: int = 0  # nested: a group's shard children at once
    group_steps: int = 0
    group_memory: int = 0

    @property
    def peak_vms(self) -> int:
        if self.groups:
            return self.groups * self.shards_per_group_at_once * self.tasks_per_child
        return self.children_at_once * self.tasks_per_child

    def group_table(self) -> list[tuple[int, int, int, int]]:
        """Nested: (first shard, shard count, first task, task count) of every group."""
        ranges = self.ranges()
        per = math.ceil(len(ranges) / self.groups)
        table = []
        for first in range(0, len(ranges), per):
            mine = ranges[first:first + per]
            table.append((first, len(mine), mine[0][0], sum(n for _, n in mine)))
        return table

    @property
    def steps_per_task(self) -> float:
        """Worst-case billed steps per task, parent and child together."""
        return (self.parent_steps + self.groups * self.group_steps
                + self.shards * self.child_steps) / self.count

    def ranges(self) -> list[tuple[int, int]]:
        """(first index, task count) of every shard."""
        return [(first, min(self.shard_size, self.count - first))
                for first in range(0, self.count, self.shard_size)]


def _child_steps(size: int, per_child: int, spec: JobSpec) -> int:
    retries = spec.data["retries"]
    beats = math.ceil(spec.timeout_s / spec.heartbeat_s)
    watching = (STEPS_CHILD_END + size * (1 + retries) * STEPS_PER_WATCH
                + min(per_child, size) * beats * STEPS_PER_WATCH)
    # a child publishes the notify retry messages (the end message is the parent's)
    messages = (notify_steps(spec)[0], 0)
    return (steps_needed(size, per_child, retries, spec.timeout_s, spec.heartbeat_s,
                         messages)
            + size * STEPS_PER_SHARD_TASK + watching
            + (STEPS_REPORT_WRITE if has_report(spec) else 0))


def _container_bytes(spec: JobSpec) -> int:
    """A running task's container (+ its env) and, with a capacity failover, its
    failover state (counted twice per running task, as wfgen.job.budget does)."""
    size = _json_size(container_payload(spec)) + 200
    if spec.plan is not None:
        from wfgen.job.capacity import state_bytes

        size += state_bytes(spec.plan) // 2
    return size


def _report_steps(shards: int, tasks: int, composes: bool) -> int:
    """An awaiter's worst-case steps for tasks.report: every child it awaits ended
    without writing its part (the awaiter writes it), and the parent's compose."""
    return (shards * STEPS_REPORT_PER_SHARD + tasks * STEPS_REPORT_PER_MISSING_TASK
            + (STEPS_REPORT_FIXED if composes else 0))


def split_plan(spec: JobSpec) -> SplitPlan:
    items = items_of(spec)
    count = len(items)
    parallelism = min(spec.data["tasks"]["parallelism"], count)
    # tasks at once in one child: 20 at most, fewer when their heartbeats over the
    # timeout (and at least one task each) would pass a child's step budget
    beats = math.ceil(spec.timeout_s / spec.heartbeat_s)
    retries = spec.data["retries"]
    per_task = (STEPS_PER_TASK + retries * (STEPS_PER_RETRY + notify_steps(spec)[0])
                + STEPS_PER_SHARD_TASK + (1 + retries) * STEPS_PER_WATCH)
    most = (STEP_BUDGET - _child_steps(0, 0, spec)) // (beats * CHILD_STEPS_PER_HEARTBEAT
                                                        + per_task)
    most = max(1, min(MAX_CONCURRENT_BRANCHES, most))
    needed = math.ceil(parallelism / most)  # shard children at once
    # over 20: nest one level, the parent awaiting groups that await the shards
    groups = math.ceil(needed / MAX_CHILDREN_AT_ONCE) if needed > MAX_CHILDREN_AT_ONCE else 0
    awaited = needed // groups if groups else needed  # one awaiter's children at once
    running = awaited * (groups or 1)  # shard children at once in the whole job
    per_child = max(1, parallelism // needed)
    container_bytes = _container_bytes(spec)
    largest = max(len(item_text(i).encode("utf-8")) for i in items)
    average = _json_size(items) / count
    # the largest shard one child's steps and variables hold
    fixed = _child_steps(0, 0, spec) + per_child * beats * CHILD_STEPS_PER_HEARTBEAT
    size = max(1, (STEP_BUDGET - fixed) // per_task)
    report = has_report(spec)
    if report:  # a child's part of the report is one string
        size = min(size, REPORT_MOST_LINES)
    while size > 1 and memory_needed(size, per_child, int(size * average), largest,
                                     container_bytes, report) > MEMORY_BUDGET:
        size = size * 9 // 10
    # a child's result (every task's small result) lands in its awaiter's variables,
    # once decoded and, for a failed shard, once more as the error's JSON text
    size = max(per_child, min(size, PARENT_RESULTS_BYTES // (awaited * RESULT_BYTES * 2),
                              math.ceil(count / running)))
    shards = math.ceil(count / size)

    def awaiter(children: int, at_once: int, held: int) -> tuple[int, int]:
        """(steps, bytes) of an execution awaiting `children`, `at_once` at a time,
        each answering with `held` bytes."""
        polls = at_once * math.ceil(spec.timeout_s / POLL_MAX_DELAY_S) + children * POLL_WARMUP
        return (STEPS_PARENT_FIXED + children * STEPS_PER_SHARD + polls,
                4096 + 3 * container_bytes + children * SHARD_PASSING_BYTES
                + at_once * held * 2 + SUMMARY_FAILURES * FAILURE_BYTES * 2)

    child_memory = memory_needed(size, per_child, int(size * average), largest, container_bytes,
                                 report)
    if groups:
        per_group = math.ceil(shards / groups)
        group_steps, group_memory = awaiter(per_group, awaited, size * RESULT_BYTES)
        group_steps += STEPS_CHILD_END  # it watches the parent at its end too
        group_memory += shards * 16  # the whole shard table in its source, as a variable
        parent_steps, parent_memory = awaiter(groups, groups, per_group * SHARD_PASSING_BYTES)
        if report:
            group_steps += _report_steps(per_group, per_group * size, False)
            parent_steps += _report_steps(shards, count, True)
        return SplitPlan(count, parallelism, groups, per_child, size, shards,
                         _child_steps(size, per_child, spec), parent_steps, child_memory,
                         parent_memory, most, groups, awaited, group_steps, group_memory)
    parent_steps, parent_memory = awaiter(shards, needed, size * RESULT_BYTES)
    if report:
        parent_steps += _report_steps(shards, count, True)
    return SplitPlan(count, parallelism, needed, per_child, size, shards,
                     _child_steps(size, per_child, spec), parent_steps, child_memory,
                     parent_memory, most)


def split_problem(spec: JobSpec) -> str | None:
    """What the platform could not run of a split job, naming the bound, or None."""
    p = split_plan(spec)
    if p.child_steps > STEP_BUDGET:
        return (f"a child of {p.tasks_per_child} task(s) at once needs {p.child_steps:,} steps "
                "in the worst case, over the "
                f"{STEP_BUDGET:,} wfgen allows of a child execution's 100,000; use a longer "
                "heartbeat, a shorter timeout or fewer retries")
    if p.children_at_once > MAX_CHILDREN_AT_ONCE:
        per_child = p.most_per_child
        why = ("" if per_child == MAX_CONCURRENT_BRANCHES else
               f" (a child's {STEP_BUDGET:,} steps pay the heartbeats of {per_child} tasks at "
               "once over the timeout; a longer heartbeat or shorter timeout allows more)")
        return (f"parallelism {p.parallelism} needs {p.children_at_once} group executions at "
                f"once, each awaiting up to {MAX_CHILDREN_AT_ONCE} child executions of up to "
                f"{per_child} tasks each{why}, over the {MAX_CHILDREN_AT_ONCE} one parent "
                "execution awaits at once (concurrent iterations); at most "
                f"{MAX_CHILDREN_AT_ONCE ** 2 * per_child} VMs at once")
    if p.group_steps > STEP_BUDGET or p.group_memory > MEMORY_BUDGET:
        return (f"a group execution awaiting {math.ceil(p.shards / p.groups)} shards needs "
                f"{p.group_steps:,} steps and about {p.group_memory // 1024} KB of variables "
                f"in the worst case, over the {STEP_BUDGET:,} steps and "
                f"{MEMORY_BUDGET // 1024} KB wfgen allows; use a shorter timeout or fewer "
                "tasks")
    if p.child_memory > MEMORY_BUDGET:
        return (f"a shard of {p.shard_size} tasks needs about {p.child_memory // 1024} KB of "
                f"workflow variables, over the {MEMORY_BUDGET // 1024} KB wfgen allows of a "
                "child execution's 512 KB; use smaller items")
    if p.parent_steps > STEP_BUDGET:
        return (f"the parent execution needs {p.parent_steps:,} steps in the worst case "
                f"({p.shards} shards, polling {p.children_at_once} children at once over the "
                f"timeout), over the {STEP_BUDGET:,} wfgen allows of 100,000; use a shorter "
                "timeout or fewer tasks")
    if p.parent_memory > MEMORY_BUDGET:
        return (f"the parent execution needs about {p.parent_memory // 1024} KB of variables "
                f"for {p.shards} shards, over the {MEMORY_BUDGET // 1024} KB wfgen allows")
    return None


def quota_problem(spec: JobSpec) -> tuple[str, str] | None:
    """(field, why) when the job could run more VMs or GPUs at once than the spec
    allows (`tasks.max_vms`, `quota.gpus`), or None."""
    tasks = spec.data["tasks"]
    vms = 1 if tasks is None else min(tasks["parallelism"], len(items_of(spec)))
    if tasks is not None and tasks.get("max_vms") is not None and vms > tasks["max_vms"]:
        return ("tasks.max_vms", f"the job runs up to {vms} VMs at once (parallelism "
                f"{tasks['parallelism']}), over tasks.max_vms {tasks['max_vms']}")
    accelerator = spec.data["machine"].get("accelerator") or {}
    quota = (spec.data.get("quota") or {}).get("gpus")
    if accelerator and quota is not None:
        gpus = vms * accelerator["count"]
        if gpus > quota:
            return ("quota.gpus", f"{vms} VMs at once x {accelerator['count']} GPUs = {gpus} "
                    f"GPUs, over the project's GPU quota of {quota} (quota.gpus); lower "
                    f"tasks.parallelism to {quota // accelerator['count']} or less")
    return None


def describe(spec: JobSpec) -> list[str]:
    """`wfgen validate`'s lines on how a fan-out runs: in one execution or split (and why)."""
    tasks = spec.data["tasks"]
    report = ([f"report: {tasks['report']}, one JSON line per task, in index order"
               + (" (each child uploads its shard's part, the parent composes them)"
                  if tasks.get("split") else "")] if has_report(spec) else [])
    if not tasks.get("split"):
        return [f"one execution: {len(items_of(spec))} tasks, {tasks['parallelism']} at once "
                "(fits Cloud Workflows' limits; no split)", *report]
    why = one_execution_problem(spec)
    p = split_plan(spec)
    children = "child" if p.children_at_once == 1 else "children"
    shape = (
        f"split: {p.count} tasks in {p.shards} shards of up to {p.shard_size} (child "
        f"executions), {p.children_at_once} {children} at once x {p.tasks_per_child} tasks at "
        f"once = {p.peak_vms} VMs at most") if not p.groups else (
        f"split, nested: {p.count} tasks in {p.shards} shards of up to {p.shard_size}, in "
        f"{p.groups} groups (child executions of the group workflow, all at once), each "
        f"running {p.shards_per_group_at_once} shards at once x {p.tasks_per_child} tasks at "
        f"once = {p.peak_vms} VMs at most")
    group = f", each group up to {p.group_steps:,}" if p.groups else ""
    return [
        ("split (asked by tasks.split: true)" if why is None else
         f"split, as it does not fit one execution: {why[0].lower() + why[1:]}"),
        shape,
        f"worst-case billed steps: parent {p.parent_steps:,}{group}, each child up to "
        f"{p.child_steps:,} (of 100,000); about {p.steps_per_task:.0f} per task",
        *report,
    ]
