"""What fits in one Cloud Workflows execution: its 100,000 steps (a long
timeout with a short heartbeat, every fan-out task's attempts) and its 512 KB
of variables (a fan-out's items and results). wfgen.job.spec refuses a spec
that does not fit, naming the numbers; wfgen.job.tasks holds a fan-out's items
to the same figures.

Limits are the design of a fan-out. All tasks run inside one execution, so:

- its 100,000 steps pay for every task's attempts and for the heartbeats of the
  tasks that run at once (at most `parallelism` over the whole timeout);
- its 512 KB of variables hold the items, every task's small result (no output
  tail: the tails are in each task's logs) and the variables of the tasks that
  run at once;
- at most 20 iterations of a parallel loop run concurrently.

`plan` computes both bounds from the spec and says, with the numbers, what does
not fit and the largest task count that would. The per-task figures below are
counted from the generated workflow (steps) and estimated like the engine's
accounting (bytes); tests/test_fanout.py runs the workflow and checks the step
figures hold."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from wfgen.job.model import JobSpec, container_payload
from wfgen.job.rules import MAX_TASKS, format_duration
from wfgen.limits import (
    MAX_CONCURRENT_BRANCHES,
    MAX_STEPS,
    MAX_STRING_BYTES,
    MAX_VARIABLE_BYTES,
)

# Steps (billed, each counted once per execution). A task on its success path
# (one attempt: callback, insert, one wait, delete, its result) and the extra
# steps of each further attempt; one heartbeat wake of a running task.
STEPS_PER_TASK = 16
STEPS_PER_RETRY = 14
STEPS_PER_HEARTBEAT = 3
STEPS_FIXED = 10  # main: check the argument, resolve the container, collect, return
STEP_BUDGET = int(0.9 * MAX_STEPS)  # leave room: running out leaves VMs behind
STEPS_PER_MESSAGE = 2  # a notify message: its publish (and a log when that fails)

# Variable memory, in the engine's accounting (a string: its length + 8; a map:
# 16 + its keys and values). A task's result {"index", "status", "exit_code",
# "attempts", "instance"} with a 63-character instance name:
RESULT_BYTES = 210
# The variables of one running task besides its container and item: the callback,
# the VM's report (up to a 4 KB output tail, held by the event and by the
# returned map), a VM description, names and times.
TASK_FRAME_BYTES = 12 * 1024
MAIN_FIXED_BYTES = 4 * 1024
MEMORY_BUDGET = int(0.9 * MAX_VARIABLE_BYTES)

# tasks.report (templates/report.yaml.j2): one JSON line per task, uploaded by the
# execution that holds the results (a split job's child uploads its shard's part)
REPORT_LINE_BYTES = 170  # a task's result as compact JSON (a 63-character instance, a zone)
STEPS_REPORT_WRITE = 4  # build the text, upload it, drop it (and a log when it fails)
REPORT_MOST_LINES = MAX_STRING_BYTES // REPORT_LINE_BYTES  # a report (or part): one string


@dataclass(frozen=True)
class Plan:
    """What a fan-out spec asks for, and what fits."""

    count: int
    parallelism: int
    items_bytes: int  # the items as compact JSON
    largest_item_bytes: int
    container_bytes: int
    steps: int  # worst case over the timeout
    max_count_steps: int  # the most tasks the step limit allows
    memory: int  # estimated bytes of variables at the fullest
    max_count_memory: int  # the most tasks of this average item size that fit


def item_text(item: Any) -> str:
    """WFGEN_TASK_ITEM: a string as it is, anything else as compact JSON with sorted
    keys (what the workflow's json.encode_to_string writes)."""
    if isinstance(item, str):
        return item
    return json.dumps(item, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def items_of(spec: JobSpec) -> list[Any]:
    """The spec's work items (`count: N` is the items 0..N-1)."""
    tasks = spec.data["tasks"]
    return list(tasks["items"]) if tasks["items"] is not None else list(range(tasks["count"]))


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def notify_steps(spec: JobSpec) -> tuple[int, int]:
    """Steps of the notify messages: (per retried attempt, once per execution)."""
    events = (spec.data.get("notify") or {}).get("events") or []
    return (STEPS_PER_MESSAGE if "retry" in events else 0,
            STEPS_PER_MESSAGE if "end" in events else 0)


def steps_needed(count: int, parallelism: int, retries: int, timeout_s: int,
                 heartbeat_s: int, messages: tuple[int, int] = (0, 0)) -> int:
    """Worst-case billed steps: every task uses all its attempts, and `parallelism`
    tasks wake at every heartbeat for the whole timeout."""
    beats = math.ceil(timeout_s / heartbeat_s)
    return (STEPS_FIXED + messages[1]
            + count * (STEPS_PER_TASK + retries * (STEPS_PER_RETRY + messages[0]))
            + min(parallelism, count) * beats * STEPS_PER_HEARTBEAT)


def has_report(spec: JobSpec) -> bool:
    return bool((spec.data.get("tasks") or {}).get("report"))


def report_bytes(count: int) -> int:
    """Variables of a report's upload: the results as JSON, then as JSON Lines, both
    held for a moment."""
    return 2 * count * REPORT_LINE_BYTES


def memory_needed(count: int, parallelism: int, items_bytes: int, largest_item_bytes: int,
                  container_bytes: int, report: bool = False) -> int:
    """Estimated variable bytes at the fullest: the container (its base64 text, the
    decoded map, the argument), the items (their base64 text or the argument, the
    decoded list, the results list made from it), every result, and the tasks
    running at once (each with two copies of the container, in run_task and
    run_job, and its item thrice: the loop's value, the env, the container's env)."""
    running = min(parallelism, count)
    return (MAIN_FIXED_BYTES + 3 * container_bytes + 3 * items_bytes + count * RESULT_BYTES
            + running * (TASK_FRAME_BYTES + 2 * container_bytes + 3 * largest_item_bytes)
            + (report_bytes(count) if report else 0))


def plan(spec: JobSpec) -> Plan:
    items = items_of(spec)
    count = len(items)
    parallelism = spec.data["tasks"]["parallelism"]
    retries = spec.data["retries"]
    items_bytes = _json_size(items)
    largest = max(len(item_text(i).encode("utf-8")) for i in items)
    container_bytes = _json_size(container_payload(spec)) + 200  # + the task's env
    if spec.plan is not None:  # each running task's failover state (wfgen.job.capacity)
        from wfgen.job.capacity import state_bytes

        container_bytes += state_bytes(spec.plan) // 2  # counted twice per running task
    messages = notify_steps(spec)
    report = has_report(spec)
    steps = steps_needed(count, parallelism, retries, spec.timeout_s, spec.heartbeat_s,
                         messages) + (STEPS_REPORT_WRITE if report else 0)
    per_task = STEPS_PER_TASK + retries * (STEPS_PER_RETRY + messages[0])
    beats = math.ceil(spec.timeout_s / spec.heartbeat_s)
    fixed_steps = (STEPS_FIXED + messages[1] + (STEPS_REPORT_WRITE if report else 0)
                   + min(parallelism, count) * beats * STEPS_PER_HEARTBEAT)
    max_steps = max(0, (STEP_BUDGET - fixed_steps) // per_task)
    memory = memory_needed(count, parallelism, items_bytes, largest, container_bytes, report)
    average = items_bytes / count
    fixed = (MAIN_FIXED_BYTES + 3 * container_bytes
             + parallelism * (TASK_FRAME_BYTES + 2 * container_bytes + 3 * largest))
    per_result = RESULT_BYTES + (report_bytes(1) if report else 0)
    max_memory = max(0, int((MEMORY_BUDGET - fixed) // (per_result + 3 * average + 1)))
    return Plan(count, parallelism, items_bytes, largest, container_bytes, steps,
                min(max_steps, MAX_TASKS), memory, min(max_memory, MAX_TASKS))


def steps_problem(spec: JobSpec) -> str | None:
    """Why the tasks' worst case would run past the step limit, with the numbers."""
    p = plan(spec)
    if p.steps <= STEP_BUDGET:
        return None
    retries = spec.data["retries"]
    beats = math.ceil(spec.timeout_s / spec.heartbeat_s)
    running = min(p.parallelism, p.count)
    per_retry = STEPS_PER_RETRY + notify_steps(spec)[0]
    return (f"{p.count} tasks x {STEPS_PER_TASK + retries * per_retry} steps (up to "
            f"{retries + 1} attempts) + {running} tasks at once x {beats} heartbeats x "
            f"{STEPS_PER_HEARTBEAT} steps = {p.steps:,} steps in the worst case, over the "
            f"{STEP_BUDGET:,} wfgen allows of the {MAX_STEPS:,} an execution may run; "
            + (f"at most {p.max_count_steps} tasks fit" if p.max_count_steps else
               "not even one task fits")
            + " (or use a longer heartbeat, a shorter timeout, fewer retries or a lower "
              "parallelism)")


def memory_problem(spec: JobSpec) -> str | None:
    """Why every task's result (and the running tasks) would not fit in the 512 KB of
    variables an execution may hold, with the numbers."""
    p = plan(spec)
    if p.memory <= MEMORY_BUDGET:
        return None
    items = (f" ({p.items_bytes:,} bytes of items as JSON)"
             if spec.data["tasks"]["items"] is not None else "")
    return (f"{p.count} tasks{items} at parallelism {p.parallelism} need about "
            f"{p.memory // 1024:,} KB of workflow variables "
            f"(items, a {RESULT_BYTES}-byte result per task"
            + (f" and {report_bytes(1)} bytes for its line of tasks.report"
               if has_report(spec) else "")
            + f", {p.parallelism} at once), "
            f"over the {MEMORY_BUDGET // 1024} KB wfgen allows of the "
            f"{MAX_VARIABLE_BYTES // 1024} KB an execution may hold; "
            + (f"at most {p.max_count_memory} tasks of this size fit" if p.max_count_memory
               else "not even one task fits")
            + " (or use smaller items or a lower parallelism)")


def default_parallelism(count: int) -> int:
    return min(count, MAX_CONCURRENT_BRANCHES)



# Cloud Workflows ends an execution after 100,000 steps, and then nothing deletes
# the VM but its maxRunDuration backstop: keep well clear of it.
STEPS_PER_ATTEMPT = 30
MAX_RUN_DURATION_S = 120 * 86400  # Compute Engine's limit for maxRunDuration


def budget_problem(spec: JobSpec) -> str | None:
    """Why the timeout/heartbeat pair (with the tasks, if any) cannot work, or None."""
    timeout, heartbeat = spec.timeout_s, spec.heartbeat_s
    if spec.data.get("tasks") is not None and not spec.data["tasks"].get("split"):
        problem = steps_problem(spec)
        if problem:
            return problem
    beats = timeout // heartbeat
    per_retry, fixed = notify_steps(spec)
    steps = (beats * STEPS_PER_HEARTBEAT + fixed
             + (spec.data["retries"] + 1) * (STEPS_PER_ATTEMPT + per_retry))
    if steps > 0.9 * MAX_STEPS:
        shortest = format_duration(-(-timeout * STEPS_PER_HEARTBEAT // int(0.8 * MAX_STEPS)))
        longest = longest_timeout(spec)
        return (f"a {format_duration(timeout)} timeout with a {format_duration(heartbeat)} "
                f"heartbeat needs about {steps} workflow steps, over the 100,000 an execution "
                "may run; use "
                + (f"a timeout of at most {format_duration(longest)} with this heartbeat, or "
                   if longest else "")
                + f"a heartbeat of at least {shortest}")
    if timeout + heartbeat + 300 > MAX_RUN_DURATION_S:
        return ("timeout plus heartbeat may be at most 120 days less 5 minutes (Compute "
                "Engine's longest maxRunDuration, the VM's backstop)")
    return None



def longest_timeout(spec: JobSpec) -> int:
    """The longest timeout (whole heartbeats) whose steps fit the budget with the
    spec's heartbeat and retries (a job without tasks); 0 if none does."""
    room = 0.9 * MAX_STEPS - (spec.data["retries"] + 1) * STEPS_PER_ATTEMPT
    beats = int(room // STEPS_PER_HEARTBEAT)
    return max(0, beats * spec.heartbeat_s) if beats > 1 else 0
