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
    from wfgen.errors import Location, SpecError, UsageError
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec
    from wfgen.job.validate import looks_like_workflow
    from wfgen.output import is_stdout, write_output

    try:
        spec = load_spec(args.job)
    except SpecError:
        if looks_like_workflow(args.job):  # checked only on failure: generate stays fast
            raise UsageError("this is a Cloud Workflows file (it has a main block or a list of "
                             "steps), not a job spec: `wfgen generate` turns a job spec into "
                             "such a file. Check it with `wfgen validate`, run it with `wfgen "
                             "run --local`, deploy it with gcloud.",
                             Location(args.job)) from None
        raise
    if spec.data["tasks"] is not None and spec.data["tasks"].get("split"):
        return _write_split(spec, args.output)
    text = render_workflow(spec)
    write_output(text, args.output)
    if not is_stdout(args.output):
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _write_split(spec: object, output: str | None) -> int:
    """A split job is two workflows: the parent at -o, the shard workflow beside it."""
    from wfgen.errors import UsageError
    from wfgen.job.render_split import (
        GROUP_SUFFIX,
        SHARD_SUFFIX,
        render_split,
        shard_output_path,
    )
    from wfgen.output import is_stdout, write_output

    if is_stdout(output):
        raise UsageError("a split job (tasks.split) is two workflows, the parent and its "
                         "shard workflow: give -o PARENT.yaml (the shard workflow is written "
                         "beside it as PARENT-shard.yaml)")
    split = render_split(spec)  # type: ignore[arg-type]
    written = []
    for suffix, source in ((SHARD_SUFFIX, split.shard), (GROUP_SUFFIX, split.group)):
        if source is not None:
            written.append(shard_output_path(str(output), suffix))
            write_output(source, written[-1])
    write_output(split.parent, output)
    print(f"wrote {output} and {' and '.join(written)} (deploy each as the first's name + "
          "its suffix)", file=sys.stderr)
    return 0
