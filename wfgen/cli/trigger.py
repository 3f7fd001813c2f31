"""`wfgen trigger JOB.yaml --pubsub-topic projects/P/topics/T`: start the job
once per message published on a Pub/Sub topic, with an Eventarc trigger
(event type google.cloud.pubsub.topic.v1.messagePublished) whose destination
is the job's workflow. Eventarc hands the workflow a CloudEvent; the generated
workflow reads the message's data as its execution argument (the same JSON
as `run --data`). Re-running updates the trigger; --delete, --list."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from typing import Any

from wfgen.cli.cloud_common import CLOUD_EPILOG, add_place, backend_for, load_target, table
from wfgen.errors import UsageError

HELP = "start a job for every message on a Pub/Sub topic (Eventarc)"
EXAMPLES = ("examples:\n  wfgen trigger job.yaml --pubsub-topic projects/my-project/topics/jobs\n"
            "  gcloud pubsub topics publish jobs --message='{\"args\": [\"--epochs\", \"3\"]}'\n"
            "  wfgen trigger job.yaml --list\n"
            "  wfgen trigger job.yaml --pubsub-topic projects/my-project/topics/jobs --delete\n\n"
            "Each message's data is the execution argument (JSON, the keys of run --data); a "
            "message that is not, fails its execution before any VM is made. The trigger's "
            "service account needs roles/eventarc.eventReceiver and roles/workflows.invoker.\n"
            + CLOUD_EPILOG)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="JOB.yaml|WORKFLOW.yaml", help="a job spec or a workflow YAML")
    p.add_argument("--pubsub-topic", metavar="projects/P/topics/T",
                   help="the topic whose messages start the job")
    p.add_argument("--service-account", metavar="EMAIL",
                   help="the account Eventarc starts executions as (default: the project's "
                        "Compute Engine default account)")
    p.add_argument("--name", help="the trigger's name (default: WORKFLOW-TOPIC, lower case)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--delete", action="store_true", help="delete the trigger")
    action.add_argument("--list", action="store_true", help="list the workflow's triggers")
    add_place(p)


def default_name(workflow_id: str, topic: str) -> str:
    """WORKFLOW-TOPIC, lower case, in the characters and length Eventarc allows."""
    text = f"{workflow_id}-{topic.rsplit('/', 1)[-1]}".lower()
    text = re.sub(r"[^a-z0-9-]+", "-", text).strip("-")
    text = re.sub(r"^[^a-z]+", "", text)[:63].rstrip("-")
    return text or "wfgen-trigger"


def run(args: argparse.Namespace) -> int:
    from wfgen.job import schedule as rules

    target = load_target(args.file)
    topic = args.pubsub_topic
    if topic is not None and not rules.TOPIC.fullmatch(topic):
        raise UsageError(f"--pubsub-topic {topic!r} must be projects/PROJECT/topics/TOPIC (a "
                         "topic id is 3-255 letters, digits or -._~+%, starting with a letter, "
                         "not with goog)")
    if args.list:
        if topic is not None or args.service_account:
            raise UsageError("--list takes no --pubsub-topic or --service-account")
        backend = backend_for(args, target)
        return _list(backend, backend.workflow_name(target.workflow_id))
    if args.name is None and topic is None:
        raise UsageError("--pubsub-topic projects/P/topics/T is required (or --name with "
                         "--delete, or --list)")
    trigger_id = args.name or default_name(target.workflow_id, topic or "")
    if not rules.TRIGGER_ID.fullmatch(trigger_id):
        raise UsageError(f"--name {trigger_id!r}: a trigger's name starts with a lowercase "
                         "letter, then up to 62 lowercase letters, digits or -")
    if args.delete:
        if args.service_account:
            raise UsageError("--service-account applies when creating a trigger")
        backend = backend_for(args, target)
        name = backend.trigger_name(trigger_id)
        backend.delete_trigger(name)
        print(f"wfgen: deleted the trigger {name}", file=sys.stderr)
        return 0
    if topic is None:
        raise UsageError("--pubsub-topic projects/P/topics/T is required")
    backend = backend_for(args, target)
    from wfgen.cli.schedule import deploy_quietly

    workflow = deploy_quietly(target, backend)
    name = backend.trigger_name(trigger_id)
    result = backend.put_trigger(name, topic=topic, workflow=workflow,
                                 service_account=args.service_account)
    print(f"wfgen: {'created' if result.created else 'updated'} the trigger {name}: each "
          f"message on {topic} starts {workflow}", file=sys.stderr)
    line = ["gcloud", "eventarc", "triggers", "create" if result.created else "update",
            trigger_id, f"--location={backend.location}", f"--project={backend.project}",
            f"--destination-workflow={target.workflow_id}",
            f"--destination-workflow-location={workflow.split('/')[3]}",
            f"--event-filters=type={rules.PUBSUB_EVENT}"]
    if result.created:
        line.append(f"--transport-topic={topic}")
    if args.service_account:
        line.append(f"--service-account={args.service_account}")
    publish = ["gcloud", "pubsub", "topics", "publish", topic.rsplit("/", 1)[-1],
               f"--project={topic.split('/')[1]}", '--message={"args": ["..."]}']
    print("wfgen: the same with gcloud:\n  " + shlex.join(line)
          + "\nwfgen: start a run:\n  " + shlex.join(publish), file=sys.stderr)
    print(result.name)
    return 0


def _list(backend: Any, workflow: str) -> int:
    triggers = backend.list_triggers(workflow)
    if not triggers:
        print(f"wfgen: no trigger starts {workflow}", file=sys.stderr)
        return 0
    rows = [["NAME", "TOPIC", "SERVICE_ACCOUNT"]]
    rows += [[t.name.rsplit("/", 1)[-1], t.topic, t.service_account or "-"] for t in triggers]
    print(table(rows))
    return 0
