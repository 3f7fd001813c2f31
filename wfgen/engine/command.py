"""`wfgen run --local WORKFLOW.yaml --data JSON`: run any workflow file on the engine.

stdout carries only the result as JSON (indented); diagnostics, `sys.log`
entries and the billed steps with their list-price cost (with stats=True, the
job runner's line: wfgen.engine.billing.describe_billing) go to stderr. Exit
status: 0 SUCCEEDED, 125 FAILED (the error is printed after the failing step's
file:line:column), 2 for a file or --data that cannot be used (the message
names the file and line)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from wfgen.engine.billing import describe_billing
from wfgen.engine.connectors import ConnectorRegistry
from wfgen.engine.parse import children, load_workflow
from wfgen.engine.runtime import execute
from wfgen.engine.services import Services, default_env
from wfgen.engine.syntax import WorkflowSyntaxError
from wfgen.engine.tree import Step, Workflow
from wfgen.engine.values import MAX_DATA_DEPTH, from_data
from wfgen.errors import EXIT_NOT_RUN, EXIT_OK, EXIT_USAGE


def _log_to(stream: TextIO) -> Any:
    def sink(entry: dict[str, Any]) -> None:
        print(json.dumps(entry, default=str, ensure_ascii=False), file=stream)

    return sink


def data_argument(data: str) -> Any:
    """The --data JSON as a Workflows value; ValueError with a plain message if unusable.

    Integers must fit in 64 bits (as an execution argument's must), nesting is
    bounded and lone surrogates (a "\\ud800" escape) are refused."""
    try:
        return from_data(json.loads(data))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                         f"{exc.msg}") from None
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DATA_DEPTH} levels deep") from None


def step_position(wf: Workflow, subworkflow: str | None, step: str | None) -> tuple[int, int]:
    """(line, column) of the first step so named in the subworkflow; (0, 0) if unknown.

    Looked up only when an execution failed, so running costs nothing extra."""
    sub = wf.subworkflows.get(subworkflow or "main")
    if sub is None or step is None:
        return (0, 0)
    pending: list[list[Step]] = [sub.steps]
    while pending:
        for s in pending.pop(0):
            if s.name == step:
                return (s.line, s.column)
            pending.extend(children(s))
    return (0, 0)


def run_workflow_command(
    path: str,
    data: str | None,
    *,
    stats: bool = False,
    services: Services | None = None,
    connectors: ConnectorRegistry | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the workflow at `path` with the JSON argument `data`; returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read the workflow: {exc}", file=err)
        return EXIT_USAGE
    try:
        wf = load_workflow(text, path)
    except WorkflowSyntaxError as exc:
        for issue in exc.issues:
            print(f"{path}:{issue.line}:{issue.column}: {issue.message}", file=err)
        return EXIT_USAGE
    argument: Any = None
    if data is not None:
        try:
            argument = data_argument(data)
        except ValueError as exc:
            print(f"--data: {exc}", file=err)
            return EXIT_USAGE
    if services is None:
        services = Services(env=default_env(workflow_id=Path(path).stem or "workflow"),
                            log_sink=_log_to(err))
    res = execute(wf, argument, services=services, connectors=connectors)
    if stats:
        print(describe_billing(res.steps_internal, res.steps_external), file=err)
    if res.state == "SUCCEEDED":
        print(json.dumps(res.result, indent=2, ensure_ascii=False), file=out)
        return EXIT_OK
    assert res.error is not None
    step = res.error.step or "?"
    where = f" in subworkflow '{res.error.subworkflow}'" if res.error.subworkflow not in (
        None, "main") else ""
    line, col = step_position(wf, res.error.subworkflow, res.error.step)
    at = f"{path}:{line}:{col}" if line else path
    print(f"{at}: execution FAILED at step '{step}'{where}: "
          f"{json.dumps(res.error.to_json()['error'], ensure_ascii=False)}", file=err)
    return EXIT_NOT_RUN
