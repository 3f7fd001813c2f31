"""wfgen's interpreter of the Cloud Workflows language, usable on any workflow file.

    wf = load_workflow(text, "flow.yaml")         # WorkflowSyntaxError names the line
    res = execute(wf, {"x": 1}, services=Services(clock=VirtualClock()))
    res.state, res.result, res.error, res.steps_internal, res.steps_external

Modules: parse (definition -> tree with lines), expr/ (lexer, parser, compiler to
closures), values (types and operators), scope (signals, contexts, blocks),
steps (steps -> closures), runtime (executions, parallel, accounting), services
(clock, env, log, HTTP, function refs), connectors (googleapis.* / events.*
registry), stdlib/ (builtins), lint (checks only `wfgen validate` runs).
Semantics and choices: docs/engine.md."""

from wfgen.engine.connectors import ConnectorRegistry, ConnectorResult
from wfgen.engine.errors import WorkflowError, make_error
from wfgen.engine.parse import load_workflow, parse_definition
from wfgen.engine.runtime import ErrorInfo, Execution, ExecutionResult, execute, prepare
from wfgen.engine.services import (
    FunctionRef,
    HttpRequest,
    HttpResponse,
    RealClock,
    RewritingTransport,
    Services,
    VirtualClock,
    loopback_rewriter,
)
from wfgen.engine.syntax import Issue, WorkflowSyntaxError
from wfgen.engine.tree import Workflow

__all__ = [
    "ConnectorRegistry",
    "ConnectorResult",
    "ErrorInfo",
    "Execution",
    "ExecutionResult",
    "FunctionRef",
    "HttpRequest",
    "HttpResponse",
    "Issue",
    "RealClock",
    "RewritingTransport",
    "Services",
    "VirtualClock",
    "Workflow",
    "WorkflowError",
    "WorkflowSyntaxError",
    "execute",
    "load_workflow",
    "loopback_rewriter",
    "make_error",
    "parse_definition",
    "prepare",
]
