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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each public name lives: importing the package costs nothing until a name is
# used, so `wfgen validate` (parse + lint) never pays for the runtime.
_HOME = {
    "ConnectorRegistry": "connectors", "ConnectorResult": "connectors",
    "WorkflowError": "errors", "make_error": "errors",
    "load_workflow": "parse", "parse_definition": "parse",
    "ErrorInfo": "runtime", "Execution": "runtime", "ExecutionResult": "runtime",
    "execute": "runtime", "prepare": "runtime",
    "FunctionRef": "services", "HttpRequest": "services", "HttpResponse": "services",
    "RealClock": "services", "RewritingTransport": "services", "Services": "services",
    "VirtualClock": "services", "loopback_rewriter": "services",
    "Issue": "syntax", "WorkflowSyntaxError": "syntax",
    "Workflow": "tree",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


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
