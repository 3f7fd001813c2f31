"""`wfgen gc [--delete]`: VMs that wfgen's workflows left behind.

A VM is left behind when its execution is no longer ACTIVE (cancelled with
gcloud or the console, which runs no cleanup step), or when it has outlived
its maxRunDuration backstop. VMs whose execution cannot be found are listed
but kept, unless they are that old."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wfgen.cli.cloud_common import (
    CLOUD_EPILOG,
    add_place,
    backend_for,
    human_duration,
    seconds_between,
    table,
)
from wfgen.errors import UsageError

HELP = "list (or --delete) VMs left by executions that are no longer running"
EXAMPLES = "examples:\n  wfgen gc\n  wfgen gc --delete\n\n" + CLOUD_EPILOG
GRACE_S = 300  # Compute Engine may take a few minutes to act on maxRunDuration


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--delete", action="store_true", help="delete them (and wait until gone)")
    add_place(p, spec=False)  # gc takes no job spec


def run(args: argparse.Namespace) -> int:
    backend = backend_for(args)
    states: dict[str, str] = {}
    rows = [["NAME", "ZONE", "STATUS", "AGE", "EXECUTION", "WHY"]]
    stale: list[Any] = []
    for vm in backend.list_vms():
        why = _why_stale(backend, vm, states)
        age = seconds_between(vm.created)
        expired = (vm.max_run_duration_s is not None and age is not None
                   and age > vm.max_run_duration_s + GRACE_S)
        if expired:
            why = f"older than its maxRunDuration ({human_duration(vm.max_run_duration_s)})"
        if why is None:
            continue
        keep = why.startswith("kept")
        if not keep:
            stale.append(vm)
        rows.append([vm.name, vm.zone, vm.status, human_duration(age),
                     vm.execution.rsplit("/", 1)[-1] if vm.execution else
                     vm.labels.get("wfgen-execution", "-"), why])
    if len(rows) == 1:
        print(f"wfgen: no VM left behind in project {backend.project}", file=sys.stderr)
        return 0
    print(table(rows))
    if not stale:
        return 0
    if not args.delete:
        print(f"wfgen: {len(stale)} VM(s) left behind; `wfgen gc --delete` deletes them",
              file=sys.stderr)
        return 0
    deleted = backend.delete_vms(stale)
    print(f"wfgen: deleted {', '.join(deleted) or 'nothing'}", file=sys.stderr)
    return 0


def _why_stale(backend: Any, vm: Any, states: dict[str, str]) -> str | None:
    """Why the VM is left behind; None if its execution is running; 'kept: ...'
    when it cannot be told."""
    if not vm.execution:
        return (f"kept: no workflow for job {vm.labels.get('wfgen-job', '?')!r} "
                f"in {backend.location}")
    if vm.execution not in states:
        try:
            states[vm.execution] = backend.get(vm.execution).state
        except UsageError:  # not found
            states[vm.execution] = "NOT_FOUND"
    state = states[vm.execution]
    if state == "ACTIVE":
        return None
    return "its execution was not found" if state == "NOT_FOUND" else f"its execution is {state}"
