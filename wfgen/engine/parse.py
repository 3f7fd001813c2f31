"""Definition parser: YAML/JSON text -> tree.Workflow, keeping line numbers.

Both forms are accepted: a plain list of steps (becomes `main` without params),
or a map of subworkflows where `main` is the entry point. Every problem is
recorded as an Issue (with 1-based line/column) and parsing carries on, so that
`wfgen validate` reports all of them; `load_workflow` raises on the first.

Structural rules checked here (docs: syntax reference, quotas): known keys in the
right places, one step kind per step, every `next` names a step of the same
subworkflow (or end/break/continue), expressions well formed and at most 400
characters, at most 50 assignments per step and 50 switch conditions, at most 10
branches per parallel step, main takes at most one parameter, source <= 128 KB."""

from __future__ import annotations

import difflib
import re
from typing import Any

from ruamel.yaml.error import MarkedYAMLError, YAMLError

from wfgen import limits
from wfgen.engine import flow_exprs
from wfgen.engine.expr.ast import Attr, Call, Const, Index, Node, Var
from wfgen.engine.expr.lexer import ExprSyntaxError
from wfgen.engine.expr.parser import parse_expression
from wfgen.engine.syntax import Issue, WorkflowSyntaxError
from wfgen.engine.tree import (
    Condition,
    DynMap,
    Expr,
    Loop,
    Parallel,
    Step,
    Subworkflow,
    Target,
    Workflow,
)
from wfgen.engine.values import INT_MAX, INT_MIN, from_data, key_string

STEP_KINDS = ("assign", "call", "switch", "for", "parallel", "try", "raise", "return", "steps")
ALLOWED = {
    "assign": {"assign", "next"},
    "call": {"call", "args", "result", "next"},
    "switch": {"switch", "next"},
    "for": {"for", "next"},
    "parallel": {"parallel", "next"},
    "try": {"try", "retry", "except", "next"},
    # `next` beside return/raise never runs; Google accepts it (its published
    # workflows-bigquery-load sample has it), so lint warns instead.
    "raise": {"raise", "next"},
    "return": {"return", "next"},
    "steps": {"steps", "next"},
    "next": {"next"},
}
# Keys valid somewhere in a step body; used to tell "misplaced" from "unknown".
ALL_STEP_KEYS = set().union(*ALLOWED.values())
CONDITION_KEYS = {"condition", "next", "steps", "return", "raise", "assign"}
# A condition may also carry a step's body (`call`/`args` directly under it: the
# JSON Schema allows it, Google's published samples use it); it then runs as
# the condition's one step.
CONDITION_BODY_KEYS = {"call", "args", "result", "for", "parallel", "switch", "try",
                       "retry", "except"}
FOR_KEYS = {"value", "index", "in", "range", "steps"}
PARALLEL_KEYS = {"exception_policy", "shared", "concurrency_limit", "branches", "for"}
EXCEPT_KEYS = {"as", "steps"}
SPECIAL_NEXT = {"end", "break", "continue"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _pos(node: Any, key: Any = None, index: int | None = None) -> tuple[int, int]:
    """1-based (line, column) of a mapping key / sequence item, else of the node."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return (0, 0)
    try:
        if key is not None:
            line, col = lc.key(key)
        elif index is not None:
            line, col = lc.item(index)
        else:
            line, col = lc.line, lc.col
        return (line + 1, col + 1)
    except (KeyError, IndexError, TypeError, AttributeError):
        return (lc.line + 1, lc.col + 1)


def _vpos(node: Any, key: Any) -> tuple[int, int]:
    """Position of a mapping's value."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return (0, 0)
    try:
        line, col = lc.value(key)
        return (line + 1, col + 1)
    except (KeyError, TypeError, AttributeError):
        return _pos(node, key)


class _Positioned(dict):
    """Some keys of a loaded map, keeping the map's positions (its `.lc`)."""

    def __init__(self, items: dict, source: Any) -> None:
        super().__init__(items)
        self.lc = getattr(source, "lc", None)


def _scalar(v: Any) -> Any:
    """ruamel scalar subclasses -> plain Python values (as values.from_data does)."""
    return from_data(v) if not isinstance(v, dict | list) else v


def is_expression(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("${") and v.endswith("}")


class Parser:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.issues: list[Issue] = []
        self.exprs: list[Expr] = []  # every expression, for cross checks
        self.calls: list[tuple[str, tuple[int, int]]] = []  # call-step targets

    def err(self, pos: tuple[int, int], message: str) -> None:
        self.issues.append(Issue(pos[0], pos[1], message))

    # ---- values -------------------------------------------------------------

    def expr(self, text: str, pos: tuple[int, int]) -> Expr | None:
        inner = text[2:-1]
        if len(inner) > limits.MAX_EXPRESSION_CHARS:
            self.err(pos, f"expression is {len(inner)} characters long; the limit is "
                          f"{limits.MAX_EXPRESSION_CHARS}")
        try:
            node = parse_expression(inner)
        except ExprSyntaxError as exc:
            self.err(pos, f"invalid expression {text!r}: {exc.message} (at offset {exc.pos + 2})")
            return None
        except RecursionError:
            self.err(pos, "expression is nested too deeply")
            return None
        for value in _int_literals(node):
            if value > INT_MAX or value < INT_MIN:
                self.err(pos, f"integer literal {value} is outside the 64-bit range")
        e = Expr(inner, node, pos[0], pos[1])
        self.exprs.append(e)
        return e

    def template(self, v: Any, pos: tuple[int, int]) -> Any:
        """Definition data -> template (Expr for every `${...}` string, str map keys)."""
        if isinstance(v, dict):  # CommentedMap too
            out: dict[str, Any] = {}
            dynamic: list[tuple[Any, Any]] = []
            for k, x in v.items():
                ks = key_string(_scalar(k))
                val = self.template(x, _vpos(v, k))
                if is_expression(ks):
                    dynamic.append((self.expr(ks, _pos(v, k)), val))
                else:
                    out[ks] = val
                    dynamic.append((ks, val))
            if len(dynamic) != len(out):
                return DynMap(dynamic)
            return out
        if isinstance(v, list):  # CommentedSeq too
            return [self.template(x, _pos(v, index=i)) for i, x in enumerate(v)]
        v = _scalar(v)
        if is_expression(v):
            e = self.expr(v, pos)
            return e if e is not None else None
        return v

    def target(self, text: Any, pos: tuple[int, int]) -> Target | None:
        if not isinstance(text, str) or not text:
            self.err(pos, f"assignment target must be a variable name, got {text!r}")
            return None
        try:
            node = parse_expression(text)
        except ExprSyntaxError as exc:
            self.err(pos, f"invalid assignment target {text!r}: {exc.message}")
            return None
        path: list[Any] = []
        while isinstance(node, Attr | Index):
            if isinstance(node, Attr):
                path.append(("attr", node.name))
            else:
                path.append(("index", node.key))
            node = node.obj
        if not isinstance(node, Var):
            self.err(pos, f"invalid assignment target {text!r}")
            return None
        path.reverse()
        return Target(text, node.name, path)

    # ---- structure ----------------------------------------------------------

    def workflow(self, data: Any, source: str) -> Workflow:
        subs: dict[str, Subworkflow] = {}
        if len(source.encode("utf-8")) > limits.MAX_SOURCE_BYTES:
            self.err((1, 1), f"source is {len(source.encode('utf-8'))} bytes; the limit is "
                             f"{limits.MAX_SOURCE_BYTES} (128 KB)")
        if isinstance(data, list):
            subs["main"] = Subworkflow("main", _pos(data)[0], [], self.steps(data, _pos(data)))
        elif isinstance(data, dict):
            if "main" not in data:
                self.err(_pos(data), "a workflow made of subworkflows needs a 'main' block")
            for name, body in data.items():
                name_s = key_string(_scalar(name))
                subs[name_s] = self.subworkflow(name_s, body, data, name)
            if "main" in subs and len(subs["main"].params) > 1:
                self.err(_pos(data, "main"), "main takes at most one parameter (the runtime "
                                             "argument)")
        else:
            self.err((1, 1), "a workflow is a list of steps or a map with a 'main' block")
        wf = Workflow(self.filename, subs, source)
        for sub in subs.values():
            self.check_next(sub)
        self.check_calls(set(subs))
        return wf

    def check_calls(self, subworkflows: set[str]) -> None:
        """A plain (undotted) function name must be a subworkflow or a core builtin.

        Dotted names (text.split, googleapis.*) are left to run time: the
        standard library grows, and a false alarm here would reject valid files."""
        known = set(subworkflows)
        plain: set[str] = set()  # the core builtins, loaded with the stdlib on the first need

        def check(name: str, pos: tuple[int, int]) -> None:
            if "." in name or name in known:
                return
            if not plain:
                from wfgen.engine.stdlib import BUILTINS

                plain.update(n for n in BUILTINS if "." not in n)
                known.update(plain)
                if name in known:
                    return
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.err(pos, f"'{name}' is not a subworkflow or a standard function{hint}")

        for name, pos in self.calls:
            check(name, pos)
        for e in self.exprs:
            for name in _call_names(e.node):
                check(name, (e.line, e.column))

    def subworkflow(self, name: str, body: Any, parent: Any, key: Any) -> Subworkflow:
        pos = _pos(parent, key)
        if not isinstance(body, dict):
            self.err(pos, f"subworkflow '{name}' must be a map with 'steps' (and 'params')")
            return Subworkflow(name, pos[0], [], [])
        for k in body:
            if k not in ("params", "steps"):
                self.err(_pos(body, k), f"unknown key '{k}' in subworkflow '{name}' "
                                        "(expected params, steps)")
        params: list[tuple[str, bool, Any]] = []
        raw = body.get("params")
        if raw is not None:
            if not isinstance(raw, list):
                self.err(_pos(body, "params"), "params must be a list")
            else:
                for i, p in enumerate(raw):
                    ppos = _pos(raw, index=i)
                    if isinstance(p, str):
                        params.append((p, False, None))
                    elif isinstance(p, dict) and len(p) == 1:
                        (pname, default), = p.items()
                        params.append((str(pname), True, self.template(default, _vpos(p, pname))))
                    else:
                        self.err(ppos, "a parameter is a name or a one-key map name: default")
        if "steps" not in body:
            self.err(pos, f"subworkflow '{name}' has no steps")
            return Subworkflow(name, pos[0], params, [])
        return Subworkflow(name, pos[0], params, self.steps(body["steps"], _vpos(body, "steps")))

    def steps(self, raw: Any, pos: tuple[int, int]) -> list[Step]:
        if not isinstance(raw, list):
            self.err(pos, "steps must be a list of one-key maps (- name: ...)")
            return []
        if not raw:
            self.err(pos, "steps must not be empty")
        out: list[Step] = []
        for i, item in enumerate(raw):
            ipos = _pos(raw, index=i)
            if not isinstance(item, dict) or len(item) != 1:
                self.err(ipos, "each step is a one-key map: - step_name: {...}")
                continue
            (name, body), = item.items()
            step = self.step(str(_scalar(name)), body, _pos(item, name))
            if step is not None:
                out.append(step)
        return out

    def step(self, name: str, body: Any, pos: tuple[int, int]) -> Step | None:
        if not isinstance(body, dict):
            self.err(pos, f"step '{name}' must be a map (assign, call, switch, ...)")
            return None
        kinds = [k for k in STEP_KINDS if k in body]
        if len(kinds) > 1:
            self.err(pos, f"step '{name}' mixes {', '.join(kinds)}; a step does one thing")
        kind = kinds[0] if kinds else ("next" if "next" in body else "")
        if not kind:
            self.err(pos, f"step '{name}' has no action (assign, call, switch, for, parallel, "
                          "try, raise, return, steps, next)")
            owners = {"args": "call", "result": "call", "retry": "try", "except": "try"}
            for k in body:
                if k not in ALL_STEP_KEYS:
                    self.err(_pos(body, k), f"unknown key '{k}' in step '{name}'")
                elif k in owners:
                    self.err(_pos(body, k), f"'{k}' is not allowed in step '{name}' without "
                                            f"'{owners[k]}'")
            return None
        allowed = ALLOWED[kind]
        for k in body:
            if k not in allowed:
                where = (f"not allowed in a '{kind}' step" if k in ALL_STEP_KEYS
                         else "unknown key")
                self.err(_pos(body, k), f"{where} '{k}' in step '{name}'")
        step = Step(name, pos[0], pos[1], kind)
        if "next" in body:
            step.next = self.next_name(body["next"], _vpos(body, "next"))
        getattr(self, "k_" + kind)(step, body)
        return step

    def next_name(self, v: Any, pos: tuple[int, int]) -> str | None:
        if not isinstance(v, str) or is_expression(v):
            self.err(pos, f"next must be a step name (or end, break, continue), got {v!r}")
            return None
        return str(v)

    def assignments(self, raw: Any, pos: tuple[int, int], name: str) -> list:
        out: list = []
        if not isinstance(raw, list):
            self.err(pos, f"assign in step '{name}' must be a list of one-key maps")
            return out
        if len(raw) > limits.MAX_ASSIGNMENTS:
            self.err(pos, f"step '{name}' has {len(raw)} assignments; the limit is "
                          f"{limits.MAX_ASSIGNMENTS}")
        for i, item in enumerate(raw):
            ipos = _pos(raw, index=i)
            if not isinstance(item, dict) or len(item) != 1:
                self.err(ipos, "each assignment is a one-key map: - name: value")
                continue
            (k, v), = item.items()
            t = self.target(_scalar(k), _pos(item, k))
            val = self.template(v, _vpos(item, k))
            if t is not None:
                out.append((t, val, _pos(item, k)[0]))
        return out

    def k_next(self, step: Step, body: dict) -> None:
        pass

    def k_assign(self, step: Step, body: dict) -> None:
        step.assign = self.assignments(body["assign"], _pos(body, "assign"), step.name)

    def k_call(self, step: Step, body: dict) -> None:
        call = _scalar(body["call"])
        if not isinstance(call, str) or not all(_NAME.match(p) for p in call.split(".")):
            self.err(_vpos(body, "call"), f"call must name a function or subworkflow, got {call!r}")
        step.call = str(call)
        self.calls.append((step.call, _vpos(body, "call")))
        if "args" in body:
            args = body["args"]
            if not isinstance(args, dict | list):
                self.err(_vpos(body, "args"), "args must be a map of argument names to "
                                              "values, or a list of positional values")
            else:
                step.args = self.template(args, _vpos(body, "args"))
        if "result" in body:
            r = _scalar(body["result"])
            if not isinstance(r, str) or not _NAME.match(r):
                self.err(_vpos(body, "result"), f"result must be a variable name, got {r!r}")
            else:
                step.result = r

    def k_raise(self, step: Step, body: dict) -> None:
        step.value = self.template(body["raise"], _vpos(body, "raise"))

    def k_return(self, step: Step, body: dict) -> None:
        step.value = self.template(body["return"], _vpos(body, "return"))

    def k_steps(self, step: Step, body: dict) -> None:
        step.steps = self.steps(body["steps"], _vpos(body, "steps"))

    def k_switch(self, step: Step, body: dict) -> None:
        raw = body["switch"]
        pos = _pos(body, "switch")
        if not isinstance(raw, list) or not raw:
            self.err(pos, f"switch in step '{step.name}' must be a non-empty list of conditions")
            return
        if len(raw) > limits.MAX_CONDITIONS:
            self.err(pos, f"step '{step.name}' has {len(raw)} conditions; the limit is "
                          f"{limits.MAX_CONDITIONS}")
        for i, c in enumerate(raw):
            cpos = _pos(raw, index=i)
            if not isinstance(c, dict):
                self.err(cpos, "each switch entry is a map with 'condition'")
                continue
            inline = any(k in CONDITION_BODY_KEYS for k in c)
            for k in c:
                if k not in CONDITION_KEYS and k not in CONDITION_BODY_KEYS:
                    self.err(_pos(c, k), f"unknown key '{k}' in a switch condition (expected "
                                         "condition, next, steps, assign, return, raise, or "
                                         "a step's body such as call/args)")
            if "condition" not in c:
                self.err(cpos, "switch entry without 'condition'")
                continue
            cond = Condition(cpos[0], self.template(c["condition"], _vpos(c, "condition")))
            if "next" in c:
                cond.next = self.next_name(c["next"], _vpos(c, "next"))
            if inline:
                body = {k: v for k, v in c.items() if k not in ("condition", "next")}
                inner = self.step(step.name, _Positioned(body, c), cpos)
                cond.steps = [inner] if inner is not None else []
                cond.inline = True
                step.conditions.append(cond)
                continue
            if "steps" in c:
                cond.steps = self.steps(c["steps"], _vpos(c, "steps"))
            if "assign" in c:
                cond.assign = self.assignments(c["assign"], _pos(c, "assign"), step.name)
            if "return" in c:
                cond.has_return = True
                cond.return_value = self.template(c["return"], _vpos(c, "return"))
            if "raise" in c:
                cond.has_raise = True
                cond.raise_value = self.template(c["raise"], _vpos(c, "raise"))
            if cond.has_return and cond.has_raise:
                self.err(cpos, "a switch condition cannot both return and raise")
            step.conditions.append(cond)

    def loop(self, raw: Any, pos: tuple[int, int], name: str) -> Loop | None:
        if not isinstance(raw, dict):
            self.err(pos, f"for in step '{name}' must be a map (value, in|range, steps)")
            return None
        for k in raw:
            if k not in FOR_KEYS:
                self.err(_pos(raw, k), f"unknown key '{k}' in for loop (expected value, index, "
                                       "in, range, steps)")
        value = _scalar(raw.get("value"))
        if not isinstance(value, str) or not _NAME.match(value):
            self.err(pos, f"for loop in step '{name}' needs 'value': a variable name")
            value = "_"
        index = _scalar(raw.get("index"))
        if index is not None and (not isinstance(index, str) or not _NAME.match(index)):
            self.err(_vpos(raw, "index"), "for loop 'index' must be a variable name")
            index = None
        has_in, has_range = "in" in raw, "range" in raw
        if has_in == has_range:
            self.err(pos, f"for loop in step '{name}' needs exactly one of 'in' and 'range'")
        items = self.template(raw["in"], _vpos(raw, "in")) if has_in else None
        rng = self.template(raw["range"], _vpos(raw, "range")) if has_range else None
        if isinstance(rng, list) and len(rng) != 2:
            self.err(_vpos(raw, "range"), "range is a list of two numbers [start, end]")
        if "steps" not in raw:
            self.err(pos, f"for loop in step '{name}' has no steps")
            steps: list[Step] = []
        else:
            steps = self.steps(raw["steps"], _vpos(raw, "steps"))
        return Loop(value, index, items, rng, steps)

    def k_for(self, step: Step, body: dict) -> None:
        step.loop = self.loop(body["for"], _pos(body, "for"), step.name)

    def k_parallel(self, step: Step, body: dict) -> None:
        raw = body["parallel"]
        pos = _pos(body, "parallel")
        if not isinstance(raw, dict):
            self.err(pos, f"parallel in step '{step.name}' must be a map (branches or for)")
            return
        for k in raw:
            if k not in PARALLEL_KEYS:
                self.err(_pos(raw, k), f"unknown key '{k}' in parallel (expected branches, for, "
                                       "shared, concurrency_limit, exception_policy)")
        shared: list[str] = []
        if "shared" in raw:
            s = raw["shared"]
            if not isinstance(s, list) or not all(isinstance(x, str) for x in s):
                self.err(_vpos(raw, "shared"), "shared must be a list of variable names")
            else:
                shared = [str(x) for x in s]
        policy = _scalar(raw.get("exception_policy"))
        if policy is not None and policy != "continueAll":
            self.err(_vpos(raw, "exception_policy"),
                     f"exception_policy must be continueAll, got {policy!r}")
        limit = (self.template(raw["concurrency_limit"], _vpos(raw, "concurrency_limit"))
                 if "concurrency_limit" in raw else None)
        has_b, has_f = "branches" in raw, "for" in raw
        if has_b == has_f:
            self.err(pos, f"parallel in step '{step.name}' needs exactly one of branches and for")
        branches = None
        loop = None
        if has_b:
            b = raw["branches"]
            bpos = _pos(raw, "branches")
            branches = []
            if not isinstance(b, list) or not b:
                self.err(bpos, "branches must be a non-empty list of - name: {steps: [...]}")
            else:
                if len(b) > limits.MAX_BRANCHES:
                    self.err(bpos, f"step '{step.name}' has {len(b)} branches; the limit is "
                                   f"{limits.MAX_BRANCHES}")
                for i, item in enumerate(b):
                    ipos = _pos(b, index=i)
                    if not isinstance(item, dict) or len(item) != 1:
                        self.err(ipos, "each branch is a one-key map: - name: {steps: [...]}")
                        continue
                    (bname, bbody), = item.items()
                    if not isinstance(bbody, dict) or "steps" not in bbody:
                        self.err(_pos(item, bname), f"branch '{bname}' needs steps")
                        continue
                    for k in bbody:
                        if k != "steps":
                            self.err(_pos(bbody, k), f"unknown key '{k}' in branch '{bname}'")
                    branches.append((str(bname), ipos[0],
                                     self.steps(bbody["steps"], _vpos(bbody, "steps"))))
        if has_f:
            loop = self.loop(raw["for"], _vpos(raw, "for"), step.name)
        step.parallel = Parallel(shared, policy, limit, branches, loop,
                                 _vpos(raw, "shared") if "shared" in raw else (0, 0))

    def k_try(self, step: Step, body: dict) -> None:
        raw = body["try"]
        pos = _pos(body, "try")
        if not isinstance(raw, dict):
            self.err(pos, f"try in step '{step.name}' must be a map (steps, or a call/assign)")
            step.try_body = []
        elif "steps" in raw and len(raw) == 1:
            step.try_body = self.steps(raw["steps"], _vpos(raw, "steps"))
        else:
            if "next" in raw:
                self.err(_pos(raw, "next"), "next may not sit inside try; put it beside try on "
                                            "the step")
                raw = {k: v for k, v in raw.items() if k != "next"}
            inner = self.step(step.name, raw, pos)
            step.try_body = [inner] if inner is not None else []
            step.try_single = True
        if "retry" in body:
            step.retry = self.template(body["retry"], _vpos(body, "retry"))
            if isinstance(step.retry, dict):
                for k in step.retry:
                    if k not in ("predicate", "max_retries", "backoff"):
                        self.err(_vpos(body, "retry"), f"unknown key '{k}' in retry (expected "
                                                       "predicate, max_retries, backoff)")
        if "except" in body:
            ex = body["except"]
            epos = _vpos(body, "except")
            if not isinstance(ex, dict) or "steps" not in ex:
                self.err(epos, f"except in step '{step.name}' must be a map with steps (and as)")
                step.except_steps = []
            else:
                for k in ex:
                    if k not in EXCEPT_KEYS:
                        self.err(_pos(ex, k), f"unknown key '{k}' in except (expected as, steps)")
                a = _scalar(ex.get("as"))
                if a is not None and (not isinstance(a, str) or not _NAME.match(a)):
                    self.err(_vpos(ex, "as"), "except 'as' must be a variable name")
                    a = None
                step.except_as = a
                step.except_steps = self.steps(ex["steps"], _vpos(ex, "steps"))
        if "retry" not in body and "except" not in body:
            self.err(pos, f"try in step '{step.name}' needs retry or except")

    # ---- cross checks -------------------------------------------------------

    def check_next(self, sub: Subworkflow) -> None:
        names: set[str] = set()

        def collect(steps: list[Step]) -> None:
            for s in steps:
                names.add(s.name)
                for child in children(s):
                    collect(child)

        collect(sub.steps)

        def check(steps: list[Step], in_loop: bool) -> None:
            for s in steps:
                targets = [s.next] + [c.next for c in s.conditions]
                for t in targets:
                    if t is None or t == "end":
                        continue
                    if t in ("break", "continue"):
                        if not in_loop:
                            self.err((s.line, s.column),
                                     f"next: {t} in step '{s.name}' is outside a for loop")
                    elif t not in names:
                        self.err((s.line, s.column), f"step '{s.name}' jumps to '{t}', which is "
                                                     f"not a step of '{sub.name}'")
                for child in children(s):
                    loopish = s.kind == "for" or (
                        s.kind == "parallel" and s.parallel is not None
                        and s.parallel.loop is not None)
                    check(child, in_loop or loopish)

        check(sub.steps, False)


def children(s: Step) -> list[list[Step]]:
    """Nested step lists of a step (for walking the tree)."""
    out: list[list[Step]] = []
    if s.steps:
        out.append(s.steps)
    for c in s.conditions:
        if c.steps:
            out.append(c.steps)
    if s.loop is not None:
        out.append(s.loop.steps)
    if s.parallel is not None:
        for _, _, b in s.parallel.branches or []:
            out.append(b)
        if s.parallel.loop is not None:
            out.append(s.parallel.loop.steps)
    if s.try_body:
        out.append(s.try_body)
    if s.except_steps:
        out.append(s.except_steps)
    return out


def _call_names(node: Any) -> list[str]:
    """Names of every function called in an expression tree."""
    out: list[str] = []
    if isinstance(node, Call):
        out.append(node.name)
    for f in getattr(node, "__slots__", ()):
        v = getattr(node, f, None)
        items = v if isinstance(v, tuple) else (v,)
        for x in items:
            for y in (x if isinstance(x, tuple) else (x,)):
                if isinstance(y, Node):
                    out.extend(_call_names(y))
    return out


def _int_literals(node: Any) -> list[int]:
    """Every integer constant in an expression tree."""
    if isinstance(node, Const):
        return [node.value] if type(node.value) is int else []
    out: list[int] = []
    for f in getattr(node, "__slots__", ()):
        v = getattr(node, f, None)
        items = v if isinstance(v, tuple) else (v,)
        for x in items:
            for y in (x if isinstance(x, tuple) else (x,)):
                if isinstance(y, Node):
                    out.extend(_int_literals(y))
    return out


def load_yaml(text: str, filename: str) -> Any:
    """Round-trip load (keeps .lc positions, YAML 1.2 core schema, bounded alias
    expansion: wfgen.yamlload); YAML errors become WorkflowSyntaxError."""
    try:
        return flow_exprs.load(text)  # yamlload, with `[${a}, 1]` as Google reads it
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        msg = f"invalid YAML: {exc.problem or exc.context}"
        raise WorkflowSyntaxError(msg, line, col, filename) from None
    except YAMLError as exc:
        raise WorkflowSyntaxError(f"invalid YAML: {exc}", 0, 0, filename) from None
    except Exception as exc:  # the YAML library itself trips on some inputs (e.g. "-_")
        raise WorkflowSyntaxError(f"invalid YAML (the parser failed: {type(exc).__name__})",
                                  1, 1, filename) from None


def parse_definition(text: str, filename: str) -> tuple[Workflow | None, list[Issue]]:
    """Parse and check; returns the tree (None if unusable) and every issue found."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > 4 * limits.MAX_SOURCE_BYTES:  # far over the limit: not worth parsing
        return None, [Issue(1, 1, f"source is {size} bytes; the limit is "
                                  f"{limits.MAX_SOURCE_BYTES} (128 KB)")]
    try:
        data = load_yaml(text, filename)
    except WorkflowSyntaxError as exc:
        return None, list(exc.issues)
    p = Parser(filename)
    if data is None:
        return None, [Issue(1, 1, "the workflow is empty")]
    wf = p.workflow(data, text)
    from wfgen.engine.deploy_checks import deploy_errors

    p.issues += deploy_errors(wf, p.exprs)  # what Google's deploy refuses, never run
    p.issues.sort(key=lambda i: (i.line, i.column))
    return wf, p.issues


def load_workflow(text: str, filename: str = "<workflow>") -> Workflow:
    """Parse a definition for running; raises WorkflowSyntaxError naming the line."""
    wf, issues = parse_definition(text, filename)
    if issues or wf is None:
        first = issues[0] if issues else Issue(0, 0, "unusable workflow")
        more = f" (and {len(issues) - 1} more problems)" if len(issues) > 1 else ""
        raise WorkflowSyntaxError(first.message + more, first.line, first.column, filename,
                                  issues)
    return wf


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
