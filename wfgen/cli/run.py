"""`wfgen run [--local] FILE`: run a job spec or any workflow YAML, on this machine
(--local) or on Cloud Workflows (wfgen.cli.run_cloud)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfgen.backends.base import ACTIVE, Execution
from wfgen.cli.follow import (
    Console,
    exit_status,
    job_result,
    print_result,
    stop_signals,
)
from wfgen.errors import EXIT_NOT_RUN, ExecutionFailed, Interrupted, UsageError, WfgenError

if TYPE_CHECKING:
    from wfgen.backends.local import LocalBackend

HELP = "run a job spec or a workflow on Cloud Workflows, or here with --local"
EXAMPLES = (
    "examples:\n  wfgen run job.yaml                  # deploy if changed, run, follow\n"
    "  wfgen run job.yaml --detach         # print the execution name and return\n"
    "  wfgen run resnet-train --data '{\"args\": [\"--epochs\", \"3\"]}'   # a deployed one\n"
    "  wfgen run --local examples/hello.yaml\n"
    "  wfgen run --local job.yaml --data '{\"args\": [\"--lr\", \"0.1\"]}'\n"
    "  wfgen run --local some-workflow.yaml --data '{\"name\": \"x\"}'\n"
    "  wfgen run --local job.yaml --heartbeat 2s --fault preempt@3s\n"
    "  wfgen run --local job.yaml --secret wandb-key=@~/.wandb.key   # container.secret_env\n"
    "  wfgen run --local --on-host job.yaml      # no docker here: run the command on this host\n\n"
    "host (--local): wfgen's own VM agent always runs; a job's container runs through\n"
    "docker when a docker daemon answers here. Without one, --on-host runs the container's\n"
    "command as a host process in a scratch directory (the image is not used; it runs as\n"
    "your user, with your files in reach); without --on-host such a run stops before\n"
    "creating anything (exit 125). A workflow file's VM whose startup script is not wfgen's\n"
    "agent runs that script on this host only with --on-host (else its insert fails).\n\n"
    "faults (--fault, repeatable; each acts on the first VM of the run, in a fan-out job\n"
    "on the first VM of task 0, or of task N with ,task=N: preempt@3s,task=2):\n"
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
    p.add_argument("--on-host", action="store_true",
                   help="--local: let local VMs run on this host: a job's command where no "
                        "container engine works, any startup script that is not wfgen's VM "
                        "agent (opt-in: it runs on this machine, as you, not in a container)")
    p.add_argument("--data", help="the execution argument, as JSON")
    p.add_argument("--stats", action="store_true",
                   help="print the billed steps and what they would cost in Cloud Workflows")
    p.add_argument("--fault", action="append", default=[], metavar="FAULT",
                   help="inject a fault into a local job run (list below)")
    p.add_argument("--heartbeat", metavar="DURATION",
                   help="override the job's heartbeat for a local run (e.g. 2s)")
    p.add_argument("--timeout", metavar="DURATION",
                   help="override the job's timeout for a local run (e.g. 1m)")
    p.add_argument("--secret", action="append", default=[], metavar="NAME=@FILE",
                   help="--local without wfgen serve: the value of secret NAME (for "
                        "container.secret_env), read from FILE (repeatable)")
    from wfgen.cli.run_cloud import add_cloud_arguments

    add_cloud_arguments(p)


def run(args: argparse.Namespace) -> int:
    from wfgen.job.validate import looks_like_workflow

    if not args.local:
        if args.secret:
            raise UsageError("--secret applies to --local runs; the VMs of this run read "
                             "Secret Manager: gcloud secrets create NAME --data-file=FILE")
        from wfgen.cli.run_cloud import run_cloud

        return run_cloud(args)
    cloud_only = [f"--{n.replace('_', '-')}" for n in ("detach", "project", "location",
                                                       "service_account", "name")
                  if getattr(args, n)]
    if cloud_only:
        raise UsageError(f"{', '.join(cloud_only)} {_verb(cloud_only)} to runs on Cloud "
                         "Workflows, not --local")
    if looks_like_workflow(args.file):
        job_only = [f"--{n.replace('_', '-')}" for n in ("fault", "heartbeat", "timeout",
                                                          "secret")
                    if getattr(args, n)]
        if job_only:
            raise UsageError(f"{', '.join(job_only)} {_verb(job_only)} to job specs; "
                             f"{args.file} is a "
                             "workflow (run it as it is, or run its job spec)")
        return run_workflow_file(args.file, args.data, stats=args.stats, on_host=args.on_host)
    return run_job(args.file, args.data, stats=args.stats, faults=args.fault,
                   heartbeat=args.heartbeat, timeout=args.timeout, on_host=args.on_host,
                   secrets=args.secret, staging=args.staging)


NO_ENGINE = ("no container engine works here (no docker daemon answers), so the image {image} "
             "cannot run; nothing was created. Its command could run as a host process on this "
             "machine instead, as {user}. {opt_in}")


def _execution_name(project: str, location: str, workflow: str) -> str:
    return (f"projects/{project}/locations/{location}/workflows/{workflow}"
            f"/executions/{uuid.uuid4()}")


def _follow(backend: LocalBackend, name: str, source: str, argument: Any, *,
            filename: str, console: Console, services: Any = None) -> Execution:
    """Start the execution and wait for it; every VM is deleted on every path,
    and a stop signal cancels the execution first (then Interrupted)."""
    with stop_signals(on_repeat=backend.hurry_up) as stopped:
        try:
            record = backend.start_source(name, source, argument, filename=filename,
                                          services=services)
            while backend.wait(name, 0.1).state == ACTIVE and not stopped:
                pass
        finally:
            if stopped:
                console.notify(f"{signal.Signals(stopped[0]).name}: stopping the workflow, "
                               "then deleting every local VM")
                with contextlib.suppress(WfgenError):
                    backend.cancel(name)
                hurry_after(STOP_GRACE_S, backend.hurry_up)
            left = backend.shutdown()
            if left:
                console.notify(f"deleted {', '.join(left)}")
        if stopped:
            raise Interrupted(stopped[0], "interrupted: the workflow was stopped and every "
                              "local VM deleted")
    return record


# After a stop signal the VMs' shutdown scripts get this long (their reports may be
# retrying against an unreachable callback), so that one Ctrl-C exits within 2 s.
STOP_GRACE_S = 1.0


def hurry_after(seconds: float, hurry: Any) -> threading.Timer:
    """Call hurry() (cut shutdown scripts short) after `seconds`, on a daemon timer."""
    timer = threading.Timer(seconds, hurry)
    timer.daemon = True
    timer.start()
    return timer


def fallback_result(state: str, payload: str | None) -> dict[str, Any]:
    """A result map for an execution that ended before the job could give one (an
    insert refused for quota, say), so that every ending prints one."""
    try:
        error = json.loads(payload) if payload else None
    except ValueError:
        error = payload
    message = error.get("message") if isinstance(error, dict) else error
    return {"status": "cancelled" if state == "CANCELLED" else "error", "exit_code": None,
            "message": str(message), "error": error}


def _stats(record: Execution, stats: bool, tasks: int | None = None) -> None:
    if stats:
        from wfgen.engine.billing import describe_billing

        print(describe_billing(*record.steps), file=sys.stderr)
        if tasks:
            total = sum(record.steps)
            print(f"wfgen: {tasks} tasks: {total / tasks:.1f} billed steps per task on average "
                  f"({total} in total, the execution's own steps included)", file=sys.stderr)


def run_job(path: str, data: str | None, *, stats: bool = False, faults: list[str] | None = None,
            heartbeat: str | None = None, timeout: str | None = None,
            console: Console | None = None, on_host: bool = True,
            secrets: list[str] | None = None, staging: str | None = None) -> int:
    """A job spec's whole lifecycle here: generate, run, delete every VM."""
    from wfgen.backends.local import LocalBackend
    from wfgen.job.arguments import parse_job_argument
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec
    from wfgen.local.faults import Faults

    notes: list[str] = []
    spec = load_spec(path, heartbeat=heartbeat, timeout=timeout, notes=notes)
    argument = parse_job_argument(data, spec)
    parsed_faults = Faults.parse(faults or [])
    _check_fault_tasks(parsed_faults, spec, argument)
    from wfgen.job.workdir import prepare

    packed = prepare(spec, staging)  # named by its content: the workflow passes the name
    split = None
    if spec.data["tasks"] is not None and spec.data["tasks"].get("split"):
        from wfgen.job.render_split import render_split

        split = render_split(spec)  # the parent runs here; the shard workflow is deployed
        text = split.parent
    else:
        text = render_workflow(spec)
    from wfgen.local import host_policy
    from wfgen.local.vm import container_engine_works

    image = spec.data["container"]["image"]
    engine = container_engine_works()
    if not on_host and not engine:  # the rule of wfgen.local.host_policy, before any call
        raise WfgenError(NO_ENGINE.format(image=image, user=host_policy.host_user(),
                                           opt_in=host_policy.OPT_IN))
    if on_host and not engine:  # the command runs on this host: it must be known
        from wfgen.job.validate import on_host_problem

        given = argument if isinstance(argument, dict) else {}
        problem = None if given.get("command") or given.get("script") is not None \
            else on_host_problem(spec)
        if problem:
            raise UsageError(f"{spec.path}: {problem}; nothing was started")
    console = console or Console()
    project = spec.data["project"] or "local-project"
    local_secrets = _local_secrets(spec, argument, project, secrets or [])
    storage = _storage_metadata(spec)
    if packed is not None and spec.workdir_uri:
        from wfgen.backends.cloud_staging import stage

        stage(packed, spec.workdir_uri, console.notify)
    if split is not None and split.staged_items:
        from wfgen.backends.cloud_staging import stage_items

        stage_items(split.staged_items, console.notify)
    backend = LocalBackend(project=project, location=spec.data["location"],
                           notify=console.notify, output=console.output, faults=parsed_faults,
                           log_sink=console.log, use_container_engine=engine, on_host=on_host,
                           project_metadata={**(local_secrets.project_metadata
                                                if local_secrets else {}),
                                             **storage} or None)
    for note in notes:
        console.notify(note)
    name = _execution_name(project, spec.data["location"], spec.name)
    if split is not None:  # the workflows the parent starts
        for other, source in split.others(spec.name):
            backend.deploy(name.split("/executions/")[0].rsplit("/", 1)[0] + "/" + other,
                           source)
    console.notify(f"running {spec.name} locally (execution {name.rsplit('/', 1)[-1]})")
    try:
        record = _follow(backend, name, text, argument, filename=f"{spec.path} (generated)",
                         console=console)
    except Interrupted as exc:
        print_result({"status": "cancelled", "exit_code": None, "message": str(exc)})
        raise
    finally:
        if local_secrets is not None:
            local_secrets.close()
    payload = record.error.payload if record.error else None
    job = job_result(record.state, record.result, payload)
    if record.state == "SUCCEEDED":
        console.notify("execution succeeded")
    else:
        console.notify(f"execution failed: {record.error.context if record.error else '?'}")
    print_result(job if isinstance(job, dict) else fallback_result(record.state, payload))
    count = None
    if spec.data["tasks"] is not None:
        from wfgen.job.budget import items_of

        count = len((argument or {}).get("items") or items_of(spec))
    _stats(record, stats, count)
    code = exit_status(record.state, job)
    if code:
        raise ExecutionFailed(f"{spec.name}: execution {record.state}"
                              + (f", exit code {code}" if code != EXIT_NOT_RUN else ""), code)
    return 0


def _storage_metadata(spec: Any) -> dict[str, str]:
    """Where a local run's VMs move inputs and outputs: the Cloud Storage of
    STORAGE_EMULATOR_HOST (wfgen serve prints it); nothing for a job without data."""
    if not spec.data["inputs"] and not spec.data["outputs"] and not spec.data["workdir"]:
        return {}
    host = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if not host:
        raise UsageError(f"{spec.path}: inputs, outputs and workdir need a Cloud Storage: start "
                         "`wfgen serve` and set the STORAGE_EMULATOR_HOST it prints "
                         "(or run the job against serve or Google); nothing was started")
    url = host if "://" in host else f"http://{host}"
    if not re.fullmatch(r"https?://[A-Za-z0-9.:-]+/?", url):
        raise UsageError(f"STORAGE_EMULATOR_HOST={host[:80]!r}: expected HOST:PORT or "
                         "http://HOST:PORT")
    return {"wfgen-storage-endpoint": url.rstrip("/")}


def _local_secrets(spec: Any, argument: Any, project: str, options: list[str]) -> Any:
    """Where this run's VMs read container.secret_env (wfgen.server.local_secrets);
    None for a job without secrets, which gets no Secret Manager at all."""
    if spec.data["container"]["secret_env"] is None:
        if options:
            raise UsageError("--secret: the job spec has no container.secret_env")
        return None
    from wfgen.server.local_secrets import LocalSecrets

    given = (argument or {}).get("secret_env") or {}
    found = LocalSecrets(project, options)
    problem = found.missing({**spec.data["container"]["secret_env"], **given}, project)
    if problem:
        found.close()
        env_name, why = problem
        if env_name in given:
            raise UsageError(f"--data: secret_env.{env_name}: {why}")
        raise UsageError(why, spec.location(f"container.secret_env.{env_name}"))
    return found


def _verb(flags: list[str]) -> str:
    return "applies" if len(flags) == 1 else "apply"


def _check_fault_tasks(faults: Any, spec: Any, argument: Any) -> None:
    """A fault's task=N must name a task of this run (a plain job has none)."""
    if not faults.tasks:
        return
    if faults.target == "node":
        _check_fault_nodes(faults, spec)
        return
    if spec.data["tasks"] is None:
        raise UsageError(f"--fault ...,task=N: {spec.name} is not a fan-out job (no tasks: "
                         "block); leave out task=N")
    from wfgen.job.budget import items_of

    count = len((argument or {}).get("items") or items_of(spec))
    for fault, task in faults.tasks.items():
        if task >= count:
            raise UsageError(f"--fault {fault},task={task}: this run has {count} task(s), "
                             f"numbered 0 to {count - 1}")


def _check_fault_nodes(faults: Any, spec: Any) -> None:
    """A fault's node=N must name a node of this multi-node job."""
    count = spec.data["nodes"]
    if count <= 1:
        raise UsageError(f"--fault ...,node=N: {spec.name} is not a multi-node job (no "
                         "nodes: N); leave out node=N")
    for fault, node in faults.tasks.items():
        if node >= count:
            raise UsageError(f"--fault {fault},node={node}: this job has {count} nodes, "
                             f"ranks 0 to {count - 1}")


def run_workflow_file(path: str, data: str | None, *, stats: bool = False,
                      services: Any = None, on_host: bool = False) -> int:
    """Any workflow file on the engine, with local Compute Engine and callbacks."""
    from wfgen.backends.local import LocalBackend
    from wfgen.engine import WorkflowSyntaxError
    from wfgen.engine.parse import step_position
    from wfgen.yamlload import read_source

    text = read_source(path)
    console = Console()
    backend = LocalBackend(notify=console.notify, output=console.output,
                           log_sink=_json_log_line, on_host=on_host)  # starts nothing yet
    try:
        workflow = backend.parsed(text, path)  # kept: start_source parses it no more
    except WorkflowSyntaxError as exc:
        raise UsageError("\n".join(f"{path}:{i.line}:{i.column}: {i.message}"
                                    for i in exc.issues)) from None
    argument: Any = None
    if data is not None:
        from wfgen.engine.values import data_argument

        try:  # 64-bit integers, bounded nesting, no lone surrogates
            argument = data_argument(data)
        except ValueError as exc:
            raise UsageError(f"--data: {exc}") from None
    name = _execution_name("local-project", "us-central1", Path(path).stem or "workflow")
    record = _follow(backend, name, text, argument, filename=path, console=console,
                     services=services)
    _stats(record, stats)
    if record.state == "SUCCEEDED":
        print_result(record.result)
        return 0
    error = record.error
    step = (error.step if error else None) or "?"
    sub = error.subworkflow if error else None
    where = f" in subworkflow '{sub}'" if sub not in (None, "main") else ""
    line, col = step_position(workflow, sub, error.step if error else None)
    at = f"{path}:{line}:{col}" if line else path
    raise ExecutionFailed(f"{at}: execution {record.state} at step '{step}'{where}: "
                          f"{error.payload if error else ''}")


def _json_log_line(entry: dict[str, Any]) -> None:
    """sys.log entries of a plain workflow: one JSON line each on stderr."""
    print(json.dumps(entry, default=str, ensure_ascii=False), file=sys.stderr, flush=True)
