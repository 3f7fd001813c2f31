"""AST -> closures. Each node becomes `fn(ctx) -> value`, built once per expression.

`ctx` is the runtime context (runtime.Ctx): `ctx.vars` is the variable dict of
the running frame, `ctx.rt` the bound services, `ctx.exe` the execution (for
calls to subworkflows and connectors). Common shapes (variable or constant
operands) get fused closures so a `sum + v` costs one Python call, not three."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wfgen.engine import values as V
from wfgen.engine.errors import WorkflowError, make_error
from wfgen.engine.expr.ast import (
    Attr,
    Binary,
    Call,
    Const,
    Index,
    ListLit,
    MapLit,
    Node,
    Unary,
    Var,
    dotted_name,
)
from wfgen.engine.expr.int_fast import var_const
from wfgen.engine.values import FunctionRef

Fn = Callable[[Any], Any]

BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": V.add,
    "-": V.sub,
    "*": V.mul,
    "/": V.div,
    "//": V.floordiv,
    "%": V.mod,
    "==": V.eq,
    "!=": V.ne,
    "<": V.lt,
    "<=": V.le,
    ">": V.gt,
    ">=": V.ge,
    "in": V.contains,
}


class CompileEnv:
    """What the compiler needs to know about the workflow: its subworkflow names."""

    def __init__(self, subworkflows: set[str]) -> None:
        self.subworkflows = subworkflows


def missing_var(ctx: Any, name: str, subworkflows: set[str]) -> Any:
    """A name that is not a variable: a subworkflow or stdlib constant used as a value."""
    if name in subworkflows:
        return FunctionRef(name)
    from wfgen.engine.stdlib import CONSTANTS

    if name in CONSTANTS:
        return CONSTANTS[name]
    raise make_error("KeyError", f"variable not found: {name}")


def compile_expr(node: Node, env: CompileEnv) -> Fn:
    t = type(node)
    if t is Const:
        value = node.value
        if type(value) is int and (value > V.INT_MAX or value < V.INT_MIN):
            raise make_error("ValueError", f"integer literal out of range: {value}")
        return lambda ctx: value
    if t is Var:
        return _var(node.name, env)
    if t is Attr:
        dotted = dotted_name(node)
        if dotted is not None:
            return _dotted(dotted, node, env)
        obj = compile_expr(node.obj, env)
        name = node.name
        get_attr = V.get_attr

        def attr(ctx: Any) -> Any:
            o = obj(ctx)
            if type(o) is dict:
                try:
                    return o[name]
                except KeyError:
                    pass
            return get_attr(o, name)

        return attr
    if t is Index:
        obj = compile_expr(node.obj, env)
        key = compile_expr(node.key, env)
        get_item = V.get_item
        return lambda ctx: get_item(obj(ctx), key(ctx))
    if t is Unary:
        operand = compile_expr(node.operand, env)
        f = V.not_ if node.op == "not" else V.neg
        return lambda ctx: f(operand(ctx))
    if t is Binary:
        return _binary(node, env)
    if t is ListLit:
        items = [compile_expr(i, env) for i in node.items]
        return lambda ctx: [i(ctx) for i in items]
    if t is MapLit:
        entries = [(compile_expr(k, env), compile_expr(v, env)) for k, v in node.entries]

        def maplit(ctx: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for k, v in entries:
                key = k(ctx)
                if type(key) is not str:
                    raise make_error("TypeError", f"map keys must be strings, got "
                                                  f"{V.type_name(key)}")
                out[key] = v(ctx)
            return out

        return maplit
    if t is Call:
        return _call(node, env)
    raise TypeError(f"unknown node {node!r}")


def _var(name: str, env: CompileEnv) -> Fn:
    subs = env.subworkflows

    def var(ctx: Any) -> Any:
        try:
            return ctx.vars[name]
        except KeyError:
            return missing_var(ctx, name, subs)

    return var


def _dotted(dotted: str, node: Attr, env: CompileEnv) -> Fn:
    """`a.b.c`: variable access, falling back to a stdlib constant of that name."""
    parts = dotted.split(".")
    root, rest = parts[0], parts[1:]
    subs = env.subworkflows
    get_attr = V.get_attr

    def fallback(ctx: Any) -> Any:
        from wfgen.engine.stdlib import BUILTINS, CONSTANTS

        if dotted in CONSTANTS:
            return CONSTANTS[dotted]
        if dotted in BUILTINS:
            return FunctionRef(dotted)
        return None

    def dotted_get(ctx: Any) -> Any:
        try:
            o = ctx.vars[root]
        except KeyError:
            c = fallback(ctx)
            if c is not None:
                return c
            o = missing_var(ctx, root, subs)
        for p in rest:
            if type(o) is dict:
                try:
                    o = o[p]
                    continue
                except KeyError:
                    pass
            o = get_attr(o, p)
        return o

    return dotted_get


def _binary(node: Binary, env: CompileEnv) -> Fn:
    op = node.op
    left = compile_expr(node.left, env)
    right = compile_expr(node.right, env)
    truth = V.truth
    if op == "and":

        def and_(ctx: Any) -> bool:
            return truth(left(ctx)) and truth(right(ctx))

        return and_
    if op == "or":

        def or_(ctx: Any) -> bool:
            return truth(left(ctx)) or truth(right(ctx))

        return or_
    f = BINOPS[op]
    ln, rn = node.left, node.right
    # Fused shapes: variable/constant operands read inline (the hot path of loops).
    if type(ln) is Var and type(rn) is Var and op == "+":
        a_name, b_name = ln.name, rn.name
        subs = env.subworkflows
        lo, hi = V.INT_MIN, V.INT_MAX

        def add_vv(ctx: Any) -> Any:
            vs = ctx.vars
            try:
                a = vs[a_name]
            except KeyError:
                a = missing_var(ctx, a_name, subs)
            try:
                b = vs[b_name]
            except KeyError:
                b = missing_var(ctx, b_name, subs)
            if type(a) is int and type(b) is int:
                r = a + b
                if lo <= r <= hi:
                    return r
            return f(a, b)

        return add_vv
    if type(ln) is Var and type(rn) is Var:
        a_name, b_name = ln.name, rn.name
        subs = env.subworkflows

        def vv(ctx: Any) -> Any:
            vs = ctx.vars
            try:
                a = vs[a_name]
            except KeyError:
                a = missing_var(ctx, a_name, subs)
            try:
                b = vs[b_name]
            except KeyError:
                b = missing_var(ctx, b_name, subs)
            return f(a, b)

        return vv
    if type(ln) is Var and type(rn) is Const:
        a_name, b_const = ln.name, rn.value
        subs = env.subworkflows
        fast = var_const(op, a_name, b_const, f, subs, missing_var)  # int loop counters
        if fast is not None:
            return fast

        def vc(ctx: Any) -> Any:
            try:
                a = ctx.vars[a_name]
            except KeyError:
                a = missing_var(ctx, a_name, subs)
            return f(a, b_const)

        return vc
    return lambda ctx: f(left(ctx), right(ctx))


def _call(node: Call, env: CompileEnv) -> Fn:
    name = node.name
    args = [compile_expr(a, env) for a in node.args]
    if name in env.subworkflows:

        def call_sub(ctx: Any) -> Any:
            return ctx.exe.call_subworkflow(name, [a(ctx) for a in args], None, ctx)

        return call_sub
    def call_builtin(ctx: Any) -> Any:
        # Resolved per execution (each may bring its own connectors), cached there.
        fn = ctx.exe.resolve_function(name)
        return call_python(fn, name, ctx.rt, [a(ctx) for a in args], None)

    return call_builtin


_PY_ERRORS = {
    TypeError: "TypeError",
    ValueError: "ValueError",
    KeyError: "KeyError",
    IndexError: "IndexError",
    ZeroDivisionError: "ZeroDivisionError",
    RecursionError: "RecursionError",
    OverflowError: "ValueError",
    UnicodeError: "ValueError",
}


def call_python(fn: Callable[..., Any], name: str, rt: Any, pos: list[Any],
                named: dict[str, Any] | None) -> Any:
    """Call a builtin; stray Python errors become Workflows errors with a matching tag."""
    try:
        if named is None:
            return fn(rt, *pos)
        return fn(rt, **named)
    except WorkflowError:
        raise
    except tuple(_PY_ERRORS) as exc:
        tag = next(v for k, v in _PY_ERRORS.items() if isinstance(exc, k))
        raise make_error(tag, f"{name}: {exc}") from exc
