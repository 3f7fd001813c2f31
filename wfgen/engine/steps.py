"""Compiling steps: the parsed tree -> closures (one `op(ctx) -> signal` per step).

Design for speed: each step is compiled once; `next` targets are resolved to
indices of the same block at compile time; the hot shapes (one plain variable
assigned, `a + b`) are fused into single closures. Scoping rules (loop and
except variables disappear at the end; parallel branches write only `shared`
parent variables) and value semantics (containers are copied when stored) are
applied here; see docs/engine.md."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from wfgen import limits
from wfgen.engine import values as V
from wfgen.engine.errors import WorkflowError, make_error
from wfgen.engine.expr.compile import CompileEnv, compile_expr
from wfgen.engine.scope import (
    BREAK,
    CONTINUE,
    END,
    Block,
    BranchVars,
    Ctx,
    Goto,
    Op,
    Ret,
    slow_check,
)
from wfgen.engine.syntax import WorkflowSyntaxError
from wfgen.engine.tree import Condition, DynMap, Expr, Loop, Step, Subworkflow, Target, Workflow

# ---- compilation ------------------------------------------------------------------


class _CState:
    """Compile-time state: where we are (for shared variables and resolution)."""

    def __init__(self, env: CompileEnv, shared: frozenset[str] = frozenset(),
                 routine: str = "main") -> None:
        self.env = env
        self.shared = shared
        self.routine = routine  # the subworkflow being compiled


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
    if type(t) in V.CONTAINERS and _static_size(t) > limits.MAX_VARIABLE_BYTES:
        return _too_big(t)  # the memory limit holds for values written in the definition too
    if _const_template(t):
        if type(t) in V.CONTAINERS:
            deep = V.deep_copy
            return lambda ctx: deep(t)
        return lambda ctx: t
    if type(t) is dict:
        items = [(k, compile_template(v, env)) for k, v in t.items()]
        return lambda ctx: {k: f(ctx) for k, f in items}
    parts = [compile_template(v, env) for v in t]
    return lambda ctx: [f(ctx) for f in parts]


def _static_size(t: Any) -> int:
    """size_of for a template, counting each expression as one small value."""
    if isinstance(t, Expr):
        return 8
    if isinstance(t, DynMap):
        return 16 + sum(_static_size(k) + _static_size(v) for k, v in t.entries)
    if type(t) is dict:
        return 16 + sum(len(k) + 8 + _static_size(v) for k, v in t.items())
    if type(t) is list:
        return 16 + sum(_static_size(v) for v in t)
    return V.size_of(t)


def _too_big(t: Any) -> Op:
    size = _static_size(t)

    def too_big(ctx: Ctx) -> Any:
        raise make_error("ResourceLimitError",
                         f"a value written in the definition takes about {size} bytes; the "
                         f"limit for variables is {limits.MAX_VARIABLE_BYTES} (512 KB)")

    return too_big


class Program:
    """A compiled workflow: one Block per subworkflow, plus parameter binders."""

    def __init__(self, wf: Workflow) -> None:
        self.wf = wf
        self.env = CompileEnv(set(wf.subworkflows))
        self.subs: dict[str, tuple[Subworkflow, Block, list[tuple[str, bool, Op | None]]]] = {}
        for name, sub in wf.subworkflows.items():
            st = _CState(self.env, routine=name)
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
                if t is not int and (t is dict or t is list or t is str):
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
        here = (st.routine, s.name)

        def call(ctx: Ctx) -> Any:
            ctx.exe.enter(here)  # where a status shows the execution waiting
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
        only = s.conditions[0] if len(s.conditions) == 1 else None
        if only is not None and only.next is not None and not (
                only.assign or only.steps or only.has_return or only.has_raise):
            # `- condition: ${i < n}` + `next: x`, the test of a loop: one closure
            cond, target = branches[0][0], resolve(only.next)

            def jump(ctx: Ctx) -> Any:
                c = cond(ctx)
                if c is True:
                    return target
                if c is not False:
                    truth_err(c)
                return nxt

            return jump

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
            return _float_range(float(a), float(b))  # lazy: the step limit ends a huge one

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
        inner = _CState(self.env, st.shared | shared, st.routine)
        limit_f = (compile_template(par.concurrency_limit, self.env)
                   if par.concurrency_limit is not None else None)
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
            units: list[tuple[Block, dict[str, Any], str]] = []
            if loop_block is not None and loop_items is not None:
                room = ctx.limit - ctx.steps  # every iteration runs at least one step
                for i, item in enumerate(loop_items(ctx)):
                    if i >= room:
                        slow_check(ctx)
                    local = {vname: V.deep_copy(item)}
                    if iname is not None:
                        local[iname] = i
                    units.append((loop_block, local, str(i)))
            else:
                units = [(b, {}, name) for name, b in tasks]
            ctx.exe.run_branches(ctx, units, shared, cap)
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
                    if single and exc.step is None:
                        exc.step = s.name
                    if retry is not None:
                        if policy is None:
                            policy = _retry_policy(retry(ctx))
                            delay = policy[2]
                        predicate, max_retries, _init, max_delay, mult = policy
                        if attempt < max_retries and ctx.exe.predicate(predicate, exc.value,
                                                                       ctx):
                            attempt += 1
                            if single:
                                ctx.steps += 1  # each attempt is a billed step
                                if ctx.steps > ctx.limit:
                                    slow_check(ctx)
                            ctx.rt.clock.sleep(delay)
                            delay = min(delay * mult, max_delay)
                            continue
                    if not has_except:
                        raise
                    err = exc.with_traceback(None)  # no frame cycles kept alive
                sig = _run_except(ctx, exc_block, as_name, err)
                return nxt if sig is None else sig

        return try_


def _float_range(a: float, b: float) -> Iterator[float]:
    """A for loop's range with a double bound: a, a + 1, ... up to b, made as it is used."""
    x = a
    while x <= b:
        yield x
        nxt = x + 1.0
        if nxt == x:  # beyond 2**53 adding 1 changes nothing: the loop would never end
            raise make_error("ValueError", f"range step 1 is lost at {x}; the range cannot "
                                           "be counted")
        x = nxt


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


