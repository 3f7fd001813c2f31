"""`wfgen deploy JOB.yaml|WORKFLOW.yaml`: create or update the workflow, once."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from wfgen.cli.cloud_common import CLOUD_EPILOG, Target, add_place, backend_for, load_target

HELP = "deploy a job spec's workflow (or a workflow YAML) to Cloud Workflows"
EXAMPLES = ("examples:\n  wfgen deploy job.yaml\n"
            "  wfgen deploy job.yaml --location europe-west4 "
            "--service-account wf@my-project.iam.gserviceaccount.com\n"
            "  wfgen deploy flow.yaml --name nightly-flow\n\n"
            "An unchanged source is not deployed again. The revision id goes to stdout.\n"
            + CLOUD_EPILOG)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="JOB.yaml|WORKFLOW.yaml", help="a job spec or a workflow YAML")
    add_deploy_options(p)


def add_deploy_options(p: argparse.ArgumentParser) -> None:
    add_place(p)
    p.add_argument("--service-account", metavar="EMAIL",
                   help="the service account the workflow runs as (it creates the VMs)")
    p.add_argument("--name", help="the workflow's name (default: the job's name, or the "
                                  "workflow file's name)")
    p.add_argument("--staging", metavar="gs://BUCKET/PREFIX",
                   help="where a job's workdir is uploaded (default: the spec's staging)")


def gcloud_line(target: Target, workflow: str, service_account: str | None) -> str:
    """The gcloud commands that do what this deploy did."""
    parts = workflow.split("/")
    project, location, workflow_id = parts[1], parts[3], parts[5]
    source = target.path
    lines = []
    if target.is_job:
        source = "workflow.yaml"
        lines.append(f"wfgen generate {shlex.quote(target.path)} -o {source}")
    deploy = ["gcloud", "workflows", "deploy", workflow_id, f"--source={source}",
              f"--location={location}", f"--project={project}"]
    if service_account:
        deploy.append(f"--service-account={service_account}")
    lines.append(shlex.join(deploy))
    return "\n".join(f"  {line}" for line in lines)


def deploy_target(args: argparse.Namespace, target: Target, backend: Any) -> Any:
    """Deploy when the source changed; the Revision now serving."""
    for extra_id, source in target.extra:  # a split job's shard workflow
        extra = backend.deploy(backend.workflow_name(extra_id), source,
                               service_account=args.service_account)
        print(f"wfgen: deployed {extra.name}: revision {extra.revision_id}" if extra.changed
              else f"wfgen: {extra.name} is unchanged", file=sys.stderr)
    workflow = backend.workflow_name(target.workflow_id)
    revision = backend.deploy(workflow, target.source, service_account=args.service_account)
    if revision.changed:
        print(f"wfgen: deployed {revision.name}: revision {revision.revision_id}",
              file=sys.stderr)
    else:
        print(f"wfgen: {revision.name} is unchanged (revision {revision.revision_id}); "
              "nothing to deploy", file=sys.stderr)
    return revision


def run(args: argparse.Namespace) -> int:
    target = load_target(args.file, args.name, args.staging)
    backend = backend_for(args, target)
    revision = deploy_target(args, target, backend)
    print("wfgen: the same with gcloud:\n" + gcloud_line(target, revision.name,
                                                       args.service_account), file=sys.stderr)
    print(revision.revision_id)
    return 0
