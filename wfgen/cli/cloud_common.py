"""What the cloud commands share: --project/--location, naming a workflow by
id, full name or job spec, naming an execution by full name or id, and the
few formats they print. Imports no google.* module (see backends/cloud.py)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wfgen.errors import UsageError

DEFAULT_LOCATION = "us-central1"
WORKFLOW_ID = re.compile(r"[A-Za-z](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?")
CLOUD_EPILOG = ("Against Google Cloud with Application Default Credentials; with "
                "WORKFLOWS_EMULATOR_HOST=HOST:PORT, against `wfgen serve` instead.")


def add_place(p: argparse.ArgumentParser, *, spec: bool = True) -> None:
    """--project and --location; `spec`: the command may read them from a job spec."""
    specs = "the job spec's, " if spec else ""
    p.add_argument("--project", help=f"GCP project (default: {specs}GOOGLE_CLOUD_PROJECT,"
                                     " or the credentials' project)")
    p.add_argument("--location", help=f"the workflow's region (default: {specs}"
                                      f"{'else ' if spec else ''}{DEFAULT_LOCATION})")


def add_execution(p: argparse.ArgumentParser) -> None:
    p.add_argument("execution", metavar="EXECUTION",
                   help="a full execution name (projects/P/locations/L/workflows/W/executions/ID)"
                        ", or an execution id with --workflow")
    p.add_argument("--workflow", metavar="NAME|JOB.yaml",
                   help="the workflow of an execution id: its name, or the job spec")
    add_place(p)


@dataclass
class Target:
    """A file to deploy: its workflow id, source, and where the spec puts it."""

    path: str
    workflow_id: str
    source: str
    is_job: bool
    location: str | None = None
    project: str | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)  # (id, source) deployed first


def load_target(path: str, name: str | None = None, staging: str | None = None) -> Target:
    """A job spec (rendered; its workdir staged) or a workflow YAML (checked), ready
    to deploy."""
    from wfgen.job.spec import read_source
    from wfgen.job.validate import classify

    text = read_source(path)
    if classify(text) != "workflow":
        from wfgen.job.render import render_workflow
        from wfgen.job.spec import load_spec_text

        spec = load_spec_text(text, path)
        stage_workdir(spec, staging, lambda message: print(f"wfgen: {message}",
                                                           file=sys.stderr))
        workflow_id = name or spec.name
        if spec.data["tasks"] is not None and spec.data["tasks"].get("split"):
            from wfgen.job.render_split import render_split

            split = render_split(spec)  # the shard (and group) workflows go first
            if split.staged_items:  # items past 128 KB: one object per shard
                from wfgen.backends.cloud_staging import stage_items

                stage_items(split.staged_items, lambda message: print(
                    f"wfgen: {message}", file=sys.stderr))
            extra = [(_check_id(other, "--name" if name else
                                f"{path}: name (plus {other[len(workflow_id):]})"), source)
                     for other, source in split.others(workflow_id)]
            return Target(path, _check_id(workflow_id, "--name" if name else f"{path}: name"),
                          split.parent, True, spec.data["location"], spec.data["project"],
                          extra=extra)
        return Target(path, _check_id(workflow_id, "--name" if name else f"{path}: name"),
                      render_workflow(spec), True, spec.data["location"], spec.data["project"])
    from wfgen.engine.parse import load_workflow
    from wfgen.engine.syntax import WorkflowSyntaxError

    try:
        load_workflow(text, path)
    except WorkflowSyntaxError as exc:
        issue = exc.issues[0]
        raise UsageError(f"{path}:{issue.line}:{issue.column}: {issue.message}") from None
    stem = re.sub(r"\.(workflows?\.)?ya?ml$", "", Path(path).name)
    return Target(path, _check_id(name or stem, "--name" if name else
                                  f"{path}: the file name (give --name)"), text, False)


def _check_id(value: str, where: str) -> str:
    if not WORKFLOW_ID.fullmatch(value):
        raise UsageError(f"{where}: {value!r} is not a workflow name (a letter, then up to 63 "
                         "letters, digits, - or _, ending in a letter or digit)")
    return value


def is_file(value: str) -> bool:
    return os.path.isfile(value) or value.endswith((".yaml", ".yml"))


def backend_for(args: argparse.Namespace, target: Target | None = None) -> Any:
    """The backend for the command's --project/--location (or the spec's)."""
    from wfgen.backends.cloud import connect

    location = args.location or (target.location if target else None) or DEFAULT_LOCATION
    return connect(args.project or (target.project if target else None), location)


def workflow_arg(args: argparse.Namespace, value: str) -> tuple[Any, str]:
    """(backend, full workflow name) for NAME, a full name, or a job spec path."""
    target = None
    if is_file(value):
        target = load_target(value)
        value = target.workflow_id
    elif not value.startswith("projects/"):
        _check_id(value, "workflow")
    backend = backend_for(args, target)
    return backend, backend.workflow_name(value)


def execution_arg(args: argparse.Namespace) -> tuple[Any, str]:
    """(backend, full execution name) from EXECUTION and --workflow."""
    if args.execution.startswith("projects/"):
        backend = backend_for(args)
        return backend, backend.execution_name(args.execution, None)
    if not args.workflow:
        raise UsageError(f"{args.execution!r} is an execution id: give its workflow with "
                         "--workflow NAME (or the job spec), or the full execution name")
    backend, workflow = workflow_arg(args, args.workflow)
    return backend, f"{workflow}/executions/{args.execution}"


def seconds_between(start: str, end: str = "") -> float | None:
    from wfgen.backends.cloud import parse_time

    begun = parse_time(start)
    if begun is None:
        return None
    ended = parse_time(end) or dt.datetime.now(dt.UTC)
    return max(0.0, (ended - begun).total_seconds())


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s"


def exit_code_of(ex: Any) -> str:
    """The job's exit code as the result or the error carries it, else '-'."""
    report = job_of(ex)
    code = report.get("exit_code") if isinstance(report, dict) else None
    return str(code) if isinstance(code, int) and not isinstance(code, bool) else "-"


def job_of(ex: Any) -> Any:
    """A job's result map: the returned value, or the one its error carries."""
    from wfgen.cli.follow import job_result

    return job_result(ex.state, ex.result, ex.error.payload if ex.error else None)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)
                               ).rstrip() for row in rows)


def stage_workdir(spec: Any, staging: str | None, notify: Any) -> None:
    """A job's workdir packed, named by its content in staging (--staging, else the
    spec's) and uploaded unless it is there already (wfgen.backends.cloud_staging)."""
    from wfgen.job.workdir import prepare

    packed = prepare(spec, staging)  # --staging: the workdir's and the split items' place
    if packed is None:
        return
    from wfgen.backends.cloud_staging import stage

    assert packed is not None and spec.workdir_uri is not None
    stage(packed, spec.workdir_uri, notify)
