"""`wfgen validate`: job specs get the spec checks (and their generated workflow
the workflow checks); any other YAML is checked as a Cloud Workflows definition
by the engine's parser (wfgen.engine.lint)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wfgen.errors import SpecError, WfgenError
from wfgen.limits import MAX_SOURCE_BYTES
from wfgen.yamlload import read_source


def classify(text: str) -> str:
    """'workflow' or 'job': a workflow is a list of steps or has a `main` block."""
    return _classify(text)[0]


def _classify(text: str) -> tuple[str, Any]:
    """The kind and the loaded tree (None if it does not load), so the file is parsed once."""
    from wfgen.engine import flow_exprs

    if len(text) > MAX_SOURCE_BYTES:  # only then can it pass the spec limit (twice this)
        from wfgen.job.rules import MAX_SPEC_BYTES

        if len(text) > MAX_SPEC_BYTES:
            return "job", None  # the spec loader refuses it without parsing
    try:
        tree = flow_exprs.load(text)  # YAML 1.2, as the engine reads it
    except Exception:
        return "job", None  # the spec loader explains YAML errors with line numbers
    return _kind(tree), tree


def _kind(tree: Any) -> str:
    if isinstance(tree, list):
        return "workflow"
    if isinstance(tree, dict) and "container" not in tree and (
            "main" in tree or any(isinstance(v, dict) and "steps" in v for v in tree.values())):
        return "workflow"
    return "job"


def looks_like_workflow(path: str) -> bool:
    return classify(read_source(path)) == "workflow"


def validate_text(text: str, path: str) -> list[str]:
    """Errors for one file, each 'file:line:col: message'."""
    return check_text(text, path)[0]


def check_text(text: str, path: str) -> tuple[list[str], list[str], list[str]]:
    """(errors, warnings, notes) for one file; warnings are what the service
    accepts but is probably a mistake, and never fail validation; notes say how
    a fan-out runs."""
    kind, tree = _classify(text)
    if kind == "workflow":
        from wfgen.engine.lint import lint_workflow_text

        return (*_split(lint_workflow_text(text, path), ""), [])
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec_text

    try:
        spec = load_spec_text(text, path, tree=tree)
    except SpecError as exc:
        return [str(e) for e in exc.all()], [], []
    from wfgen.engine.lint import lint_workflow_text

    if spec.data["tasks"] is not None and spec.data["tasks"].get("split"):
        return _check_split(spec, path)
    rendered = render_workflow(spec)
    errors, warnings = _split(lint_workflow_text(rendered, f"{Path(path).name} (generated)"),
                              f"{path}: generated workflow: ")
    return errors, warnings, _fan_out_notes(spec, path)


def _fan_out_notes(spec: Any, path: str) -> list[str]:
    """How a fan-out runs: in one execution, or split (why, how, its steps)."""
    if spec.data["tasks"] is None:
        return []
    from wfgen.job.shards import describe

    return [f"{path}: note: {line}" for line in describe(spec)]


def _check_split(spec: Any, path: str) -> tuple[list[str], list[str], list[str]]:
    """Both workflows of a split job, linted; how it splits is said as notes."""
    from wfgen.engine.lint import lint_workflow_text
    from wfgen.job.render_split import render_split

    split = render_split(spec)
    errors, warnings = _split(lint_workflow_text(split.parent, f"{Path(path).name} (parent)"),
                              f"{path}: generated parent workflow: ")
    for text, what in ((split.shard, "shard"), (split.group, "group")):
        if text is not None:
            more = _split(lint_workflow_text(text, f"{Path(path).name} ({what})"),
                          f"{path}: generated {what} workflow: ")
            errors, warnings = errors + more[0], warnings + more[1]
    notes = _fan_out_notes(spec, path)
    if split.staged_items:
        notes.append(f"{path}: note: the items are past the shard workflow's 128 KB: run and "
                     f"deploy upload them to {spec.data['staging']}, one object per shard "
                     f"({len(split.staged_items)}), which each child reads")
    return errors, warnings, notes


def _split(findings: list[Any], prefix: str) -> tuple[list[str], list[str]]:
    errors = [prefix + str(f) for f in findings if f.severity == "error"]
    warnings = [prefix + str(f) for f in findings if f.severity != "error"]
    return errors, warnings


@dataclass
class Outcome:
    """What validate found in every file."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how a fan-out runs
    unreadable: bool = False  # some file could not be read at all


def validate_paths(paths: list[str]) -> Outcome:
    """Errors and warnings of every file."""
    out = Outcome()
    for path in paths:
        try:
            text = read_source(path)
        except WfgenError as exc:
            out.errors.append(str(exc))
            out.unreadable = True
            continue
        try:
            errors, warnings, notes = check_text(text, path)
        except WfgenError as exc:
            out.errors.append(str(exc))
            continue
        out.errors += errors
        out.warnings += warnings
        out.notes += notes
    return out


ON_HOST_NEEDS_COMMAND = (
    "container has neither command nor script: the image's own entrypoint runs on a VM, "
    "but `wfgen run --local --on-host` runs no image and cannot know it; give command "
    "(the argv to run) or script to run this job on this host")


def on_host_problem(spec: Any) -> str | None:
    """Why `run --local --on-host` (no image, the command as a host process)
    cannot run this job, or None."""
    container = spec.data["container"]
    return ON_HOST_NEEDS_COMMAND if not container["command"] and container["script"] is None \
        else None


def validate_notes(paths: list[str]) -> list[str]:
    """What is valid but worth knowing, per job spec: 'file: note: ...'."""
    from wfgen.job.spec import load_spec

    notes = []
    for path in paths:
        try:
            if looks_like_workflow(path):
                continue
            problem = on_host_problem(load_spec(path))
        except WfgenError:
            continue
        if problem:
            notes.append(f"{path}: note: {problem}")
    return notes


def capacity_order(path: str) -> str | None:
    """For a job spec that can fail over (other zones or machine choices), the
    order its workflow tries them in; None for anything else."""
    try:
        text = read_source(path)
        if classify(text) != "job":
            return None
        from wfgen.job.spec import load_spec_text

        spec = load_spec_text(text, path)
    except WfgenError:
        return None
    if spec.plan is None or not spec.plan.failover:
        return None
    from wfgen.job.capacity import round_pause_s
    from wfgen.job.rules import format_duration

    tasks = spec.data["tasks"]
    pause = round_pause_s(spec.plan, spec.timeout_s, spec.heartbeat_s,
                          tasks["parallelism"] if tasks else 1)
    return (f"{path}: on a stockout the next zone is tried at once, then the next "
            f"choice; after the last, a pause of {format_duration(pause)}, then again until "
            f"the timeout:\n{spec.plan.order_text()}")
