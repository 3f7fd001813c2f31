"""The interpreter: compiles a parsed workflow into closures and runs them.

Design for speed (see benchmarks/bench_engine.py): every step is compiled once
into a closure `op(ctx) -> signal`; a block of steps is a tuple of ops run by a
small loop; `next` targets are resolved to indices in the same block at compile
time (a `Goto` carries a name outward only when the target is in an enclosing
block). Signals: None (fall through), int (jump in this block), Goto, END,
BREAK, CONTINUE, Ret(value). Errors travel as WorkflowError exceptions and get
the innermost failing step's name on the way out.

Scopes: a subworkflow call gets a fresh variable dict. Variables first created
inside a for loop or an except block are deleted when it ends (so they do not
exist after it, as documented). A parallel branch runs in its own thread with
a BranchVars dict: reads fall through to the parent scope, writes are local
except for the names listed in `shared`, which go to the parent under the
execution lock.

Step accounting: each step run (including each retry attempt's steps and
steps run in predicates, subworkflows and branches) counts once; the limit of
100,000 raises ResourceLimitError. Billing classification is in docs/engine.md."""

from __future__ import annotations

import inspect
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from wfgen.engine import limits
from wfgen.engine import values as V
from wfgen.engine.connectors import (
    ConnectorRegistry,
    ConnectorResult,
    as_registry,
    is_connector_name,
    missing_connector,
)
from wfgen.engine.errors import WorkflowError, make_error
from wfgen.engine.expr.compile import CompileEnv, call_python, compile_expr
from wfgen.engine.services import FunctionRef, HttpRequest, HttpResponse, RealClock, Services
from wfgen.engine.syntax import WorkflowSyntaxError
from wfgen.engine.tree import Condition, DynMap, Expr, Loop, Step, Subworkflow, Target, Workflow

Op = Callable[["Ctx"], Any]


# ---- signals ----------------------------------------------------------------


class _Signal:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


END = _Signal("END")
BREAK = _Signal("BREAK")
CONTINUE = _Signal("CONTINUE")


class Goto:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Ret:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Cancelled(BaseException):
    """Stops a parallel branch after a sibling failed (not catchable by except)."""


_CONTAINERS = (dict, list)


# ---- contexts and scopes ----------------------------------------------------


class BranchVars(dict):
    """Variables of a parallel branch: local writes, parent reads, shared writes."""

    __slots__ = ("parent", "shared")

    def __init__(self, parent: dict, shared: frozenset[str]) -> None:
        super().__init__()
        self.parent = parent
        self.shared = shared

    def __missing__(self, key: str) -> Any:
        return self.parent[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self.shared:
            self.parent[key] = value
        else:
            dict.__setitem__(self, key, value)


class Ctx:
    """One thread of execution: the main flow or one parallel branch."""

    __slots__ = ("cancelled", "depth", "exe", "frames", "limit", "pdepth", "rt", "steps", "vars")

    def __init__(self, exe: Execution, vars_: dict, limit: int, depth: int = 0,
                 pdepth: int = 0) -> None:
        self.exe = exe
        self.rt = exe.rt
        self.vars = vars_
        self.steps = 0
        self.limit = limit
        self.depth = depth
        self.pdepth = pdepth
        self.cancelled = False
        self.frames: list[dict] = []


def _slow_check(ctx: Ctx) -> None:
    """Called when ctx.steps passes ctx.limit: cancellation or the step quota."""
    if ctx.cancelled:
        raise _Cancelled()
    raise make_error("ResourceLimitError",
                     f"the execution ran more than {limits.MAX_STEPS} steps")


# ---- blocks -------------------------------------------------------------------


class Block:
    """A compiled list of steps."""

    __slots__ = ("index", "names", "ops")

    def __init__(self, names: list[str], ops: list[Op]) -> None:
        self.names = tuple(names)
        self.ops = tuple(ops)
        self.index: dict[str, int] = {}
        for i, n in enumerate(names):
            self.index.setdefault(n, i)

    def run(self, ctx: Ctx) -> Any:
        ops = self.ops
        n = len(ops)
        pc = 0
        while pc < n:
            ctx.steps += 1
            if ctx.steps > ctx.limit:
                _slow_check(ctx)
            try:
                sig = ops[pc](ctx)
            except WorkflowError as exc:
                if getattr(exc, "step", None) is None:
                    exc.step = self.names[pc]  # type: ignore[attr-defined]
                raise
            if sig is None:
                pc += 1
            elif type(sig) is int:
                pc = sig
            elif type(sig) is Goto:
                i = self.index.get(sig.name)
                if i is None:
                    return sig
                pc = i
            else:
                return sig
        return None


# ---- results --------------------------------------------------------------------


@dataclass
class ErrorInfo:
    """Why an execution failed: the error value and the step that raised it."""

    value: Any
    step: str | None
    subworkflow: str | None = None

    @property
    def tags(self) -> list[str]:
        return WorkflowError(self.value).tags

    @property
    def message(self) -> str:
        return WorkflowError(self.value).message

    def to_json(self) -> dict[str, Any]:
        return {"error": _jsonable(self.value), "step": self.step,
                "subworkflow": self.subworkflow}

    def __str__(self) -> str:
        return f"{WorkflowError(self.value)} (step {self.step})"


def _jsonable(v: Any) -> Any:
    try:
        return V.to_json_compatible(v)
    except WorkflowError:
        return repr(v)


@dataclass
class ExecutionResult:
    state: str  # SUCCEEDED, FAILED or CANCELLED
    result: Any = None
    error: ErrorInfo | None = None
    steps_internal: int = 0
    steps_external: int = 0
    duration: float = 0.0
    logs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return self.steps_internal + self.steps_external

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (for the local REST emulator and reports)."""
        out: dict[str, Any] = {
            "state": self.state,
            "steps": {"internal": self.steps_internal, "external": self.steps_external},
            "duration": self.duration,
        }
        if self.state == "SUCCEEDED":
            out["result"] = self.result
        if self.error is not None:
            out.update(self.error.to_json())
        return out


# ---- compilation ------------------------------------------------------------------


class _CState:
    """Compile-time state: where we are (for shared variables and resolution)."""

    def __init__(self, env: CompileEnv, shared: frozenset[str] = frozenset()) -> None:
        self.env = env
        self.shared = shared


def _const_template(t: Any) -> bool:
    if isinstance(t, Expr | DynMap):
        return False
    if type(t) is dict:
        return all(_const_template(v) for v in t.values())
    if type(t) is list:
        return all(_const_template(v) for v in t)
    return True


def compile_template(t: Any, env: CompileEnv) -> Op:
    """Definition data with embedded `${...}` -> fn(ctx) building a fresh value."""
    if isinstance(t, Expr):
        try:
            return compile_expr(t.node, env)
        except WorkflowError as exc:
            raise WorkflowSyntaxError(exc.message, t.line, t.column) from None
    if isinstance(t, DynMap):
        entries = [(compile_template(k, env), compile_template(v, env)) for k, v in t.entries]

        def dyn_map(ctx: Ctx) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for kf, vf in entries:
                k = kf(ctx)
                if type(k) is not str:
                    raise make_error("TypeError", f"map keys must be strings, got "
                                                  f"{V.type_name(k)}")
                out[k] = vf(ctx)
            return out

        return dyn_map
    if _const_template(t):
        if type(t) in _CONTAINERS:
            deep = V.deep_copy
            return lambda ctx: deep(t)
        return lambda ctx: t
    if type(t) is dict:
        items = [(k, compile_template(v, env)) for k, v in t.items()]
        return lambda ctx: {k: f(ctx) for k, f in items}
    parts = [compile_template(v, env) for v in t]
    return lambda ctx: [f(ctx) for f in parts]


class Program:
    """A compiled workflow: one Block per subworkflow, plus parameter binders."""

    def __init__(self, wf: Workflow) -> None:
        self.wf = wf
        self.env = CompileEnv(set(wf.subworkflows))
        self.subs: dict[str, tuple[Subworkflow, Block, list[tuple[str, bool, Op | None]]]] = {}
        for name, sub in wf.subworkflows.items():
            st = _CState(self.env)
            block = self.block(sub.steps, st)
            params = [(p, has, compile_template(d, self.env) if has else None)
                      for p, has, d in sub.params]
            self.subs[name] = (sub, block, params)

    # -- blocks and steps

    def block(self, steps: list[Step], st: _CState) -> Block:
        names = [s.name for s in steps]
        index: dict[str, int] = {}
        for i, n in enumerate(names):
            index.setdefault(n, i)

        def resolve(target: str | None) -> Any:
            if target is None:
                return None
            if target == "end":
                return END
            if target == "break":
                return BREAK
            if target == "continue":
                return CONTINUE
            if target in index:
                return index[target]
            return Goto(target)

        ops: list[Op] = []
        for s in steps:
            try:
                ops.append(self.step(s, st, resolve))
            except WorkflowSyntaxError as exc:
                if not exc.line:
                    exc.line = s.line
                raise
        return Block(names, ops)

    def step(self, s: Step, st: _CState, resolve: Callable[[str | None], Any]) -> Op:
        nxt = resolve(s.next)
        return getattr(self, "s_" + s.kind)(s, st, nxt, resolve)

    def s_next(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        return lambda ctx: nxt

    def s_assign(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        run = self.assignments(s.assign, st)
        if len(s.assign) == 1 and not s.assign[0][0].path and s.assign[0][0].root not in st.shared:
            # The hot path of loops: one plain variable, fused into a single closure.
            name = s.assign[0][0].root
            val = compile_template(s.assign[0][1], self.env)
            store = _store_value

            def assign_var(ctx: Ctx) -> Any:
                v = val(ctx)
                t = type(v)
                if t is dict or t is list or t is str:
                    v = store(ctx, v)
                ctx.vars[name] = v
                return nxt

            return assign_var
        if len(run) == 1:
            only = run[0]

            def assign1(ctx: Ctx) -> Any:
                only(ctx)
                return nxt

            op: Op = assign1
        else:
            runs = tuple(run)

            def assign(ctx: Ctx) -> Any:
                for r in runs:
                    r(ctx)
                return nxt

            op = assign
        roots = sorted({t.root for t, _, _ in s.assign if t.root in st.shared})
        if roots:
            return _locked(op, roots)
        return op

    def assignments(self, items: list[tuple[Target, Any, int]], st: _CState) -> list[Op]:
        out: list[Op] = []
        for target, tmpl, _line in items:
            out.append(self.setter(target, compile_template(tmpl, self.env)))
        return out

    def setter(self, target: Target, val: Op) -> Op:
        """target := val(ctx), with value semantics for containers."""
        root = target.root
        store = _store_value
        if not target.path:

            def set_var(ctx: Ctx) -> None:
                v = val(ctx)
                t = type(v)
                if t is dict or t is list or t is str:
                    v = store(ctx, v)
                ctx.vars[root] = v

            return set_var
        keys: list[Op] = []
        for kind, k in target.path:
            if kind == "attr":
                keys.append(lambda ctx, k=k: k)
            else:
                keys.append(compile_expr(k, self.env))
        last = keys[-1]
        inner = keys[:-1]
        get_item = V.get_item
        set_item = V.set_item

        def set_path(ctx: Ctx) -> None:
            v = val(ctx)
            t = type(v)
            if t is dict or t is list or t is str:
                v = store(ctx, v)
            try:
                o = ctx.vars[root]
            except KeyError:
                raise make_error("KeyError", f"variable not found: {root}") from None
            for k in inner:
                o = get_item(o, k(ctx))
            set_item(o, last(ctx), v)

        return set_path

    def s_call(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        name = s.call or ""
        args = compile_template(s.args, self.env) if s.args is not None else None
        result = s.result
        store = _store_value

        def call(ctx: Ctx) -> Any:
            a = args(ctx) if args is not None else {}
            v = ctx.exe.call_named(name, a, ctx)
            if result is not None:
                t = type(v)
                if t is dict or t is list or t is str:
                    v = store(ctx, v)
                ctx.vars[result] = v
            return nxt

        # A shared `result` is stored by one dict assignment (atomic); the call
        # itself runs unlocked because it may block or start parallel work.
        return call

    def s_raise(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        val = compile_template(s.value, self.env)

        def raise_(ctx: Ctx) -> Any:
            raise WorkflowError(V.deep_copy(val(ctx)))

        return raise_

    def s_return(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        val = compile_template(s.value, self.env)
        return lambda ctx: Ret(val(ctx))

    def s_steps(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        inner = self.block(s.steps, st)

        def steps(ctx: Ctx) -> Any:
            sig = inner.run(ctx)
            return nxt if sig is None else sig

        return steps

    def s_switch(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        branches = [(compile_template(c.condition, self.env), self.condition_action(c, st, nxt,
                                                                                  resolve))
                    for c in s.conditions]
        truth_err = V.truth

        def switch(ctx: Ctx) -> Any:
            for cond, action in branches:
                c = cond(ctx)
                if c is True:
                    return action(ctx)
                if c is not False:
                    truth_err(c)
            return nxt

        return switch

    def condition_action(self, c: Condition, st: _CState, default_next: Any,
                         resolve: Any) -> Op:
        assign = self.assignments(c.assign, st) if c.assign else []
        block = self.block(c.steps, st) if c.steps else None
        ret = compile_template(c.return_value, self.env) if c.has_return else None
        rai = compile_template(c.raise_value, self.env) if c.has_raise else None
        target = resolve(c.next) if c.next is not None else default_next
        roots = sorted({t.root for t, _, _ in (c.assign or []) if t.root in st.shared})

        def run_assign(ctx: Ctx) -> None:
            for a in assign:
                a(ctx)

        do_assign: Op = _locked(run_assign, roots) if roots else run_assign

        def action(ctx: Ctx) -> Any:
            if assign:
                do_assign(ctx)
            if block is not None:
                sig = block.run(ctx)
                if sig is not None:
                    return sig
            if ret is not None:
                return Ret(ret(ctx))
            if rai is not None:
                raise WorkflowError(V.deep_copy(rai(ctx)))
            return target

        return action

    # -- loops

    def loop_items(self, loop: Loop) -> Op:
        if loop.items is not None:
            items = compile_template(loop.items, self.env)

            def get_items(ctx: Ctx) -> list[Any]:
                coll = items(ctx)
                if type(coll) is not list:
                    raise make_error("TypeError", f"for loop 'in' needs a list, got "
                                                  f"{V.type_name(coll)}")
                return list(coll)

            return get_items
        rng = compile_template(loop.range, self.env)

        def get_range(ctx: Ctx) -> Any:
            r = rng(ctx)
            if type(r) is not list or len(r) != 2:
                raise make_error("TypeError", "for loop 'range' needs a list [start, end]")
            a, b = r
            for x in (a, b):
                if type(x) not in (int, float):
                    raise make_error("TypeError", f"range bounds must be numbers, got "
                                                  f"{V.type_name(x)}")
            if type(a) is int and type(b) is int:
                return range(a, b + 1)
            out = []
            x = float(a)
            while x <= b:
                out.append(x)
                x += 1.0
            return out

        return get_range

    def s_for(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        loop = s.loop
        assert loop is not None
        get_items = self.loop_items(loop)
        body = self.block(loop.steps, st)
        vname, iname = loop.value, loop.index
        run = body.run
        deep = V.deep_copy
        store = _store_value

        def for_(ctx: Ctx) -> Any:
            items = get_items(ctx)
            vs = ctx.vars
            before = set(vs)
            saved_v = vs[vname] if vname in before else None
            saved_i = vs[iname] if iname is not None and iname in before else None
            sig: Any = None
            try:
                for i, item in enumerate(items):
                    t = type(item)
                    if t is dict or t is list:
                        item = store(ctx, deep(item))
                    vs[vname] = item
                    if iname is not None:
                        vs[iname] = i
                    sig = run(ctx)
                    if sig is None or sig is CONTINUE:
                        continue
                    if sig is BREAK:
                        sig = None
                        break
                    break  # Ret, END, Goto leave the loop
            finally:
                for k in [k for k in vs if k not in before]:
                    dict.__delitem__(vs, k)
                if vname in before:
                    vs[vname] = saved_v
                if iname is not None and iname in before:
                    vs[iname] = saved_i
            return nxt if sig is None else sig

        return for_

    # -- parallel

    def s_parallel(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        par = s.parallel
        assert par is not None
        shared = frozenset(par.shared)
        inner = _CState(self.env, st.shared | shared)
        limit_f = (compile_template(par.concurrency_limit, self.env)
                   if par.concurrency_limit is not None else None)
        continue_all = par.exception_policy == "continueAll"
        tasks: list[tuple[str, Block]] = []
        loop_items = None
        loop_block = None
        vname = iname = None
        if par.branches is not None:
            tasks = [(name, self.block(steps, inner)) for name, _line, steps in par.branches]
        elif par.loop is not None:
            loop_items = self.loop_items(par.loop)
            loop_block = self.block(par.loop.steps, inner)
            vname, iname = par.loop.value, par.loop.index

        def parallel(ctx: Ctx) -> Any:
            if ctx.pdepth >= limits.MAX_PARALLEL_DEPTH:
                raise make_error("ParallelNestingError",
                                 f"parallel steps nest at most {limits.MAX_PARALLEL_DEPTH} deep")
            vs = ctx.vars
            for name in shared:
                try:
                    vs[name]
                except KeyError:
                    raise make_error("KeyError", f"shared variable {name} must be assigned "
                                                 "before the parallel step") from None
            cap = limits.MAX_CONCURRENT_BRANCHES
            if limit_f is not None:
                lim = limit_f(ctx)
                if type(lim) is not int or lim < 1:
                    raise make_error("TypeError", "concurrency_limit must be a positive integer")
                cap = min(cap, lim)
            units: list[tuple[Block, dict[str, Any]]] = []
            if loop_block is not None and loop_items is not None:
                for i, item in enumerate(loop_items(ctx)):
                    local = {vname: V.deep_copy(item)}
                    if iname is not None:
                        local[iname] = i
                    units.append((loop_block, local))
            else:
                units = [(b, {}) for _, b in tasks]
            ctx.exe.run_branches(ctx, units, shared, cap, continue_all)
            return nxt

        return parallel

    # -- try / retry / except

    def s_try(self, s: Step, st: _CState, nxt: Any, resolve: Any) -> Op:
        body_steps = s.try_body or []
        if s.try_single and body_steps:
            # A single call/assign under try: the step itself, not a nested block.
            one = self.step(body_steps[0], st, lambda t: None)

            def run_body(ctx: Ctx) -> Any:
                return one(ctx)

            single = True
        else:
            body = self.block(body_steps, st)
            run_body = body.run
            single = False
        retry = compile_template(s.retry, self.env) if s.retry is not None else None
        exc_block = self.block(s.except_steps, st) if s.except_steps else None
        has_except = s.except_steps is not None
        as_name = s.except_as

        def try_(ctx: Ctx) -> Any:
            attempt = 0
            policy: tuple[Any, int, float, float, float] | None = None
            delay = 0.0
            while True:
                try:
                    sig = run_body(ctx)
                    return nxt if sig is None else sig
                except WorkflowError as exc:
                    if single and getattr(exc, "step", None) is None:
                        exc.step = s.name  # type: ignore[attr-defined]
                    if retry is not None:
                        if policy is None:
                            policy = _retry_policy(retry(ctx))
                            delay = policy[2]
                        predicate, max_retries, _init, max_delay, mult = policy
                        if attempt < max_retries and ctx.exe.predicate(predicate, exc.value,
                                                                       ctx):
                            attempt += 1
                            ctx.rt.clock.sleep(delay)
                            delay = min(delay * mult, max_delay)
                            if single:
                                ctx.steps += 1  # the retried step is billed again
                            continue
                    if not has_except:
                        raise
                    err = exc
                sig = _run_except(ctx, exc_block, as_name, err)
                return nxt if sig is None else sig

        return try_


def _run_except(ctx: Ctx, block: Block | None, as_name: str | None, err: WorkflowError) -> Any:
    vs = ctx.vars
    before = set(vs)
    shadow = as_name is not None and as_name in before
    saved = vs[as_name] if shadow and as_name is not None else None
    if as_name is not None:
        vs[as_name] = V.deep_copy(err.value)
    try:
        return block.run(ctx) if block is not None else None
    finally:
        for k in [k for k in vs if k not in before]:
            dict.__delitem__(vs, k)
        if shadow and as_name is not None:
            vs[as_name] = saved


def _retry_policy(p: Any) -> tuple[Any, int, float, float, float]:
    """A retry map -> (predicate, max_retries, initial_delay, max_delay, multiplier)."""
    if type(p) is not dict:
        raise make_error("TypeError", f"retry must be a map, got {V.type_name(p)}")
    pred = p.get("predicate")
    if pred is None:
        raise make_error("TypeError", "retry needs a predicate")
    max_retries = p.get("max_retries", 0)
    if type(max_retries) is not int or max_retries < 0:
        raise make_error("TypeError", "retry max_retries must be a non-negative integer")
    backoff = p.get("backoff") or {}
    if type(backoff) is not dict:
        raise make_error("TypeError", "retry backoff must be a map")
    init = backoff.get("initial_delay", 1.0)
    max_delay = backoff.get("max_delay", 60.0)
    mult = backoff.get("multiplier", 2.0)
    for name, x in (("initial_delay", init), ("max_delay", max_delay), ("multiplier", mult)):
        if type(x) not in (int, float) or x < 0:
            raise make_error("TypeError", f"retry backoff {name} must be a non-negative number")
    return pred, max_retries, float(init), float(max_delay), float(mult)


def _locked(op: Op, names: list[str]) -> Op:
    """Run a step that writes shared variables holding those variables' locks.

    One lock per variable (keyed by the scope that owns it), taken in name
    order, so `total: ${total + x}` loses no update and a call inside the step
    that runs its own parallel step (other variables) cannot deadlock."""

    def locked(ctx: Ctx) -> Any:
        vs = ctx.vars
        if type(vs) is not BranchVars:
            return op(ctx)
        locks = [ctx.exe.var_lock(vs, n) for n in names]
        for lk in locks:
            lk.acquire()
        try:
            return op(ctx)
        finally:
            for lk in reversed(locks):
                lk.release()

    return locked


_MEM_CHECK_EVERY = 64 * 1024


def _store_value(ctx: Ctx, v: Any) -> Any:
    """Copy a container being stored (value semantics) and account its memory."""
    t = type(v)
    exe = ctx.exe
    if t is str:
        n = len(v)
        if n < 1024:
            return v
        exe.mem_since += n
    else:
        v = V.deep_copy(v)
        if len(v) < 16:
            exe.mem_since += 16 * len(v) + 16
        else:
            exe.mem_since += V.size_of(v)
    if exe.mem_since > _MEM_CHECK_EVERY:
        exe.mem_since = 0
        exe.check_memory(ctx, v)
    return v


# ---- execution --------------------------------------------------------------------

_GOOGLE_HOSTS = ("googleapis.com", "cloud.goog", "appspot.com", "run.app",
                 "cloudfunctions.net")


def is_internal_host(host: str) -> bool:
    """Requests to these hosts are internal steps (pricing page); others external."""
    host = host.lower().rstrip(".")
    return any(host == h or host.endswith("." + h) for h in _GOOGLE_HOSTS)


class _CountingTransport:
    """Counts HTTP requests that bill as external steps, then delegates."""

    def __init__(self, inner: Any, exe: Execution) -> None:
        self.inner = inner
        self.exe = exe

    def send(self, request: HttpRequest) -> HttpResponse:
        host = urllib.parse.urlsplit(request.url).hostname or ""
        if not is_internal_host(host):
            with self.exe.lock:
                self.exe.external += 1
        return self.inner.send(request)


_SIGNATURES: dict[Any, tuple[set[str], set[str], bool]] = {}


def _signature(fn: Callable[..., Any]) -> tuple[set[str], set[str], bool]:
    """(accepted names, required names, takes **kwargs) of a builtin, after `rt`."""
    sig = _SIGNATURES.get(fn)
    if sig is None:
        params = list(inspect.signature(fn).parameters.values())[1:]
        accepted = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        required = {p.name for p in params if p.default is p.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
        sig = (accepted, required, var_kw)
        _SIGNATURES[fn] = sig
    return sig


class Execution:
    """One run of a Program with its services, connectors and counters."""

    def __init__(self, program: Program, services: Services | None,
                 connectors: ConnectorRegistry | dict | None) -> None:
        self.program = program
        base = services or Services()
        self.cancel_event = threading.Event()
        self._ctxs: list[Ctx] = []
        self.rt = base.bind(self._call_ref_anywhere)
        self.rt.http_transport = _CountingTransport(base.http_transport, self)
        self.rt.clock = _CancellableClock(base.clock, self.cancel_event)
        self.connectors = as_registry(connectors)
        self.lock = threading.RLock()
        self.external = 0
        self.polling = 0
        self.extra_steps = 0
        self.mem_since = 0
        self._fn_cache: dict[str, Callable[..., Any]] = {}
        self._var_locks: dict[tuple[int, str], threading.RLock] = {}

    def cancel(self) -> None:
        """Stop the execution: every thread stops at its next step or sleep."""
        self.cancel_event.set()
        with self.lock:
            for c in self._ctxs:
                c.cancelled = True
                c.limit = -1

    def _track(self, ctx: Ctx) -> Ctx:
        with self.lock:
            self._ctxs.append(ctx)
            if self.cancel_event.is_set():
                ctx.cancelled = True
                ctx.limit = -1
        return ctx

    def var_lock(self, vs: dict, name: str) -> Any:
        """The lock of shared variable `name` as seen from branch scope `vs`."""
        owner: Any = vs
        while type(owner) is BranchVars and name in owner.shared:
            owner = owner.parent
        key = (id(owner), name)
        lk = self._var_locks.get(key)
        if lk is None:
            with self.lock:
                lk = self._var_locks.setdefault(key, threading.RLock())
        return lk

    # -- function resolution

    def resolve_function(self, name: str) -> Callable[..., Any]:
        fn = self._fn_cache.get(name)
        if fn is not None:
            return fn
        from wfgen.engine.stdlib import BUILTINS

        conn = self.connectors.get(name)
        if conn is not None:
            fn = self._connector_positional(name)
        elif name in BUILTINS:
            fn = BUILTINS[name]
        elif is_connector_name(name):
            raise missing_connector(name)
        else:
            raise make_error("KeyError",
                             f"function not found: {name}")
        self._fn_cache[name] = fn
        return fn

    def _connector_positional(self, name: str) -> Callable[..., Any]:
        def call(rt: Any, *args: Any) -> Any:
            raise make_error("TypeError", f"{name} must be called from a call step with args")

        return call

    def call_named(self, name: str, args: Any, ctx: Ctx) -> Any:
        """A `call:` step: subworkflow, connector or builtin with named args."""
        if type(args) is not dict:
            raise make_error("TypeError", "args must be a map")
        prog = self.program
        if name in prog.subs:
            return self.call_subworkflow(name, None, args, ctx)
        conn = self.connectors.get(name)
        if conn is not None:
            return self._call_connector(name, conn, args)
        from wfgen.engine.stdlib import BUILTINS

        fn = BUILTINS.get(name)
        if fn is None:
            if is_connector_name(name):
                raise missing_connector(name)
            raise make_error("KeyError", f"function not found: {name}")
        accepted, required, var_kw = _signature(fn)
        for k in args:
            if k not in accepted and not var_kw:
                raise make_error("TypeError", f"{name}: unexpected argument '{k}'")
        for k in required:
            if k not in args:
                raise make_error("TypeError", f"{name}: missing argument '{k}'")
        return call_python(fn, name, ctx.rt, [], args)

    def _call_connector(self, name: str, fn: Callable[..., Any], args: dict) -> Any:
        args = dict(args)
        cparams = args.pop("connector_params", None) or {}
        try:
            out = fn(self.rt, connector_params=cparams, **args)
        except WorkflowError:
            raise
        except TypeError as exc:
            raise make_error("TypeError", f"{name}: {exc}") from exc
        if isinstance(out, ConnectorResult):
            with self.lock:
                self.polling += out.polling_steps
                if out.external:
                    self.external += 1
            return out.value
        return out

    def call_subworkflow(self, name: str, pos: list[Any] | None, named: dict | None,
                         ctx: Ctx) -> Any:
        _sub, block, params = self.program.subs[name]
        if ctx.depth + 1 >= limits.MAX_CALL_DEPTH:
            raise make_error("RecursionError",
                             f"maximum call depth {limits.MAX_CALL_DEPTH} exceeded calling {name}")
        frame: dict[str, Any] = {}
        if pos is not None:
            if len(pos) > len(params):
                raise make_error("TypeError", f"{name} takes {len(params)} arguments, "
                                              f"{len(pos)} given")
            for i, (p, has_default, default) in enumerate(params):
                if i < len(pos):
                    frame[p] = V.deep_copy(pos[i])
                elif has_default and default is not None:
                    frame[p] = default(ctx)
                else:
                    raise make_error("TypeError", f"{name}: missing argument '{p}'")
        else:
            named = named or {}
            known = {p for p, _, _ in params}
            for k in named:
                if k not in known:
                    raise make_error("TypeError", f"{name}: unexpected argument '{k}'")
            for p, has_default, default in params:
                if p in named:
                    frame[p] = V.deep_copy(named[p])
                elif has_default and default is not None:
                    frame[p] = default(ctx)
                else:
                    raise make_error("TypeError", f"{name}: missing argument '{p}'")
        saved = ctx.vars
        ctx.frames.append(saved)
        ctx.vars = frame
        ctx.depth += 1
        try:
            sig = block.run(ctx)
        except WorkflowError as exc:
            if getattr(exc, "subworkflow", None) is None:
                exc.subworkflow = name  # type: ignore[attr-defined]
            raise
        finally:
            ctx.vars = saved
            ctx.frames.pop()
            ctx.depth -= 1
        return self._finish(sig, name)

    def _finish(self, sig: Any, name: str) -> Any:
        if sig is None or sig is END:
            return None
        if type(sig) is Ret:
            return sig.value
        if type(sig) is Goto:
            raise make_error("KeyError", f"step not found: {sig.name} (in {name})")
        raise make_error("TypeError", f"{sig!r} outside a loop in {name}")

    # -- function references (retry predicates, rt.call_function)

    def call_ref(self, ref: Any, args: list[Any], ctx: Ctx) -> Any:
        if isinstance(ref, str):
            ref = FunctionRef(ref)
        if not isinstance(ref, FunctionRef):
            raise make_error("TypeError", f"not a function: {V.type_name(ref)}")
        if ref.name in self.program.subs:
            return self.call_subworkflow(ref.name, args, None, ctx)
        fn = self.resolve_function(ref.name)
        return call_python(fn, ref.name, ctx.rt, args, None)

    def _call_ref_anywhere(self, ref: FunctionRef, args: list[Any]) -> Any:
        """rt.call_function from a builtin: runs in a fresh context of this execution."""
        ctx = Ctx(self, {}, limits.MAX_STEPS, depth=1)
        try:
            return self.call_ref(ref, args, ctx)
        finally:
            with self.lock:
                self.extra_steps += ctx.steps

    def predicate(self, pred: Any, error: Any, ctx: Ctx) -> bool:
        r = self.call_ref(pred, [error], ctx)
        if type(r) is not bool:
            raise make_error("TypeError", f"retry predicate returned {V.type_name(r)}, "
                                          "not a boolean")
        return r

    # -- parallel

    def run_branches(self, ctx: Ctx, units: list[tuple[Block, dict[str, Any]]],
                     shared: frozenset[str], cap: int, continue_all: bool) -> None:
        if not units:
            return
        base = ctx.steps
        parent_vars = ctx.vars
        ctxs: list[Ctx] = []
        for _block, local in units:
            bv = BranchVars(parent_vars, shared)
            for k, v in local.items():
                dict.__setitem__(bv, k, v)
            c = Ctx(self, bv, ctx.limit - base, depth=ctx.depth, pdepth=ctx.pdepth + 1)
            c.frames = [*ctx.frames, parent_vars]
            ctxs.append(self._track(c))
        errors: list[tuple[float, int, WorkflowError]] = []
        stop = threading.Event()
        stops = [*getattr(_TLS, "stops", ()), stop]

        def run_one(i: int) -> None:
            c = ctxs[i]
            if stop.is_set():
                return
            saved_stops = getattr(_TLS, "stops", ())
            _TLS.stops = stops  # sleeps in this branch end when a sibling fails
            try:
                sig = units[i][0].run(c)
                if type(sig) is Ret:
                    raise make_error("TypeError", "return is not allowed in a parallel branch")
                if type(sig) is Goto:
                    raise make_error("KeyError", f"cannot jump out of a parallel branch to "
                                                 f"{sig.name}")
            except WorkflowError as exc:
                with self.lock:
                    errors.append((time.monotonic(), i, exc))
                if not continue_all:
                    stop.set()
                    for other in ctxs:
                        if other is not c:
                            other.cancelled = True
                            other.limit = -1
            except _Cancelled:
                return
            finally:
                _TLS.stops = saved_stops

        workers = min(cap, len(units))
        if workers == 1:
            for i in range(len(units)):
                run_one(i)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wf-branch") as pool:
                list(pool.map(run_one, range(len(units))))
        ctx.steps += sum(c.steps for c in ctxs)
        with self.lock:
            for c in ctxs:
                self._ctxs.remove(c)
        if self.cancel_event.is_set():
            raise _Cancelled()
        if ctx.steps > ctx.limit and not ctx.cancelled:
            _slow_check(ctx)
        if errors:
            if continue_all:
                errors.sort(key=lambda e: e[1])
            else:
                errors.sort(key=lambda e: e[0])
            first = errors[0][2]
            first.others = [e[2].value for e in errors[1:]]  # type: ignore[attr-defined]
            raise first

    # -- memory

    def check_memory(self, ctx: Ctx, pending: Any) -> None:
        total = V.size_of(pending)
        seen: set[int] = set()
        scopes: list[dict] = [*ctx.frames, ctx.vars]
        for vs in scopes:
            d: Any = vs
            while d is not None:
                if id(d) not in seen:
                    seen.add(id(d))
                    total += sum(V.size_of(x) for x in dict.values(d))
                d = d.parent if type(d) is BranchVars else None
        if total > limits.MAX_VARIABLE_BYTES:
            raise make_error("ResourceLimitError",
                             f"variables use about {total} bytes; the limit is "
                             f"{limits.MAX_VARIABLE_BYTES} (512 KB)")

    # -- entry

    def run(self, argument: Any) -> ExecutionResult:
        start = time.monotonic()
        _sub, block, params = self.program.subs["main"]
        frame: dict[str, Any] = {}
        if params:
            frame[params[0][0]] = V.from_data(argument)
        ctx = self._track(Ctx(self, frame, limits.MAX_STEPS))
        logs_from = len(self.rt.log_entries)
        state, result, error = "SUCCEEDED", None, None
        try:
            sig = block.run(ctx)
            result = V.to_json_compatible(self._finish(sig, "main"))
        except WorkflowError as exc:
            state = "FAILED"
            error = ErrorInfo(exc.value, getattr(exc, "step", None),
                              getattr(exc, "subworkflow", None) or "main")
        except _Cancelled:
            state = "CANCELLED"
            error = ErrorInfo({"message": "the execution was cancelled",
                               "tags": ["CancelledError"]}, None)
        except RecursionError:
            state = "FAILED"
            error = ErrorInfo({"message": "Python recursion limit reached",
                               "tags": ["RecursionError"]}, None)
        total = ctx.steps + self.extra_steps
        external = min(self.external, total)
        return ExecutionResult(
            state=state,
            result=result,
            error=error,
            steps_internal=total - external + self.polling,
            steps_external=external,
            duration=time.monotonic() - start,
            logs=list(self.rt.log_entries[logs_from:]),
        )


class _CancellableClock:
    """The services' clock, but a cancelled execution's sleeps end at once."""

    def __init__(self, base: Any, event: threading.Event) -> None:
        self.base = base
        self.event = event

    def now(self) -> float:
        return float(self.base.now())

    def sleep(self, seconds: float) -> None:
        stops = getattr(_TLS, "stops", ())
        if self.event.is_set() or any(e.is_set() for e in stops):
            raise _Cancelled()
        if isinstance(self.base, RealClock):
            if not stops:
                if seconds > 0 and self.event.wait(seconds):
                    raise _Cancelled()
                return
            deadline = time.monotonic() + seconds
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if self.event.wait(min(left, 0.05)) or any(e.is_set() for e in stops):
                    raise _Cancelled()
        self.base.sleep(seconds)
        if self.event.is_set():
            raise _Cancelled()


_TLS = threading.local()  # per thread: stop events of the enclosing parallel steps
_COMPILE_LOCK = threading.Lock()


def compile_workflow(wf: Workflow) -> Program:
    """Compile once per Workflow object (cached on it)."""
    prog = wf.compiled
    if prog is None:
        with _COMPILE_LOCK:
            prog = wf.compiled
            if prog is None:
                try:
                    prog = Program(wf)
                except WorkflowSyntaxError as exc:
                    exc.filename = wf.filename
                    raise
                wf.compiled = prog
    return prog


def execute(
    workflow: Workflow,
    argument: Any = None,
    *,
    services: Services | None = None,
    connectors: ConnectorRegistry | dict[str, Callable[..., Any]] | None = None,
) -> ExecutionResult:
    """Run `workflow` once with `argument`; never raises for workflow errors."""
    return prepare(workflow, services=services, connectors=connectors).run(argument)


def prepare(
    workflow: Workflow,
    *,
    services: Services | None = None,
    connectors: ConnectorRegistry | dict[str, Callable[..., Any]] | None = None,
) -> Execution:
    """An Execution to `run(argument)` later, e.g. on a thread, so it can be cancel()ed."""
    _load_stdlib()
    return Execution(compile_workflow(workflow), services, connectors)


_STDLIB_LOADED = False


def _load_stdlib() -> None:
    """Import the stdlib namespace modules so they register their builtins."""
    global _STDLIB_LOADED
    if _STDLIB_LOADED:
        return
    import importlib
    import pkgutil

    import wfgen.engine.stdlib as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        try:
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
        except ImportError:  # a namespace module still being written
            continue
    _STDLIB_LOADED = True
