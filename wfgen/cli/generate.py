"""`wfgen generate JOB.yaml [-o FILE]`: the workflow YAML of a job spec."""

from __future__ import annotations

import argparse
import sys

HELP = "emit the workflow YAML for a job spec"
EXAMPLES = ("examples:\n  wfgen generate job.yaml > workflow.yaml\n"
            "  wfgen generate job.yaml -o workflow.yaml")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", help="the job spec (YAML)")
    p.add_argument("-o", "--output", help="write here instead of stdout (atomically)")


def run(args: argparse.Namespace) -> int:
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec
    from wfgen.output import is_stdout, write_output

    text = render_workflow(load_spec(args.job))
    write_output(text, args.output)
    if not is_stdout(args.output):
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
