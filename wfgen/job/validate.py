"""`wfgen validate`: job specs get the spec checks (and their generated workflow
the workflow checks); any other YAML is checked as a Cloud Workflows definition
by the engine's parser (wfgen.engine.lint)."""

from __future__ import annotations

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
    from wfgen import yamlload

    if len(text) > MAX_SOURCE_BYTES:  # only then can it pass the spec limit (twice this)
        from wfgen.job.rules import MAX_SPEC_BYTES

        if len(text) > MAX_SPEC_BYTES:
            return "job", None  # the spec loader refuses it without parsing
    try:
        tree = yamlload.load(text)  # YAML 1.2, as the engine reads it
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
    """Findings for one file, each 'file:line:col: message'."""
    kind, tree = _classify(text)
    if kind == "workflow":
        from wfgen.engine.lint import lint_workflow_text

        return [str(f) for f in lint_workflow_text(text, path)]
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec_text

    try:
        spec = load_spec_text(text, path, tree=tree)
    except SpecError as exc:
        return [str(e) for e in exc.all()]
    from wfgen.engine.lint import lint_workflow_text

    rendered = render_workflow(spec)
    return [f"{path}: generated workflow: {f}" for f in
            lint_workflow_text(rendered, f"{Path(path).name} (generated)")]


def validate_paths(paths: list[str]) -> tuple[list[str], bool]:
    """Findings of every file, and whether some file could not be read at all."""
    findings: list[str] = []
    unreadable = False
    for path in paths:
        try:
            text = read_source(path)
        except WfgenError as exc:
            findings.append(str(exc))
            unreadable = True
            continue
        try:
            findings.extend(validate_text(text, path))
        except WfgenError as exc:
            findings.append(str(exc))
    return findings, unreadable
