"""`wfgen logs EXECUTION [--follow]`: the job's own output."""

from __future__ import annotations

import argparse
import sys

from wfgen.cli.cloud_common import CLOUD_EPILOG, add_execution, execution_arg

HELP = "print a job's output: from its VM's console, or Cloud Logging once the VM is gone"
EXAMPLES = ("examples:\n  wfgen logs projects/P/locations/us-central1/workflows/W/executions/ID\n"
            "  wfgen logs ID --workflow job.yaml --follow\n\n" + CLOUD_EPILOG)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_execution(p)
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new output until the execution ends")


def run(args: argparse.Namespace) -> int:
    backend, name = execution_arg(args)
    for line in backend.logs(name, follow=args.follow):
        sys.stdout.write(line + "\n")
        if args.follow:
            sys.stdout.flush()
    return 0
