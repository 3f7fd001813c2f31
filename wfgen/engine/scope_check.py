"""Variable scope as the service checks it when a workflow is deployed.

The pages this follows:

- reference/syntax/variables, "Variable scope": a variable created inside a
  `for` loop or an `except` block belongs to that block; reading it after the
  block is a deployment error.
- reference/syntax/iteration: a loop's value and index variables belong to the
  loop (reading them after it is the error above); the same name may serve
  several loops "as long as they are not nested". (The page also says the
  names "must not be used in assignments or expressions outside of the loop",
  but Google's published parallel-summaries sample assigns a loop variable's
  name in another loop and deploys, so only the two rules above are errors.)
- reference/syntax/parallel-steps, "Shared variables": a branch (or an
  iteration of a parallel `for`) may assign a variable of the enclosing scope
  only if `shared` lists it, and `shared` names must exist before the step; a
  variable created in a branch is that branch's own, so another branch cannot
  read it.
- reference/syntax/steps: a `steps` block, a `switch` and a `try` body create
  no scope of their own (their variables are the subworkflow's).

The walk follows the source order of one subworkflow with a stack of scopes,
as a reader of the file would: a variable belongs to the innermost scope
that assigns it first. Only what the pages name is an error. A name read that
no scope ever assigns is left alone here: a backward `next` can make such a
read legal, and Google's own syntax cheat sheet reads a variable it never
assigns (lint reports it as a warning, never as an error)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from wfgen.engine.expr.ast import Node, Var
from wfgen.engine.syntax import Issue
from wfgen.engine.tree import DynMap, Expr, Loop, Step, Subworkflow, Target


@dataclass
class _Scope:
    """One scope on the stack: the subworkflow, a loop, an except block or a branch."""

    what: str
    names: set[str] = field(default_factory=set)
    loop_vars: set[str] = field(default_factory=set)
    # a parallel branch or iteration: the parent variables it may assign
    shared: frozenset[str] | None = None


@dataclass
class ScopeReport:
    """Errors (deploy refusals) and the names read that no scope ever assigns."""

    errors: list[Issue] = field(default_factory=list)
    unassigned: list[tuple[str, int, int]] = field(default_factory=list)


def check_scopes(sub: Subworkflow, global_names: set[str]) -> ScopeReport:
    """Scope errors of one subworkflow; `global_names` are subworkflow names,
    namespaces and other names an expression may mention without assigning them."""
    return _Walker(sub, global_names).run()


def var_names(node: Any) -> Iterator[str]:
    """Every variable name read in an expression tree."""
    if isinstance(node, Var):
        yield node.name
    for f in getattr(node, "__slots__", ()):
        v = getattr(node, f, None)
        for x in (v if isinstance(v, tuple) else (v,)):
            for y in (x if isinstance(x, tuple) else (x,)):
                if isinstance(y, Node):
                    yield from var_names(y)


def template_exprs(t: Any) -> Iterator[Expr]:
    """Every expression inside definition data."""
    if isinstance(t, Expr):
        yield t
    elif isinstance(t, dict):
        for v in t.values():
            yield from template_exprs(v)
    elif isinstance(t, list):
        for v in t:
            yield from template_exprs(v)
    elif isinstance(t, DynMap):
        for k, v in t.entries:
            yield from template_exprs(k)
            yield from template_exprs(v)


class _Walker:
    def __init__(self, sub: Subworkflow, global_names: set[str]) -> None:
        self.sub = sub
        self.global_names = global_names
        self.stack = [_Scope(f"subworkflow '{sub.name}'", {p[0] for p in sub.params})]
        self.dead: dict[str, str] = {}  # name -> the closed scope that held it
        self.report = ScopeReport()
        self.reported: set[tuple[str, int, int]] = set()
        self.assigned_anywhere = {p[0] for p in sub.params} | _all_binds(sub.steps)

    def run(self) -> ScopeReport:
        self.block(self.sub.steps)
        return self.report

    # -- scopes ---------------------------------------------------------------
    def visible(self, name: str) -> int:
        """Index of the innermost scope holding name, or -1."""
        for i in range(len(self.stack) - 1, -1, -1):
            if name in self.stack[i].names:
                return i
        return -1

    def in_active_loop(self, name: str) -> bool:
        return any(name in sc.loop_vars for sc in self.stack)

    def push(self, scope: _Scope) -> None:
        self.stack.append(scope)

    def pop(self) -> None:
        scope = self.stack.pop()
        for n in scope.names:
            if self.visible(n) < 0:
                self.dead[n] = scope.what

    def error(self, key: tuple[str, int, int], message: str) -> None:
        if key not in self.reported:
            self.reported.add(key)
            self.report.errors.append(Issue(key[1], key[2], message))

    # -- reads and writes -----------------------------------------------------
    def read_expr(self, e: Expr) -> None:
        for n in dict.fromkeys(var_names(e.node)):
            if self.visible(n) >= 0:
                continue
            if n in self.dead:
                self.error((n, e.line, e.column),
                           f"variable '{n}' exists only in {self.dead[n]}; assign it "
                           "before that block to use it after (reference/syntax/variables, "
                           "\"Variable scope\")")
            elif n not in self.assigned_anywhere and n not in self.global_names:
                self.report.unassigned.append((n, e.line, e.column))

    def read(self, t: Any) -> None:
        for e in template_exprs(t):
            self.read_expr(e)

    def write(self, name: str, line: int, column: int, step: Step) -> None:
        i = self.visible(name)
        if i < 0:
            self.stack[-1].names.add(name)
            self.dead.pop(name, None)
            return
        for sc in self.stack[i + 1:]:
            if sc.shared is not None and name not in sc.shared:
                self.error((name, line, column),
                           f"{sc.what} assigns '{name}' (step '{step.name}'), a variable of "
                           "the enclosing scope, but the parallel step does not list it in "
                           f"shared; add it to shared: [{name}] or use a new local name "
                           "(reference/syntax/parallel-steps)")
                return

    def assign(self, pairs: list[tuple[Target, Any, int]], step: Step) -> None:
        for target, value, line in pairs:
            self.read(value)
            for kind, key in target.path:
                if kind == "index" and isinstance(key, Node):
                    for n in var_names(key):
                        self.read_expr(Expr(n, Var(n), line, step.column))
            self.write(target.root, line, step.column, step)

    # -- steps ----------------------------------------------------------------
    def block(self, steps: list[Step]) -> None:
        for s in steps:
            self.step(s)

    def step(self, s: Step) -> None:
        self.assign(s.assign, s)
        if s.call is not None:
            self.read(s.args)
            if s.result:
                self.write(s.result, s.line, s.column, s)
        for c in s.conditions:
            self.read(c.condition)
            self.assign(c.assign or [], s)
            if c.steps:
                self.block(c.steps)
            self.read(c.return_value)
            self.read(c.raise_value)
        if s.steps:
            self.block(s.steps)
        if s.loop is not None:
            self.loop(s, s.loop, None)
        if s.parallel is not None:
            self.parallel(s)
        if s.try_body is not None:
            self.block(s.try_body)
            self.read(s.retry)
        if s.except_steps is not None:
            scope = _Scope(f"the except block of step '{s.name}' (line {s.line})")
            if s.except_as:
                scope.names.add(s.except_as)
            self.push(scope)
            self.block(s.except_steps)
            self.pop()
        self.read(s.value)

    def loop(self, s: Step, loop: Loop, shared: frozenset[str] | None) -> None:
        self.read(loop.items)
        self.read(loop.range)
        names = {n for n in (loop.value, loop.index) if n}
        for n in sorted(names):
            if self.in_active_loop(n):
                self.error((n, s.line, s.column),
                           f"loop variable '{n}' of step '{s.name}' is already the variable "
                           "of an enclosing loop; nested loops need different names "
                           "(reference/syntax/iteration)")
        kind = "parallel for loop" if shared is not None else "for loop"
        self.push(_Scope(f"the {kind} of step '{s.name}' (line {s.line})", set(names),
                         set(names), shared))
        self.block(loop.steps)
        self.pop()

    def parallel(self, s: Step) -> None:
        par = s.parallel
        assert par is not None
        self.read(par.concurrency_limit)
        line, column = par.shared_pos if par.shared_pos[0] else (s.line, s.column)
        for n in par.shared:
            if self.visible(n) < 0:
                self.error((n, line, column),
                           f"shared variable '{n}' of parallel step '{s.name}' is not "
                           f"assigned before the step; assign it first (e.g. - {n}: null) "
                           "(reference/syntax/parallel-steps)")
        shared = frozenset(par.shared)
        for bname, _bline, body in par.branches or []:
            self.push(_Scope(f"branch '{bname}' of parallel step '{s.name}'", shared=shared))
            self.block(body)
            self.pop()
        if par.loop is not None:
            self.loop(s, par.loop, shared)


def _loops(s: Step) -> Iterator[Loop]:
    if s.loop is not None:
        yield s.loop
    if s.parallel is not None and s.parallel.loop is not None:
        yield s.parallel.loop


def _children(s: Step) -> Iterator[list[Step]]:
    if s.steps:
        yield s.steps
    for c in s.conditions:
        if c.steps:
            yield c.steps
    for loop in _loops(s):
        yield loop.steps
    if s.parallel is not None:
        for _, _, b in s.parallel.branches or []:
            yield b
    if s.try_body:
        yield s.try_body
    if s.except_steps:
        yield s.except_steps


def walk_steps(steps: list[Step]) -> Iterator[Step]:
    for s in steps:
        yield s
        for child in _children(s):
            yield from walk_steps(child)


def _all_binds(steps: list[Step]) -> set[str]:
    """Every name some step under `steps` assigns or binds, wherever it is."""
    out: set[str] = set()
    for s in walk_steps(steps):
        out.update(t.root for t, _v, _l in s.assign)
        for c in s.conditions:
            out.update(t.root for t, _v, _l in c.assign or [])
        if s.result:
            out.add(s.result)
        for loop in _loops(s):
            out.update(n for n in (loop.value, loop.index) if n)
        if s.except_as:
            out.add(s.except_as)
    return out
