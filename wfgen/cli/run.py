"""`wfgen run [--local] FILE`: run a job spec or any workflow YAML, on this machine
(--local) or on Cloud Workflows (wfgen.cli.run_cloud)."""

from __future__ import annotations

import argparse

from wfgen.errors import UsageError

HELP = "run a job spec or a workflow on Cloud Workflows, or here with --local"
EXAMPLES = (
    "examples:\n  wfgen run job.yaml                  # deploy if changed, run, follow\n"
    "  wfgen run job.yaml --detach         # print the execution name and return\n"
    "  wfgen run resnet-train --data '{\"args\": [\"--epochs\", \"3\"]}'   # a deployed one\n"
    "  wfgen run --local examples/hello.yaml\n"
    "  wfgen run --local job.yaml --data '{\"args\": [\"--lr\", \"0.1\"]}'\n"
    "  wfgen run --local some-workflow.yaml --data '{\"name\": \"x\"}'\n"
    "  wfgen run --local job.yaml --heartbeat 2s --fault preempt@3s\n\n"
    "faults (--fault, repeatable; each acts on the first VM of the run):\n"
    "  preempt@DELAY        preempt the VM DELAY after it boots (500ms, 5s, 2m)\n"
    "  vanish@DELAY         the VM disappears without a word\n"
    "  refuse-callbacks=N   the callback endpoint answers 503 to the first N requests\n"
    "  insert-fail[=MSG]    instances.insert fails (e.g. quota)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE|NAME",
                   help="a job spec or a workflow YAML (or, without --local, a deployed "
                        "workflow's name)")
    p.add_argument("--local", action="store_true",
                   help="run here on wfgen's own Workflows engine (no cloud account)")
    p.add_argument("--data", help="the execution argument, as JSON")
    p.add_argument("--stats", action="store_true",
                   help="print the billed steps and what they would cost in Cloud Workflows")
    p.add_argument("--fault", action="append", default=[], metavar="FAULT",
                   help="inject a fault into a local job run (list below)")
    p.add_argument("--heartbeat", metavar="DURATION",
                   help="override the job's heartbeat for a local run (e.g. 2s)")
    p.add_argument("--timeout", metavar="DURATION",
                   help="override the job's timeout for a local run (e.g. 1m)")
    from wfgen.cli.run_cloud import add_cloud_arguments

    add_cloud_arguments(p)


def run(args: argparse.Namespace) -> int:
    from wfgen.job.validate import looks_like_workflow

    if not args.local:
        from wfgen.cli.run_cloud import run_cloud

        return run_cloud(args)
    cloud_only = [f"--{n.replace('_', '-')}" for n in ("detach", "project", "location",
                                                       "service_account", "name")
                  if getattr(args, n)]
    if cloud_only:
        raise UsageError(f"{', '.join(cloud_only)} apply to runs on Cloud Workflows, not --local")
    if looks_like_workflow(args.file):
        from wfgen.engine.command import run_workflow_command

        job_only = [f"--{n}" for n in ("fault", "heartbeat", "timeout") if getattr(args, n)]
        if job_only:
            raise UsageError(f"{', '.join(job_only)} apply to job specs; {args.file} is a "
                             "workflow (run it as it is, or run its job spec)")
        return run_workflow_command(args.file, args.data, stats=args.stats)
    from wfgen.local.runner import run_job_command

    return run_job_command(args.file, args.data, stats=args.stats, faults=args.fault,
                           heartbeat=args.heartbeat, timeout=args.timeout)
