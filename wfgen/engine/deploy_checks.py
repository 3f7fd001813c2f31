"""What the service refuses when a workflow is deployed, and what it accepts but
is probably a mistake.

`deploy_errors` is run by the parser (wfgen.engine.parse.parse_definition), so
`wfgen validate`, `wfgen run --local` and `wfgen serve`'s deploy all refuse the
same definitions, before anything runs. Each check comes from a page of
Google's reference (docs/engine.md lists them):

- variable scope: loops, except blocks, loop variables, parallel branches and
  `shared` (wfgen.engine.scope_check);
- a step name used twice in a subworkflow when a `next` names it
  (reference/syntax/steps, "Step names": names are unique per subworkflow);
- standard-library calls without a required argument, in a call step (named
  or positional `args`) or an expression (reference/stdlib/text/substring:
  "Both start and end arguments are required; otherwise, a deployment error
  occurs");
- blocking functions inside an expression (reference/stdlib/overview and
  reference/syntax/expressions, "Blocking calls": HTTP calls, `sys.sleep`,
  `sys.log` and the callback functions must be called from a call step).

`warnings` lists constructs the service accepts that are probably mistakes;
`wfgen validate` prints them and still exits 0."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from wfgen.engine.expr.ast import Call, Node
from wfgen.engine.scope_check import check_scopes, template_exprs, walk_steps
from wfgen.engine.syntax import Issue
from wfgen.engine.tree import Expr, Step, Subworkflow, Workflow

# Namespaces of the standard library (reference/stdlib/overview).
STDLIB_NAMESPACES = frozenset({
    "http", "sys", "text", "list", "map", "math", "json", "base64", "time", "events",
    "retry", "uuid", "hash",
})
# events.* are connectors in the engine (supplied by the runner), not BUILTINS.
EVENTS_FUNCTIONS = frozenset({"events.create_callback_endpoint", "events.await_callback"})
# reference/syntax/expressions, "Blocking calls": these must run from a call step.
BLOCKING = frozenset({
    "http.get", "http.post", "http.put", "http.patch", "http.delete", "http.request",
    "sys.sleep", "sys.sleep_until", "sys.log",
    "events.create_callback_endpoint", "events.await_callback",
})


def deploy_errors(wf: Workflow, exprs: list[Expr]) -> list[Issue]:
    """Every deploy-time refusal of a parsed definition (parser errors aside)."""
    return _checks(wf, exprs)[0]


def deploy_findings(wf: Workflow, exprs: list[Expr]) -> tuple[list[Issue], list[Issue]]:
    """(errors, warnings) of a parsed definition."""
    return _checks(wf, exprs)


def _checks(wf: Workflow, exprs: list[Expr]) -> tuple[list[Issue], list[Issue]]:
    errors: list[Issue] = []
    warnings: list[Issue] = []
    subs = set(wf.subworkflows)
    global_names = subs | STDLIB_NAMESPACES | {"googleapis", "experimental"}
    for sub in wf.subworkflows.values():
        scopes = check_scopes(sub, global_names)
        errors += scopes.errors
        for name, line, column in scopes.unassigned:
            hint = f" (did you mean {name.lower()}?)" if name.lower() in (
                "null", "true", "false") else ""
            warnings.append(Issue(line, column, f"'{name}' is not assigned anywhere in "
                                                f"'{sub.name}' (nor a parameter){hint}; "
                                                "reading it fails when the step runs"))
        e, w = _duplicate_steps(sub)
        errors += e
        warnings += w
        for s in walk_steps(sub.steps):
            e, w = _call_step_args(s, wf)
            errors += e
            warnings += w
            if s.kind in ("return", "raise") and s.next is not None:
                warnings.append(Issue(s.line, s.column,
                                      f"next: {s.next} beside {s.kind} in step '{s.name}' "
                                      f"never runs: {s.kind} ends the step's subworkflow"))
    for e in exprs:
        for call in _calls(e.node):
            if call.name in BLOCKING:
                errors.append(Issue(e.line, e.column,
                                    f"{call.name} blocks and cannot be called inside an "
                                    "expression; call it from a call step (reference/syntax/"
                                    "expressions, \"Blocking calls\")"))
            else:
                errors += _positional(call.name, len(call.args), (e.line, e.column), wf,
                                      warnings)
    return errors, warnings


# ---- arguments ----------------------------------------------------------------

def builtin_params(name: str) -> tuple[list[str], set[str], bool] | None:
    """(parameter names in order, required names, takes *args) of a stdlib
    function, or None when wfgen's standard library does not have it."""
    from wfgen.engine.stdlib import BUILTINS

    fn = BUILTINS.get(name)
    return None if fn is None else _params(fn)


_PARAMS: dict[Callable[..., Any], tuple[list[str], set[str], bool]] = {}


def _params(fn: Callable[..., Any]) -> tuple[list[str], set[str], bool]:
    got = _PARAMS.get(fn)
    if got is None:
        ps = list(inspect.signature(fn).parameters.values())[1:]  # after rt
        plain = [p for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        got = ([p.name for p in plain], {p.name for p in plain if p.default is p.empty},
               any(p.kind == p.VAR_POSITIONAL for p in ps))
        _PARAMS[fn] = got
    return got


def _signature(name: str, wf: Workflow) -> tuple[list[str], set[str], bool] | None:
    sub = wf.subworkflows.get(name)
    if sub is not None:
        return [p[0] for p in sub.params], {p[0] for p in sub.params if not p[1]}, False
    return builtin_params(name)


def _positional(name: str, count: int, pos: tuple[int, int], wf: Workflow,
                warnings: list[Issue]) -> list[Issue]:
    """Too few positional arguments for a stdlib function is a deploy error;
    for a subworkflow (no page says when it fails), and too many, a warning."""
    sig = _signature(name, wf)
    if sig is None:
        return []
    names, required, star = sig
    missing = [n for n in names[count:] if n in required]
    if missing:
        issue = Issue(pos[0], pos[1], f"{name} needs the argument '{missing[0]}' "
                                      f"({count} given, {len(required)} required)")
        if name in wf.subworkflows:
            warnings.append(Issue(issue.line, issue.column,
                                  issue.message + "; the call fails when it runs"))
            return []
        return [issue]
    if count > len(names) and not star:
        warnings.append(Issue(pos[0], pos[1], f"{name} takes at most {len(names)} "
                                              f"arguments, {count} given; the call fails "
                                              "when it runs"))
    return []


def _call_step_args(s: Step, wf: Workflow) -> tuple[list[Issue], list[Issue]]:
    if s.call is None:
        return [], []
    warnings: list[Issue] = []
    pos = (s.line, s.column)
    if isinstance(s.args, list):
        if s.call.startswith("googleapis.") or s.call.startswith("events."):
            return [Issue(s.line, s.column, f"{s.call} takes named args (a map), not a list")], []
        return _positional(s.call, len(s.args), pos, wf, warnings), warnings
    sig = _signature(s.call, wf)
    if sig is None:
        return [], []
    names, required, _star = sig
    given = set(s.args) if isinstance(s.args, dict) else set()
    if not isinstance(s.args, dict | None):  # a DynMap: keys known only when it runs
        return [], []
    missing = sorted(required - given)
    what = "subworkflow" if s.call in wf.subworkflows else "function"
    errors = []
    if missing and what == "function":
        errors.append(Issue(pos[0], pos[1], f"step '{s.name}': {s.call} needs the argument "
                                            f"'{missing[0]}' in args"))
    elif missing:
        warnings.append(Issue(pos[0], pos[1], f"step '{s.name}': subworkflow {s.call} has no "
                                              f"default for '{missing[0]}' and args does not "
                                              "give it; the call fails when it runs"))
    for k in sorted(given - set(names)):
        warnings.append(Issue(pos[0], pos[1], f"step '{s.name}': {what} {s.call} has no "
                                              f"parameter '{k}'; the call fails when it runs"))
    return errors, warnings


def _calls(node: Any) -> Iterator[Call]:
    if isinstance(node, Call):
        yield node
    for f in getattr(node, "__slots__", ()):
        v = getattr(node, f, None)
        for x in (v if isinstance(v, tuple) else (v,)):
            for y in (x if isinstance(x, tuple) else (x,)):
                if isinstance(y, Node):
                    yield from _calls(y)


# ---- step names ---------------------------------------------------------------

def _duplicate_steps(sub: Subworkflow) -> tuple[list[Issue], list[Issue]]:
    """A step name used twice in one subworkflow, nested steps included.

    reference/syntax/steps, "Step names": "Step names must be unique at the
    subworkflow level". Google's own syntax cheat sheet repeats `init` in
    main, so a duplicate is an error when a `next` names it (the jump is then
    ambiguous) and a warning otherwise."""
    seen: dict[str, Step] = {}
    dups: list[tuple[Step, Step]] = []
    targets: set[str] = set()
    inner: set[int] = set()  # the step of a one-step try, or of a switch condition
    for s in walk_steps(sub.steps):
        targets.update(t for t in [s.next, *(c.next for c in s.conditions)] if t)
        if s.try_single and s.try_body:
            inner.add(id(s.try_body[0]))
        for c in s.conditions:
            if c.inline and c.steps:
                inner.add(id(c.steps[0]))
        if id(s) in inner:
            continue
        first = seen.setdefault(s.name, s)
        if first is not s:
            dups.append((first, s))
    errors, warnings = [], []
    for first, s in dups:
        text = (f"step name '{s.name}' is already used at line {first.line} of "
                f"'{sub.name}'; step names must be unique within a subworkflow")
        if s.name in targets:
            errors.append(Issue(s.line, s.column, text + f" (next: {s.name} is ambiguous)"))
        else:
            warnings.append(Issue(s.line, s.column, text))
    return errors, warnings


__all__ = ["BLOCKING", "EVENTS_FUNCTIONS", "STDLIB_NAMESPACES", "builtin_params", "deploy_errors",
           "deploy_findings", "template_exprs"]
