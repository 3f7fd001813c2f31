"""`wfgen validate`: job specs get the spec checks (and their generated workflow
the workflow checks); any other YAML is checked as a Cloud Workflows definition
by the engine's parser (wfgen.engine.lint)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wfgen.errors import SpecError, WfgenError
from wfgen.job.spec import read_source


def classify(text: str) -> str:
    """'workflow' or 'job': a workflow is a list of steps or has a `main` block."""
    return _classify(text)[0]


def _classify(text: str) -> tuple[str, Any]:
    """The kind and the loaded tree (None if it does not load), so the file is parsed once."""
    from wfgen.engine import flow_exprs
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


def check_text(text: str, path: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) for one file; warnings are what the service accepts
    but is probably a mistake, and never fail validation."""
    kind, tree = _classify(text)
    if kind == "workflow":
        from wfgen.engine.lint import lint_workflow_text

        return _split(lint_workflow_text(text, path), "")
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec_text

    try:
        spec = load_spec_text(text, path, tree=tree)
    except SpecError as exc:
        return [str(e) for e in exc.all()], []
    from wfgen.engine.lint import lint_workflow_text

    if spec.data["tasks"] is not None and spec.data["tasks"].get("split"):
        return _check_split(spec, path)
    rendered = render_workflow(spec)
    return _split(lint_workflow_text(rendered, f"{Path(path).name} (generated)"),
                  f"{path}: generated workflow: ")


def _check_split(spec: Any, path: str) -> tuple[list[str], list[str]]:
    """Both workflows of a split job, linted; how it splits is said as notes."""
    from wfgen.engine.lint import lint_workflow_text
    from wfgen.job.render_split import render_split
    from wfgen.job.shards import describe

    split = render_split(spec)
    errors, warnings = _split(lint_workflow_text(split.parent, f"{Path(path).name} (parent)"),
                              f"{path}: generated parent workflow: ")
    more = _split(lint_workflow_text(split.shard, f"{Path(path).name} (shard)"),
                  f"{path}: generated shard workflow: ")
    notes = [f"{path}: note: {line}" for line in describe(spec)]
    return errors + more[0], warnings + more[1] + notes


def _split(findings: list[Any], prefix: str) -> tuple[list[str], list[str]]:
    errors = [prefix + str(f) for f in findings if f.severity == "error"]
    warnings = [prefix + str(f) for f in findings if f.severity != "error"]
    return errors, warnings


@dataclass
class Outcome:
    """What validate found in every file."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
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
            errors, warnings = check_text(text, path)
        except WfgenError as exc:
            out.errors.append(str(exc))
            continue
        out.errors += errors
        out.warnings += warnings
    return out
