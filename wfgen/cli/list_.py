"""`wfgen list [NAME]`: recent executions, newest first (list_.py: a module named
`list` would shadow the builtin in the wfgen.cli package)."""

from __future__ import annotations

import argparse
import sys

from wfgen.cli.cloud_common import (
    CLOUD_EPILOG,
    add_place,
    backend_for,
    exit_code_of,
    human_duration,
    seconds_between,
    table,
    workflow_arg,
)
from wfgen.errors import UsageError

HELP = "list recent executions (of one workflow, or of every workflow in the location)"
EXAMPLES = ("examples:\n  wfgen list\n  wfgen list resnet-train\n  wfgen list job.yaml "
            "--limit 5\n\n" + CLOUD_EPILOG)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("workflow", nargs="?", metavar="NAME|JOB.yaml",
                   help="a workflow's name or job spec (default: every workflow)")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    add_place(p)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit}: give a number of executions, 1 or more")
    if args.workflow:
        backend, workflow = workflow_arg(args, args.workflow)
        workflows = [workflow]
    else:
        backend = backend_for(args)
        workflows = backend.workflows()
    executions = [ex for wf in workflows for ex in backend.list(wf, limit=args.limit)]
    executions.sort(key=lambda ex: ex.start_time, reverse=True)
    executions = executions[:args.limit]
    if not executions:
        print(f"wfgen: no executions in {', '.join(workflows) or backend.location}",
              file=sys.stderr)
        return 0
    rows = [["ID", "WORKFLOW", "STATE", "START", "DURATION", "EXIT"]]
    for ex in executions:
        rows.append([ex.id, ex.workflow.rsplit("/", 1)[-1], ex.state, ex.start_time or "-",
                     human_duration(seconds_between(ex.start_time, ex.end_time)),
                     exit_code_of(ex)])
    print(table(rows))
    return 0
