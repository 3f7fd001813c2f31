"""Property tests: integer arithmetic and comparisons agree with a reference model."""

from __future__ import annotations

import contextlib
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from wfgen.engine import Services, VirtualClock, execute, load_workflow

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SRC = """
main:
  params: [a]
  steps:
    - r:
        return:
          - ${a.x + a.y}
          - ${a.x - a.y}
          - ${a.x * a.y}
          - ${a.x < a.y}
          - ${a.x == a.y}
          - ${a.x // a.y}
          - ${a.x % a.y}
          - ${a.x / a.y}
"""
WF = load_workflow(SRC, "props.yaml")
LO, HI = -(2**63), 2**63 - 1


def expected(x: int, y: int) -> list[object] | str:
    for r in (x + y, x - y, x * y):
        if not LO <= r <= HI:
            return "ValueError"
    if y == 0:
        return "ZeroDivisionError"
    if not LO <= x // y <= HI:
        return "ValueError"
    return [x + y, x - y, x * y, x < y, x == y, x // y, x % y, x / y]


@settings(max_examples=150, deadline=None)
@given(INT64, INT64)
def test_integer_operators_match_model(x: int, y: int) -> None:
    res = execute(WF, {"x": x, "y": y}, services=Services(clock=VirtualClock()))
    want = expected(x, y)
    if isinstance(want, str):
        assert res.state == "FAILED" and want in res.error.tags
    else:
        assert res.state == "SUCCEEDED", res.error
        got = res.result
        assert got[:7] == want[:7]
        assert math.isclose(got[7], want[7], rel_tol=1e-12)
        assert got[5] * y + got[6] == x  # floor division and modulo agree


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=-1000, max_value=1000), max_size=30))
def test_for_loop_sum_matches_python(items: list[int]) -> None:
    src = """
main:
  params: [items]
  steps:
    - init:
        assign:
          - total: 0
    - loop:
        for:
          value: v
          in: ${items}
          steps:
            - add:
                assign:
                  - total: ${total + v}
    - r:
        return: ${total}
"""
    res = execute(load_workflow(src, "sum.yaml"), items)
    assert res.result == sum(items)
    assert res.steps_internal == 3 + len(items)


def test_json_definition() -> None:
    src = '{"main": {"params": ["a"], "steps": [{"r": {"return": "${a + 1}"}}]}}'
    assert execute(load_workflow(src, "w.json"), 41).result == 42
    listed = '[{"a": {"assign": [{"x": 2}]}}, {"r": {"return": "${x * 3}"}}]'
    assert execute(load_workflow(listed, "l.json")).result == 6


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab1.()[]{}"+-*/%<>=!, :andornotin\\u', max_size=40))
def test_expression_parser_fails_only_with_syntax_errors(text: str) -> None:
    from wfgen.engine.expr import ExprSyntaxError, parse_expression

    with contextlib.suppress(ExprSyntaxError):
        parse_expression(text)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab1.()[]+-*/%<=! andornotin\"", min_size=1, max_size=30))
def test_lint_never_crashes_on_any_expression(text: str) -> None:
    from wfgen.engine.lint import lint_workflow_text

    src = "- a:\n    return: '${" + text.replace("'", "") + "}'\n"
    for f in lint_workflow_text(src, "f.yaml"):
        assert f.line >= 1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab1.()[]{}"+-*/%<>=!, :andornotin', min_size=1, max_size=30))
def test_any_parsable_expression_runs_or_fails_cleanly(text: str) -> None:
    from wfgen.engine import WorkflowSyntaxError

    src = ("- init:\n    assign:\n      - a: 1\n      - b: [1, \"x\"]\n"
           "- r:\n    return: '${" + text.replace("'", "") + "}'\n")
    try:
        wfo = load_workflow(src, "r.yaml")
    except WorkflowSyntaxError:
        return
    res = execute(wfo, services=Services(clock=VirtualClock()))
    assert res.state in ("SUCCEEDED", "FAILED")
    if res.state == "FAILED":
        assert res.error.tags, res.error.value


KEYS = st.sampled_from(["main", "steps", "params", "assign", "call", "args", "result", "next",
                        "switch", "condition", "for", "value", "in", "range", "parallel",
                        "branches", "shared", "try", "retry", "except", "as", "raise",
                        "return", "x", "s1", "end"])
DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | KEYS | st.just("${x + 1}"),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children,
                                                                      max_size=3),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(DATA)
def test_lint_never_crashes_on_any_structure(data: object) -> None:
    import json

    from wfgen.engine.lint import lint_workflow_text

    text = json.dumps(data)
    found = lint_workflow_text(text, "s.json")
    for f in found:
        assert f.message
    if not found:  # valid: it must run or fail cleanly, never crash
        res = execute(load_workflow(text, "s.json"), services=Services(clock=VirtualClock()))
        assert res.state in ("SUCCEEDED", "FAILED")
