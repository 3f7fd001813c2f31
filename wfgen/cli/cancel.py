"""`wfgen cancel EXECUTION`: stop it, and delete the VMs it left behind.

Cancelling a Workflows execution runs none of its cleanup steps, so its VM
would otherwise run until its maxRunDuration."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wfgen.cli.cloud_common import CLOUD_EPILOG, add_execution, execution_arg
from wfgen.errors import UsageError

HELP = "cancel an execution and delete its VMs (waits until they are gone)"
EXAMPLES = ("examples:\n  wfgen cancel projects/P/locations/us-central1/workflows/W/executions/ID\n"
            "  wfgen cancel ID --workflow job.yaml\n\n" + CLOUD_EPILOG)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_execution(p)


def run(args: argparse.Namespace) -> int:
    backend, name = execution_arg(args)
    try:
        ex = backend.cancel(name)
        print(f"wfgen: cancelled {name} ({ex.state})", file=sys.stderr)
    except UsageError as exc:
        if "is not running" not in str(exc):
            raise
        print(f"wfgen: {exc}", file=sys.stderr)
    vms = backend.list_vms(name)
    if vms:
        print(f"wfgen: deleting {', '.join(vm.name for vm in vms)}...", file=sys.stderr)
    deleted = backend.delete_vms(vms)
    print(f"wfgen: deleted {', '.join(deleted)}" if deleted else "wfgen: no VM was left",
          file=sys.stderr)
    policies = delete_placements(backend, name, vms)
    if policies:
        print(f"wfgen: deleted the placement policies {', '.join(policies)}", file=sys.stderr)
    return 0


def delete_placements(backend: Any, name: str, vms: list[Any]) -> list[str]:
    """A multi-node execution's compact placement policies (in its VMs' regions
    and the workflow's), once its VMs are gone: a cancel runs no cleanup step."""
    location = name.split("/locations/", 1)[1].split("/", 1)[0] if "/locations/" in name \
        else ""
    regions = {vm.zone.rpartition("-")[0] for vm in vms} | ({location} if location else set())
    return backend.delete_placements(name, sorted(regions))
