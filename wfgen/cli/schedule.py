"""`wfgen schedule JOB.yaml --cron CRON`: start the job on a cron, with a Cloud
Scheduler job whose HTTP target is the Workflow Executions API (OAuth token of
a service account; Google APIs take OAuth, not OIDC). The cron, time zone and
--data are checked before any call; re-running updates the schedule;
--delete removes it; --list shows the workflow's schedules."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from wfgen.cli.cloud_common import CLOUD_EPILOG, add_place, backend_for, load_target, table
from wfgen.errors import UsageError

HELP = "start a job on a cron schedule (Cloud Scheduler)"
EXAMPLES = ("examples:\n  wfgen schedule job.yaml --cron '0 3 * * *' --time-zone Europe/Paris\n"
            "  wfgen schedule job.yaml --cron '*/30 9-17 * * MON-FRI' --name office-hours "
            "--data '{\"args\": [\"--quick\"]}'\n"
            "  wfgen schedule job.yaml --list\n"
            "  wfgen schedule job.yaml --delete [--name office-hours]\n\n"
            "The job's workflow is deployed first when its source changed. The schedule's "
            "service account (default: the workflow's own) needs roles/workflows.invoker.\n"
            + CLOUD_EPILOG)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="JOB.yaml|WORKFLOW.yaml", help="a job spec or a workflow YAML")
    p.add_argument("--cron", metavar="'M H DOM MON DOW'",
                   help="when to start the job: 5 unix-cron fields, e.g. '0 3 * * *'")
    p.add_argument("--time-zone", metavar="TZ",
                   help="the IANA time zone the cron is read in (default Etc/UTC)")
    p.add_argument("--data", metavar="JSON",
                   help="the execution argument of every scheduled run (checked like run "
                        "--data)")
    p.add_argument("--service-account", metavar="EMAIL",
                   help="the account Cloud Scheduler starts executions as (default: the "
                        "workflow's own); it needs roles/workflows.invoker")
    p.add_argument("--name", help="the schedule's name (default: the workflow's name)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--delete", action="store_true", help="delete the schedule")
    action.add_argument("--list", action="store_true",
                        help="list the workflow's schedules with their next run")
    add_place(p)


def run(args: argparse.Namespace) -> int:
    from wfgen.job import schedule as rules

    target = load_target(args.file)
    schedule_id = args.name or target.workflow_id
    if not rules.SCHEDULE_ID.fullmatch(schedule_id):
        raise UsageError(f"--name {schedule_id!r}: a schedule's name is up to 500 letters, "
                         "digits, - or _")
    if args.delete or args.list:
        given = [f"--{n.replace('_', '-')}" for n in ("cron", "time_zone", "data",
                                                       "service_account")
                 if getattr(args, n) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} apply when creating a schedule, not with "
                             f"--{'delete' if args.delete else 'list'}")
        backend = backend_for(args, target)
        workflow = backend.workflow_name(target.workflow_id)
        if args.list:
            return _list(backend, workflow)
        name = backend.schedule_name(schedule_id)
        backend.delete_schedule(name)
        print(f"wfgen: deleted the schedule {name}", file=sys.stderr)
        return 0
    if args.cron is None:
        raise UsageError("--cron is required (e.g. --cron '0 3 * * *'), or --list / --delete")
    cron = rules.check_cron(args.cron)
    time_zone = rules.check_time_zone(args.time_zone or rules.DEFAULT_TIME_ZONE)
    argument = job_argument(target, args.data)
    body = rules.execution_body(argument)
    backend = backend_for(args, target)
    workflow = deploy_quietly(target, backend)
    account = args.service_account or backend.workflow_service_account(workflow)
    name = backend.schedule_name(schedule_id)
    uri = rules.executions_uri(workflow)
    result = backend.put_schedule(
        name, cron=cron, time_zone=time_zone, uri=uri, body=body.encode(),
        service_account=account, description=f"wfgen: starts {target.workflow_id}")
    print(f"wfgen: {'created' if result.created else 'updated'} the schedule {name}: "
          f"{cron} ({time_zone}), next run {result.next_run or '-'}, as {account}",
          file=sys.stderr)
    line = ["gcloud", "scheduler", "jobs", "create" if result.created else "update", "http",
            schedule_id, f"--location={backend.location}", f"--project={backend.project}",
            f"--schedule={cron}", f"--time-zone={time_zone}", f"--uri={uri}",
            "--http-method=POST", "--headers=Content-Type=application/json",
            f"--message-body={body}", f"--oauth-service-account-email={account}"]
    print("wfgen: the same with gcloud:\n  " + shlex.join(line), file=sys.stderr)
    print(result.name)
    return 0


def job_argument(target: Any, data: str | None) -> Any:
    """--data checked as `run --data` checks it (a fan-out job's may carry `items`)."""
    if not target.is_job:
        from wfgen.cli.run_cloud import _argument

        return _argument(data, None)
    from wfgen.job.arguments import parse_job_argument
    from wfgen.job.spec import load_spec

    return parse_job_argument(data, load_spec(target.path))


def deploy_quietly(target: Any, backend: Any) -> str:
    """Deploy the workflow when its source changed (keeping its service account)."""
    revision = backend.deploy(backend.workflow_name(target.workflow_id), target.source)
    if revision.changed:
        print(f"wfgen: deployed {revision.name}: revision {revision.revision_id}",
              file=sys.stderr)
    return str(revision.name)


def _list(backend: Any, workflow: Any) -> int:
    from wfgen.job import schedule as rules

    schedules = backend.list_schedules(rules.executions_uri(workflow))
    if not schedules:
        print(f"wfgen: no schedule starts {workflow}", file=sys.stderr)
        return 0
    rows = [["NAME", "SCHEDULE", "TIME_ZONE", "STATE", "NEXT_RUN", "LAST_RUN", "DATA"]]
    for s in schedules:
        last = s.last_attempt or "-"
        if s.last_error:
            last += f" (failed: {s.last_error})"
        rows.append([s.name.rsplit("/", 1)[-1], s.schedule, s.time_zone, s.state,
                     s.next_run or "-", last,
                     json.dumps(s.argument) if s.argument is not None else "-"])
    print(table(rows))
    return 0
