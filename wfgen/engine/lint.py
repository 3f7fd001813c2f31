"""Structural checks of any Cloud Workflows definition, for `wfgen validate`.

Built on the engine's own parser (wfgen.engine.parse), so what validate accepts
is exactly what `wfgen run --local` can run: unknown or misplaced keys, `next`
targets that do not exist, malformed or over-long (> 400 characters)
expressions, more than 50 assignments in a step or 50 conditions in a switch,
more than 10 branches in a parallel step, a main with more than one parameter,
a source over 128 KB. Every finding is reported, not just the first.

The deploy-time checks (wfgen.engine.deploy_checks: variable scope, parallel
`shared`, step names, required arguments, blocking calls in expressions) are
the ones every load runs, so validate and deploy refuse the same files. Lint
adds one error of its own, unknown functions in a standard-library namespace
(never a deploy refusal: wfgen's standard library might lack a function the
service has), and warnings: constructs the service accepts that are probably
mistakes. Warnings are printed and never fail `wfgen validate`."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfgen.engine.deploy_checks import EVENTS_FUNCTIONS, STDLIB_NAMESPACES, deploy_findings
from wfgen.engine.expr.ast import Attr, Node, Var
from wfgen.engine.parse import Parser, _call_names, load_yaml
from wfgen.engine.scope_check import walk_steps
from wfgen.engine.syntax import Issue, WorkflowSyntaxError
from wfgen.engine.tree import Workflow
from wfgen.errors import Location


@dataclass(frozen=True)
class Finding:
    """One problem; line and column are 1-based (0 when unknown)."""

    file: str
    line: int
    column: int
    message: str
    severity: str = "error"  # or "warning": accepted by the service, probably a mistake

    def __str__(self) -> str:
        label = "warning: " if self.severity == "warning" else ""
        return f"{Location(self.file, self.line, self.column)}: {label}{self.message}"


def lint_workflow_text(text: str, filename: str) -> list[Finding]:
    """All findings of a workflow definition (empty when it is fine), errors and
    warnings, in line order."""
    warnings: list[Issue] = []
    try:
        data = load_yaml(text, filename)
    except WorkflowSyntaxError as exc:
        issues = list(exc.issues)
    else:
        if data is None:
            issues = [Issue(1, 1, "the workflow is empty")]
        else:
            p = Parser(filename)
            wf = p.workflow(data, text)
            errors, warnings = deploy_findings(wf, p.exprs)
            issues = p.issues + errors + _unknown_functions(p, wf)
    found = [Finding(filename, i.line, i.column, i.message) for i in issues]
    found += [Finding(filename, i.line, i.column, i.message, "warning") for i in warnings]
    found.sort(key=lambda f: (f.line, f.column, f.severity))
    return found


def errors_only(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def lint_workflow_file(path: str | Path) -> list[Finding]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(str(p), 0, 0, f"cannot read the file: {exc}")]
    return lint_workflow_text(text, str(p))


# ---- lint's own error: unknown standard-library functions ----------------------


def _unknown_functions(parser: Parser, wf: Workflow) -> list[Issue]:
    variables = {p[0] for sub in wf.subworkflows.values() for p in sub.params}
    for sub in wf.subworkflows.values():
        for s in walk_steps(sub.steps):
            variables.update(t.root for t, _v, _l in s.assign)
            for c in s.conditions:
                variables.update(t.root for t, _v, _l in c.assign or [])
            if s.result:
                variables.add(s.result)
            for loop in (s.loop, s.parallel.loop if s.parallel else None):
                if loop is not None:
                    variables.update(n for n in (loop.value, loop.index) if n)
            if s.except_as:
                variables.add(s.except_as)
    return _unknown_functions_in(parser, set(wf.subworkflows), variables)


def _unknown_functions_in(parser: Parser, subworkflows: set[str],
                       variables: set[str]) -> list[Issue]:
    """`call: http.gett`, `${text.spilt(s, ",")}`: a stdlib namespace, no such function.

    Also a constant such as `${http.default_retry_predicat}` (an attribute of a
    namespace name), unless the workflow has a variable of that name."""
    from wfgen.engine.stdlib import BUILTINS, CONSTANTS

    known = set(BUILTINS) | set(CONSTANTS) | EVENTS_FUNCTIONS
    out: list[Issue] = []

    def check(name: str, pos: tuple[int, int], kind: str = "function") -> None:
        ns, dot, _ = name.partition(".")
        if not dot or ns not in STDLIB_NAMESPACES or name in known or name in subworkflows:
            return
        same_ns = sorted(k for k in known if k.startswith(ns + "."))
        close = difflib.get_close_matches(name, same_ns or sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        out.append(Issue(pos[0], pos[1], f"unknown {kind} {name}{hint}"))

    for name, pos in parser.calls:
        check(name, pos)
    for e in parser.exprs:
        for name in _call_names(e.node):
            check(name, (e.line, e.column))
        for name in _namespace_attrs(e.node):
            if name.partition(".")[0] not in variables:
                check(name, (e.line, e.column), "function or constant")
    return out


def _namespace_attrs(node: Any) -> Iterator[str]:
    """`ns.name` for every attribute read directly on a bare name (http.default_retry)."""
    if isinstance(node, Attr) and isinstance(node.obj, Var):
        yield f"{node.obj.name}.{node.name}"
    for f in getattr(node, "__slots__", ()):
        v = getattr(node, f, None)
        for x in (v if isinstance(v, tuple) else (v,)):
            for y in (x if isinstance(x, tuple) else (x,)):
                if isinstance(y, Node):
                    yield from _namespace_attrs(y)
