"""`wfgen logs EXECUTION [--follow]`: the job's own output. With --follow it
ends after the last line the job's VMs wrote and exits as `wfgen run` does
(0, the container's exit code, 125), so a script can wait on a detached run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wfgen.cli.cloud_common import CLOUD_EPILOG, add_execution, execution_arg
from wfgen.errors import ExecutionFailed

HELP = "print a job's output: from its VM's console, or Cloud Logging once the VM is gone"
EXAMPLES = ("examples:\n  wfgen logs projects/P/locations/us-central1/workflows/W/executions/ID\n"
            "  wfgen logs ID --workflow job.yaml --follow\n\n" + CLOUD_EPILOG)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_execution(p)
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new output until the execution ends, then exit "
                        "with the job's status (as `wfgen run`)")


def run(args: argparse.Namespace) -> int:
    backend, name = execution_arg(args)
    if args.follow:
        return _follow(backend, name)
    for line in backend.logs(name):
        sys.stdout.write(line + "\n")
    return 0


def _follow(backend: Any, name: str) -> int:
    """The output of the VMs already gone (from the logs), then every VM's
    console as it is written until the execution has ended and its VMs are
    gone, then what the live stream missed; the job's exit status."""
    from wfgen.backends.base import SUCCEEDED
    from wfgen.backends.follow import Event, follow, missed_output
    from wfgen.cli.cloud_common import job_of
    from wfgen.cli.follow import exit_status

    shown: dict[str, int] = {}

    def show(vm: str, line: str) -> None:
        shown[vm] = shown.get(vm, 0) + 1
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    present = {vm.name for vm in backend.list_vms(name)}
    for vm, line in backend.logged_output(backend.get(name), skip=present):
        show(vm, line)
    ended = None
    for item in follow(backend, name, interval=backend.poll_interval):
        if isinstance(item, Event):
            if item.kind == "output":
                show(item.vm, item.text)
        else:
            ended = item
    assert ended is not None  # follow() returns early only when told to stop
    for vm, line in missed_output(backend, ended, shown):
        show(vm, line)
    if ended.state == SUCCEEDED:
        return 0
    job = job_of(ended)
    message = job.get("message") if isinstance(job, dict) else None
    raise ExecutionFailed(f"{name}: execution {ended.state}"
                          + (f": {message}" if message else ""), exit_status(ended.state, job))
