"""Workflows expressions: lexer -> AST (parser) -> Python closures (compiler).

An expression is parsed once, when the workflow is loaded, and compiled into a
tree of closures `fn(ctx) -> value`; evaluating it never re-parses and never
uses Python's eval."""

from wfgen.engine.expr.lexer import ExprSyntaxError
from wfgen.engine.expr.parser import parse_expression

__all__ = ["ExprSyntaxError", "parse_expression"]
