"""Recursive-descent parser for Workflows expressions.

Precedence, most binding first (docs, datatypes page): () . [] ; not ; unary - ;
* / // % ; + - ; comparisons == != < <= > >= in ; and ; or. `not` therefore binds
tighter than comparisons: `not a == b` is `(not a) == b`."""

from __future__ import annotations

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
from wfgen.engine.expr.lexer import ExprSyntaxError, Token, tokenize

_CMP = {"==", "!=", "<", "<=", ">", ">="}
_MUL = {"*", "/", "//", "%"}
_ADD = {"+", "-"}


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = tokenize(src)
        self.i = 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_op(self, *ops: str) -> bool:
        t = self.toks[self.i]
        return t.kind == "OP" and t.value in ops

    def is_kw(self, kw: str) -> bool:
        t = self.toks[self.i]
        return t.kind == "KW" and t.value == kw

    def expect_op(self, op: str) -> Token:
        t = self.next()
        if t.kind != "OP" or t.value != op:
            raise ExprSyntaxError(f"expected '{op}', found {self.describe(t)}", t.pos)
        return t

    def describe(self, t: Token) -> str:
        if t.kind == "EOF":
            return "end of expression"
        return repr(self.src[t.pos : t.pos + 12].split(" ")[0] or t.value)

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise ExprSyntaxError("empty expression", 0)
        node = self.or_()
        t = self.peek()
        if t.kind != "EOF":
            raise ExprSyntaxError(f"unexpected {self.describe(t)}", t.pos)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.is_kw("or"):
            self.next()
            node = Binary("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.cmp()
        while self.is_kw("and"):
            self.next()
            node = Binary("and", node, self.cmp())
        return node

    def cmp(self) -> Node:
        node = self.add()
        while True:
            t = self.peek()
            if t.kind == "OP" and t.value in _CMP:
                self.next()
                node = Binary(str(t.value), node, self.add())
            elif t.kind == "KW" and t.value == "in":
                self.next()
                node = Binary("in", node, self.add())
            else:
                return node

    def add(self) -> Node:
        node = self.mul()
        while True:
            t = self.peek()
            if t.kind == "OP" and t.value in _ADD:
                self.next()
                node = Binary(str(t.value), node, self.mul())
            else:
                return node

    def mul(self) -> Node:
        node = self.unary()
        while True:
            t = self.peek()
            if t.kind == "OP" and t.value in _MUL:
                self.next()
                node = Binary(str(t.value), node, self.unary())
            else:
                return node

    def unary(self) -> Node:
        if self.is_kw("not"):
            self.next()
            return Unary("not", self.unary())
        if self.is_op("-"):
            self.next()
            operand = self.unary()
            if isinstance(operand, Const) and type(operand.value) in (int, float):
                return Const(-operand.value)
            return Unary("-", operand)
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            t = self.peek()
            if t.kind != "OP":
                return node
            if t.value == ".":
                self.next()
                name = self.next()
                if name.kind not in ("NAME", "KW", "LIT"):
                    raise ExprSyntaxError(f"expected a name after '.', found {self.describe(name)}",
                                          name.pos)
                node = Attr(node, self.src[name.pos : name.pos + _wordlen(self.src, name.pos)])
            elif t.value == "[":
                self.next()
                key = self.or_()
                self.expect_op("]")
                node = Index(node, key)
            elif t.value == "(":
                fname = dotted_name(node)
                if fname is None:
                    raise ExprSyntaxError("only named functions can be called", t.pos)
                self.next()
                args: list[Node] = []
                if not self.is_op(")"):
                    while True:
                        args.append(self.or_())
                        if self.is_op(","):
                            self.next()
                            continue
                        break
                self.expect_op(")")
                node = Call(fname, tuple(args))
            else:
                return node

    def primary(self) -> Node:
        t = self.next()
        if t.kind in ("NUM", "STR", "LIT"):
            return Const(t.value)
        if t.kind == "NAME":
            return Var(str(t.value))
        if t.kind == "OP":
            if t.value == "(":
                node = self.or_()
                self.expect_op(")")
                return node
            if t.value == "[":
                items: list[Node] = []
                if not self.is_op("]"):
                    while True:
                        items.append(self.or_())
                        if self.is_op(","):
                            self.next()
                            if self.is_op("]"):
                                break
                            continue
                        break
                self.expect_op("]")
                return ListLit(tuple(items))
            if t.value == "{":
                entries: list[tuple[Node, Node]] = []
                if not self.is_op("}"):
                    while True:
                        k = self.or_()
                        self.expect_op(":")
                        entries.append((k, self.or_()))
                        if self.is_op(","):
                            self.next()
                            if self.is_op("}"):
                                break
                            continue
                        break
                self.expect_op("}")
                return MapLit(tuple(entries))
        raise ExprSyntaxError(f"unexpected {self.describe(t)}", t.pos)


def _wordlen(src: str, pos: int) -> int:
    j = pos
    while j < len(src) and (src[j].isalnum() or src[j] == "_"):
        j += 1
    return j - pos


def parse_expression(src: str) -> Node:
    """Parse the text inside `${...}`; raises ExprSyntaxError with a position."""
    return _Parser(src).parse()
