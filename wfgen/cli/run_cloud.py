"""`wfgen run JOB.yaml|NAME` without --local: deploy if the source changed,
start an execution on Cloud Workflows (or `wfgen serve`), and follow it the
way `run --local` does: lifecycle lines and the job's own output (read live
from the VM's serial console) on stderr, the result JSON on stdout, and the
same exit status (0, the container's exit code, 125). Ctrl-C cancels the
execution and deletes its VMs; a second Ctrl-C detaches instead."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
from typing import Any

from wfgen.cli.cloud_common import backend_for, is_file, load_target, workflow_arg
from wfgen.errors import ExecutionFailed, Interrupted, UsageError

LOCAL_ONLY = ("stats", "fault", "heartbeat", "timeout")


def add_cloud_arguments(p: argparse.ArgumentParser) -> None:
    from wfgen.cli.deploy import add_deploy_options

    p.add_argument("--detach", action="store_true",
                   help="start the execution, print its name and return (not with --local)")
    add_deploy_options(p)


def run_cloud(args: argparse.Namespace) -> int:
    from wfgen.cli.follow import Console

    given = [f"--{n}" for n in LOCAL_ONLY if getattr(args, n, None)]
    if given:
        raise UsageError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to "
                         "local runs: add --local")
    console = Console()
    if is_file(args.file):
        from wfgen.cli.deploy import deploy_target

        target = load_target(args.file, args.name, args.staging)
        argument = _argument(args.data, target)
        backend = backend_for(args, target)
        workflow = deploy_target(args, target, backend).name
    else:
        if args.name or args.service_account:
            raise UsageError(f"--name and --service-account apply when deploying a file; "
                             f"{args.file!r} names a deployed workflow")
        argument = _argument(args.data, None)
        backend, workflow = workflow_arg(args, args.file)
    ex = backend.start(workflow, argument)
    if args.detach:
        print(ex.name)
        console.notify(f"execution {ex.id} started; follow it with `wfgen logs --follow "
                       f"{ex.name}`")
        return 0
    console.notify(f"execution {ex.id} created ({ex.name})")
    return _follow(backend, ex.name, console)


def _argument(data: str | None, target: Any) -> Any:
    """--data: a job's checked by the job model's rules (a fan-out job's may carry
    items); a plain workflow's is any JSON."""
    if target is not None and target.is_job:
        from wfgen.job.arguments import parse_job_argument
        from wfgen.job.spec import load_spec

        return parse_job_argument(data, load_spec(target.path))
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise UsageError(f"--data is not valid JSON: {exc}") from None


def _follow(backend: Any, name: str, console: Any) -> int:
    from wfgen.backends.follow import Event, follow, missed_output
    from wfgen.cli.follow import exit_status, job_result, print_result, stop_signals

    def detach() -> None:
        raise KeyboardInterrupt

    with stop_signals(on_repeat=detach) as stopped:
        ended = None
        shown: dict[str, int] = {}  # VM -> lines of its output shown live
        for item in follow(backend, name, interval=backend.poll_interval,
                           stop=lambda: bool(stopped)):
            if isinstance(item, Event):
                if item.kind == "output":
                    shown[item.vm] = shown.get(item.vm, 0) + 1
                _show(item, console)
            else:
                ended = item
        if ended is None:
            _cancel(backend, name, console, stopped)
    # Output the live stream missed (a VM that came and went between two polls,
    # as short fan-out tasks do; lines printed just before a delete): from
    # Cloud Logging, which has every line, in order
    for vm, line in missed_output(backend, ended, shown):
        console.output(vm, line)
    job = job_result(ended.state, ended.result, ended.error.payload if ended.error else None)
    if isinstance(job, dict) and "tasks" in job:  # a fan-out job, or a split job's summary
        counts = job.get("counts") if isinstance(job.get("counts"), dict) else job
        console.notify(f"job report: status {job['status']}, {counts.get('succeeded')} task(s) "
                       f"succeeded, {counts.get('failed')} failed")
    elif isinstance(job, dict) and "status" in job:
        console.notify(f"job report: status {job['status']}, exit code "
                       f"{job.get('exit_code')}, attempts {job.get('attempts')}")
    if ended.state == "SUCCEEDED":
        console.notify("execution succeeded")
        print_result(ended.result)
        return 0
    if isinstance(job, dict):
        print_result(job)
    code = exit_status(ended.state, job)
    raise ExecutionFailed(f"{name}: execution {ended.state}: {_describe(ended)}", code)


def _show(event: Any, console: Any) -> None:
    if event.kind == "output":
        console.output(event.vm, event.text)
    elif event.kind == "created":
        console.notify(f"VM {event.vm} created (attempt {event.attempt or '?'})")
    elif event.kind == "waiting":
        console.notify(f"VM {event.vm} waiting for capacity (flex-start) since {event.text}")
    elif event.kind == "deleted":
        console.notify(f"VM {event.vm} deleted")
    elif event.kind == "report":
        console.notify(f"report received from {event.vm}")


def _describe(ex: Any) -> str:
    from wfgen.backends.cloud import error_value

    value = error_value(ex)
    if isinstance(value, dict) and value.get("message"):
        return str(value["message"])
    if ex.error and ex.error.context:
        return ex.error.context.splitlines()[0]
    return "no error message" if ex.state != "CANCELLED" else "cancelled outside wfgen"


def _cancel(backend: Any, name: str, console: Any, stopped: list[int]) -> None:
    """First signal: cancel and delete the VMs; a second one detaches."""
    signum = stopped[0]
    console.notify(f"{signal.Signals(signum).name}: cancelling {name} and deleting its VMs "
                   "(Ctrl-C again to detach and leave it running)")
    try:
        with contextlib.suppress(UsageError):  # it had ended meanwhile
            backend.cancel(name)
        vms = backend.list_vms(name)
        deleted = backend.delete_vms(vms)
        from wfgen.cli.cancel import delete_placements

        deleted += delete_placements(backend, name, vms)
    except KeyboardInterrupt:
        raise Interrupted(signum, f"detached: {name} may still be running; "
                          f"`wfgen cancel {name}` stops it and deletes its VMs") from None
    console.notify(f"deleted {', '.join(deleted)}" if deleted else "no VM was left")
    message = f"interrupted: {name} was cancelled and its VMs deleted"
    from wfgen.cli.follow import print_result

    print_result({"status": "cancelled", "exit_code": None, "message": message})  # as --local
    raise Interrupted(signum, message)
