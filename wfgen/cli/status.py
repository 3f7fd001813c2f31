"""`wfgen status EXECUTION`: where an execution is, in a few lines.

Exit status, one rule with `wfgen run`'s: 0 while the execution is ACTIVE or
once it SUCCEEDED; after it FAILED or was CANCELLED, what `run` exits with
(the container's exit code when it ran and failed, else 125); 2 bad usage."""

from __future__ import annotations

import argparse
import json
import sys

from wfgen.cli.cloud_common import (
    CLOUD_EPILOG,
    add_execution,
    execution_arg,
    exit_code_of,
    human_duration,
    job_of,
    seconds_between,
)
from wfgen.errors import ExecutionFailed

HELP = "show an execution: state, step, attempt, VM, duration, result or error"
EXAMPLES = ("examples:\n  wfgen status projects/P/locations/us-central1/workflows/W/executions/ID\n"
            "  wfgen status ID --workflow job.yaml\n"
            "  wfgen status ID --workflow job.yaml --task 900\n\n" + CLOUD_EPILOG)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_execution(p)
    add_task(p)


def add_task(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", type=int, metavar="N",
                   help="a split job's task N: the child execution that runs it, and its VM")


def run(args: argparse.Namespace) -> int:
    from wfgen.backends.cloud import error_value

    backend, name = execution_arg(args)
    if args.task is not None:
        return _task(backend, name, args.task)
    ex = backend.get(name)
    vms = backend.list_vms(name) if ex.state == "ACTIVE" else []
    rows = [("execution", ex.name), ("state", ex.state)]
    if ex.current_step:
        rows.append(("step", ex.current_step))
    for vm in vms:
        rows.append(("attempt", str(vm.attempt or "?")))
        rows.append(("vm", f"{vm.name} ({vm.zone}) {vm.status}"))
    rows.append(("started", ex.start_time or "-"))
    if ex.end_time:
        rows.append(("ended", ex.end_time))
    rows.append(("duration", human_duration(seconds_between(ex.start_time, ex.end_time))))
    report = job_of(ex)
    if isinstance(report, dict) and "attempts" in report:
        rows.append(("attempts", str(report["attempts"])))
    if ex.state != "ACTIVE":
        rows.append(("exit code", exit_code_of(ex)))
    if ex.state == "SUCCEEDED":
        rows.append(("result", json.dumps(ex.result, ensure_ascii=False)))
    elif ex.error:
        value = error_value(ex)
        message = value.get("message") if isinstance(value, dict) else None
        rows.append(("error", str(message or ex.error.context or ex.error.payload)))
    _print(rows)
    if ex.state in ("ACTIVE", "SUCCEEDED"):
        return 0
    from wfgen.cli.follow import exit_status

    raise ExecutionFailed(f"{name}: execution {ex.state}", exit_status(ex.state, report))


def _print(rows: list[tuple[str, str]]) -> None:
    from wfgen.cli.colour import status_words

    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        shown = status_words(value, sys.stdout) if key == "state" else value
        print(f"{key.ljust(width)}  {shown}")


def _task(backend: object, parent: str, index: int) -> int:
    """One task of a split job: its child execution, VMs and result; exits as
    the task did (0 while it runs or once it succeeded, else its exit code)."""
    from wfgen.backends.split_tasks import find_task

    place = find_task(backend, parent, index)  # type: ignore[arg-type]
    result = place.result
    state = (place.child.state if result is None
             else "SUCCEEDED" if result.get("status") == "succeeded" else "FAILED")
    rows = [("task", str(index)), ("execution", place.child.name),
            ("shard", f"tasks {place.first} to {place.first + place.count - 1}"),
            ("state", state)]
    for vm in place.vms:
        rows.append(("attempt", str(vm.attempt or "?")))
        rows.append(("vm", f"{vm.name} ({vm.zone}) {vm.status}"))
    if result is not None:
        rows.append(("attempts", str(result.get("attempts", "?"))))
        rows.append(("instance", str(result.get("instance") or "-")))
        rows.append(("exit code", str(result.get("exit_code"))))
        rows.append(("result", json.dumps(result, ensure_ascii=False)))
    _print(rows)
    if state == "SUCCEEDED" or (result is None and place.child.state == "ACTIVE"):
        return 0
    from wfgen.cli.follow import exit_status

    raise ExecutionFailed(f"{parent}: task {index} {state}",
                          exit_status("FAILED", result if result is not None else {}))
