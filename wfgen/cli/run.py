"""`wfgen run --local FILE`: run a job spec or any workflow YAML on this machine."""

from __future__ import annotations

import argparse

from wfgen.errors import UsageError

HELP = "run a job spec or any workflow YAML"
EXAMPLES = (
    "examples:\n  wfgen run --local examples/hello.yaml\n"
    "  wfgen run --local job.yaml --data '{\"args\": [\"--lr\", \"0.1\"]}'\n"
    "  wfgen run --local some-workflow.yaml --data '{\"name\": \"x\"}'\n"
    "  wfgen run --local job.yaml --heartbeat 2s --fault preempt@3s\n"
    "  wfgen run --local --on-host job.yaml      # no docker here: run the command on this host\n\n"
    "containers: a job's container runs through docker when a docker daemon answers here.\n"
    "Without one, --on-host runs the container's command as a host process in a scratch\n"
    "directory (the image is not used; it runs as your user, with your files in reach);\n"
    "without --on-host such a run stops before creating anything (exit 125).\n\n"
    "faults (--fault, repeatable; each acts on the first VM of the run):\n"
    "  preempt@DELAY        preempt the VM DELAY after it boots (500ms, 5s, 2m)\n"
    "  vanish@DELAY         the VM disappears without a word\n"
    "  refuse-callbacks=N   the callback endpoint answers 503 to the first N requests\n"
    "  insert-fail[=MSG]    instances.insert fails (e.g. quota)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a job spec or a workflow YAML")
    p.add_argument("--local", action="store_true",
                   help="run here on wfgen's own Workflows engine (no cloud account)")
    p.add_argument("--on-host", action="store_true",
                   help="without a container engine, run the job's command as a host process "
                        "(opt-in: it runs on this machine, not in a container)")
    p.add_argument("--data", help="the execution argument, as JSON")
    p.add_argument("--stats", action="store_true",
                   help="print the billed steps and what they would cost in Cloud Workflows")
    p.add_argument("--fault", action="append", default=[], metavar="FAULT",
                   help="inject a fault into a local job run (list below)")
    p.add_argument("--heartbeat", metavar="DURATION",
                   help="override the job's heartbeat for a local run (e.g. 2s)")
    p.add_argument("--timeout", metavar="DURATION",
                   help="override the job's timeout for a local run (e.g. 1m)")


def run(args: argparse.Namespace) -> int:
    from wfgen.job.validate import looks_like_workflow

    if not args.local:
        raise UsageError("running in GCP is not available yet; use `wfgen run --local FILE` "
                         "(or deploy the generated YAML with gcloud: see the README)")
    if looks_like_workflow(args.file):
        from wfgen.engine.command import run_workflow_command

        job_only = [f"--{n.replace('_', '-')}" for n in ("fault", "heartbeat", "timeout",
                                                          "on_host") if getattr(args, n)]
        if job_only:
            raise UsageError(f"{', '.join(job_only)} apply to job specs; {args.file} is a "
                             "workflow (run it as it is, or run its job spec)")
        return run_workflow_command(args.file, args.data, stats=args.stats)
    from wfgen.local.runner import run_job_command

    return run_job_command(args.file, args.data, stats=args.stats, faults=args.fault,
                           heartbeat=args.heartbeat, timeout=args.timeout,
                           on_host=args.on_host)
