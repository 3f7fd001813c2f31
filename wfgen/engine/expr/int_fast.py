"""Loop arithmetic in one Python call: `${i + 1}`, `${i < n}`, `${total - v}`.

A binary operation on a variable and an integer constant (or two variables)
is the hot path of every counting loop. The general path calls the operator
of wfgen.engine.values, which checks both types again; these closures read the
variable and, when both sides are plain ints (never bool), compute inline,
falling back to that same operator (and its errors) for anything else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wfgen.engine.values import INT_MAX, INT_MIN

Fn = Callable[[Any], Any]
Missing = Callable[[Any, str, set[str]], Any]

FAST_OPS = frozenset({"+", "-", "<", "<=", ">", ">=", "==", "!="})


def var_const(op: str, name: str, const: Any, general: Callable[[Any, Any], Any],
              subs: set[str], missing: Missing) -> Fn | None:
    """`name op const` for an int const, or None if op has no fast path. Variables
    are read by subscription (a parallel branch's scope answers __missing__)."""
    if op not in FAST_OPS or type(const) is not int:
        return None
    lo, hi = INT_MIN, INT_MAX
    if op == "+":
        def add(ctx: Any) -> Any:
            try:
                a = ctx.vars[name]
            except KeyError:
                a = missing(ctx, name, subs)
            if type(a) is int:
                r = a + const
                if lo <= r <= hi:
                    return r
            return general(a, const)
        return add
    if op == "-":
        def sub(ctx: Any) -> Any:
            try:
                a = ctx.vars[name]
            except KeyError:
                a = missing(ctx, name, subs)
            if type(a) is int:
                r = a - const
                if lo <= r <= hi:
                    return r
            return general(a, const)
        return sub
    return _COMPARE[op](name, const, general, subs, missing)


def _lt(name: str, const: int, general: Any, subs: set[str], missing: Missing) -> Fn:
    def lt(ctx: Any) -> Any:
        try:
            a = ctx.vars[name]
        except KeyError:
            a = missing(ctx, name, subs)
        return a < const if type(a) is int else general(a, const)
    return lt


def _le(name: str, const: int, general: Any, subs: set[str], missing: Missing) -> Fn:
    def le(ctx: Any) -> Any:
        try:
            a = ctx.vars[name]
        except KeyError:
            a = missing(ctx, name, subs)
        return a <= const if type(a) is int else general(a, const)
    return le


def _gt(name: str, const: int, general: Any, subs: set[str], missing: Missing) -> Fn:
    def gt(ctx: Any) -> Any:
        try:
            a = ctx.vars[name]
        except KeyError:
            a = missing(ctx, name, subs)
        return a > const if type(a) is int else general(a, const)
    return gt


def _ge(name: str, const: int, general: Any, subs: set[str], missing: Missing) -> Fn:
    def ge(ctx: Any) -> Any:
        try:
            a = ctx.vars[name]
        except KeyError:
            a = missing(ctx, name, subs)
        return a >= const if type(a) is int else general(a, const)
    return ge


def _eq(name: str, const: int, general: Any, subs: set[str], missing: Missing) -> Fn:
    def eq(ctx: Any) -> Any:
        try:
            a = ctx.vars[name]
        except KeyError:
            a = missing(ctx, name, subs)
        return a == const if type(a) is int else general(a, const)
    return eq


def _ne(name: str, const: int, general: Any, subs: set[str], missing: Missing) -> Fn:
    def ne(ctx: Any) -> Any:
        try:
            a = ctx.vars[name]
        except KeyError:
            a = missing(ctx, name, subs)
        return a != const if type(a) is int else general(a, const)
    return ne


_COMPARE = {"<": _lt, "<=": _le, ">": _gt, ">=": _ge, "==": _eq, "!=": _ne}
