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
            "  wfgen status ID --workflow job.yaml\n\n" + CLOUD_EPILOG)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_execution(p)


def run(args: argparse.Namespace) -> int:
    from wfgen.backends.cloud import error_value

    backend, name = execution_arg(args)
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
    from wfgen.cli.colour import status_words

    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        shown = status_words(value, sys.stdout) if key == "state" else value
        print(f"{key.ljust(width)}  {shown}")
    if ex.state in ("ACTIVE", "SUCCEEDED"):
        return 0
    from wfgen.cli.follow import exit_status

    raise ExecutionFailed(f"{name}: execution {ex.state}", exit_status(ex.state, report))
