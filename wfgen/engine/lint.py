"""Structural checks of any Cloud Workflows definition, for `wfgen validate`.

Built on the engine's own parser (wfgen.engine.parse), so what validate accepts
is exactly what `wfgen run --local` can run: unknown or misplaced keys, `next`
targets that do not exist, malformed or over-long (> 400 characters)
expressions, more than 50 assignments in a step or 50 conditions in a switch,
more than 10 branches in a parallel step, a main with more than one parameter,
a source over 128 KB. Every finding is reported, not just the first.

On top of the parser, checks that only validate runs (the engine itself never
pays for them) catch what the service rejects at deploy time or what could only
fail at run time: unknown functions in a standard-library namespace, duplicate
step names that a `next` makes ambiguous, variables used after the `except`
block or `for` loop that created them, `parallel.shared` variables not
assigned before the parallel step, and parallel branches that assign a
variable of the enclosing scope that `shared` does not list."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfgen.engine.expr.ast import Attr, Node, Var
from wfgen.engine.parse import Parser, _call_names, children, load_yaml
from wfgen.engine.syntax import Issue, WorkflowSyntaxError
from wfgen.engine.tree import DynMap, Expr, Step, Subworkflow, Workflow
from wfgen.errors import Location


@dataclass(frozen=True)
class Finding:
    """One problem; line and column are 1-based (0 when unknown)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{Location(self.file, self.line, self.column)}: {self.message}"


def lint_workflow_text(text: str, filename: str) -> list[Finding]:
    """All findings of a workflow definition (empty when it is fine), in line order."""
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
            issues = p.issues + deploy_issues(wf, p)
    issues.sort(key=lambda i: (i.line, i.column))
    return [Finding(filename, i.line, i.column, i.message) for i in issues]


def lint_workflow_file(path: str | Path) -> list[Finding]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(str(p), 0, 0, f"cannot read the file: {exc}")]
    return lint_workflow_text(text, str(p))


# ---- checks beyond the parser (validate only) ----------------------------------

# Namespaces of the standard library (docs: reference/stdlib/overview). A dotted
# name in one of them must be a documented function; googleapis.* connectors are
# left alone (there are too many to know).
STDLIB_NAMESPACES = frozenset({
    "http", "sys", "text", "list", "map", "math", "json", "base64", "time", "events",
    "retry", "uuid", "hash",
})
# events.* are connectors in the engine (supplied by the runner), not BUILTINS.
EVENTS_FUNCTIONS = frozenset({"events.create_callback_endpoint", "events.await_callback"})


def deploy_issues(wf: Workflow, parser: Parser) -> list[Issue]:
    """Findings of the lint-only checks on a parsed workflow."""
    variables = {p[0] for sub in wf.subworkflows.values() for p in sub.params}
    for sub in wf.subworkflows.values():
        variables |= _binds(sub.steps)
    out = _unknown_functions(parser, set(wf.subworkflows), variables)
    for sub in wf.subworkflows.values():
        out += _duplicate_steps(sub)
        out += _scope_leaks(sub)
        out += _undeclared_shared(sub)
        out += _unshared_branch_writes(sub)
    return out


def _unknown_functions(parser: Parser, subworkflows: set[str],
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


def _all_steps(steps: list[Step]) -> Iterator[Step]:
    """Every step of a block, nested ones included."""
    for s in steps:
        yield s
        for child in children(s):
            yield from _all_steps(child)


def _duplicate_steps(sub: Subworkflow) -> list[Issue]:
    """Step names that a `next` cannot tell apart.

    The docs (reference/syntax/steps, "Step names"): "Step names must be unique
    at the subworkflow level" (the same name in main and in a subworkflow is
    fine). Google's own syntax cheat sheet nevertheless repeats `init` in main,
    so, to stay free of false alarms on it, a duplicate is reported when some
    `next` in the subworkflow names it: that jump is then ambiguous for sure."""
    seen: dict[str, Step] = {}
    dups: list[tuple[Step, Step]] = []
    targets: set[str] = set()
    single: set[int] = set()  # the step inside a one-step `try` shares its name
    for s in _all_steps(sub.steps):
        targets.update(t for t in [s.next, *(c.next for c in s.conditions)] if t)
        if s.try_single and s.try_body:
            single.add(id(s.try_body[0]))
        if id(s) in single:
            continue
        first = seen.setdefault(s.name, s)
        if first is not s:
            dups.append((first, s))
    return [Issue(s.line, s.column,
                  f"step name '{s.name}' is already used at line {first.line} of "
                  f"'{sub.name}'; step names must be unique within a subworkflow "
                  f"(next: {s.name} is ambiguous)")
            for first, s in dups if s.name in targets]


def _template_exprs(t: Any) -> Iterator[Expr]:
    if isinstance(t, Expr):
        yield t
    elif isinstance(t, dict):
        for v in t.values():
            yield from _template_exprs(v)
    elif isinstance(t, list):
        for v in t:
            yield from _template_exprs(v)
    elif isinstance(t, DynMap):
        for k, v in t.entries:
            yield from _template_exprs(k)
            yield from _template_exprs(v)


def _own_exprs(s: Step) -> Iterator[Expr]:
    """Expressions written on the step itself (not in its nested steps)."""
    for _t, v, _line in s.assign:
        yield from _template_exprs(v)
    yield from _template_exprs(s.args)
    for c in s.conditions:
        yield from _template_exprs(c.condition)
        for _t, v, _line in c.assign or []:
            yield from _template_exprs(v)
        yield from _template_exprs(c.return_value)
        yield from _template_exprs(c.raise_value)
    for loop in (s.loop, s.parallel.loop if s.parallel else None):
        if loop is not None:
            yield from _template_exprs(loop.items)
            yield from _template_exprs(loop.range)
    if s.parallel is not None:
        yield from _template_exprs(s.parallel.concurrency_limit)
    yield from _template_exprs(s.retry)
    yield from _template_exprs(s.value)


def _var_names(node: Any) -> Iterator[str]:
    if isinstance(node, Var):
        yield node.name
    for f in getattr(node, "__slots__", ()):
        v = getattr(node, f, None)
        for x in (v if isinstance(v, tuple) else (v,)):
            for y in (x if isinstance(x, tuple) else (x,)):
                if isinstance(y, Node):
                    yield from _var_names(y)


def _own_binds(s: Step) -> Iterator[tuple[str, int]]:
    """(variable, line) created by the step itself (not by its nested steps)."""
    for t, _v, line in s.assign:
        yield t.root, line
    for c in s.conditions:
        for t, _v, line in c.assign or []:
            yield t.root, line
    if s.result:
        yield s.result, s.line
    for loop in (s.loop, s.parallel.loop if s.parallel else None):
        if loop is not None:
            yield loop.value, s.line
            if loop.index:
                yield loop.index, s.line
    if s.except_as:
        yield s.except_as, s.line


def _binds(steps: list[Step]) -> set[str]:
    return {n for s in _all_steps(steps) for n, _ in _own_binds(s)}


def _local_blocks(s: Step) -> Iterator[tuple[str, set[str]]]:
    """(what, names) for each scope of the step whose variables die with it."""
    if s.except_steps is not None:
        names = _binds(s.except_steps) | ({s.except_as} if s.except_as else set())
        yield f"the except block of step '{s.name}'", names
    for loop in (s.loop, s.parallel.loop if s.parallel else None):
        if loop is not None:
            names = _binds(loop.steps) | {loop.value} | ({loop.index} if loop.index else set())
            yield f"the for loop of step '{s.name}'", names


def _scope_leaks(sub: Subworkflow) -> list[Issue]:
    """A variable used after the except block / for loop that alone created it.

    Docs (reference/syntax/variables, "Variable scope"): a variable created in a
    for loop is local to it, "accessing it outside of the loop will raise an
    error when deploying the workflow. This local scoping also applies to any
    variable created inside an except block." Conservative: only names assigned
    nowhere else in the subworkflow, used by a later step of the same block."""
    # Variables that exist outside every local scope: params, and whatever is
    # assigned outside except blocks and for bodies.
    outside = {p[0] for p in sub.params}

    def collect(steps: list[Step]) -> None:
        for s in steps:
            for n, _ in _own_binds(s):
                if n != s.except_as and not any(
                        lp is not None and n in (lp.value, lp.index)
                        for lp in (s.loop, s.parallel.loop if s.parallel else None)):
                    outside.add(n)
            for child in children(s):
                is_local = child is s.except_steps or (
                    s.loop is not None and child is s.loop.steps) or (
                    s.parallel is not None and s.parallel.loop is not None
                    and child is s.parallel.loop.steps)
                if not is_local:
                    collect(child)

    collect(sub.steps)
    out: list[Issue] = []
    reported: set[tuple[str, int, int]] = set()

    def check_block(steps: list[Step]) -> None:
        # name -> (scope description, the step that created it), for earlier steps
        dead: dict[str, tuple[str, Step]] = {}
        for s in steps:
            if dead:
                rebound = _binds([s])
                for t in _all_steps([s]):
                    for e in _own_exprs(t):
                        for n in _var_names(e.node):
                            key = (n, e.line, e.column)
                            if n in dead and n not in rebound and key not in reported:
                                reported.add(key)
                                what, owner = dead[n]
                                out.append(Issue(
                                    e.line, e.column,
                                    f"variable '{n}' exists only in {what} (line "
                                    f"{owner.line}); assign it before step '{owner.name}' "
                                    "to use it after"))
            for what, names in _local_blocks(s):
                for n in names - outside:
                    dead.setdefault(n, (what, s))
            for child in children(s):
                check_block(child)

    check_block(sub.steps)
    return out


def _undeclared_shared(sub: Subworkflow) -> list[Issue]:
    """`parallel.shared` names must be variables assigned before the parallel step.

    Docs (reference/syntax/parallel-steps, "Shared variables"): shared lists
    writable variables with parent scope, which must be declared (assigned)
    before the parallel step. Conservative: any assignment on an earlier line of
    the subworkflow counts, wherever it is."""
    first_line: dict[str, int] = {p[0]: 0 for p in sub.params}
    steps = list(_all_steps(sub.steps))
    for s in steps:
        for n, line in _own_binds(s):
            first_line[n] = min(line, first_line.get(n, line))
    out: list[Issue] = []
    for s in steps:
        if s.parallel is None:
            continue
        line, col = s.parallel.shared_pos if s.parallel.shared_pos[0] else (s.line, s.column)
        for n in s.parallel.shared:
            if first_line.get(n, s.line) >= s.line:
                out.append(Issue(line, col, f"shared variable '{n}' of parallel step "
                                            f"'{s.name}' is not assigned before the step; "
                                            f"assign it first (e.g. - {n}: null)"))
    return out


def _branch_writes(steps: list[Step]) -> Iterator[tuple[str, int, Step]]:
    """(variable, line, step) for every assignment and call result under steps."""
    for s in _all_steps(steps):
        for t, _v, line in s.assign:
            yield t.root, line, s
        for c in s.conditions:
            for t, _v, line in c.assign or []:
                yield t.root, line, s
        if s.result:
            yield s.result, s.line, s


def _unshared_branch_writes(sub: Subworkflow) -> list[Issue]:
    """A parallel branch may not assign a variable of the enclosing scope unless
    `shared` lists it.

    Docs (reference/syntax/parallel-steps, "Shared variables"): variables with
    parent scope are read-only in branches and iterations unless declared in
    `shared`; the service refuses such an assignment when the workflow is
    deployed. Variables created inside a branch are local to it and fine. The
    enclosing scope here is the subworkflow's parameters and the variables its
    top level (not for bodies, except blocks or other branches) assigns before
    the parallel step."""
    parent: dict[str, int] = {p[0]: 0 for p in sub.params}

    def collect(steps: list[Step]) -> None:
        for s in steps:
            for n, line in _own_binds(s):
                local = n == s.except_as or any(
                    lp is not None and n in (lp.value, lp.index)
                    for lp in (s.loop, s.parallel.loop if s.parallel else None))
                if not local:
                    parent[n] = min(line, parent.get(n, line))
            for child in children(s):
                if child is s.except_steps or (s.loop is not None and child is s.loop.steps):
                    continue
                if s.parallel is None:
                    collect(child)

    collect(sub.steps)
    out: list[Issue] = []
    for s in _all_steps(sub.steps):
        if s.parallel is None:
            continue
        shared = set(s.parallel.shared)
        loop = s.parallel.loop
        own = {loop.value, loop.index} if loop is not None else set()
        bodies = [b for _, _, b in s.parallel.branches or []]
        if loop is not None:
            bodies.append(loop.steps)
        for body in bodies:
            for n, line, step in _branch_writes(body):
                if n in shared or n in own or parent.get(n, line) >= s.line:
                    continue
                out.append(Issue(line, step.column,
                                 f"parallel step '{s.name}' assigns '{n}' in a branch "
                                 f"(step '{step.name}') but does not list it in shared; "
                                 f"add it to shared: [{n}] or use a new local name"))
    return out
