"""Conformance: operators, precedence and types as the Workflows docs give them.

Where the docs are silent the engine's choice is pinned here and written down in
docs/engine.md ("Choices where the docs are silent")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.enginetest import error_of, result_of
from wfgen.engine import WorkflowSyntaxError, load_workflow


def ev(expr: str, **variables: Any) -> Any:
    """Evaluate one expression in a workflow whose argument holds `variables`."""
    assigns = "".join(f"          - {k}: ${{args.{k}}}\n" for k in variables)
    init = f"    - init:\n        assign:\n{assigns}" if variables else ""
    src = f"main:\n  params: [args]\n  steps:\n{init}    - out:\n        return: '${{{expr}}}'\n"
    return result_of(src, variables)


def ev_error(expr: str) -> Any:
    src = f"main:\n  steps:\n    - out:\n        return: '${{{expr}}}'\n"
    return error_of(src)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("5/2", 2.5),  # / is always double division
        ("4/2", 2.0),
        ("7//2", 3),  # // is floor division
        ("7%3", 1),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),  # left associative
        ("2 * 3 // 4", 1),
        ("1 + 2.5", 3.5),  # int and double -> double
        ('"a" + "b"', "ab"),
        ("[1] + [2, 3]", [1, 2, 3]),
        ("-2 * 3", -6),
        ("- (2 + 3)", -5),
        ("1 == 1.0", True),
        ('"1" == 1', False),  # different types are never equal
        ("null == null", True),
        ('[1, "a"] == [1, "a"]', True),
        ('{"a": 1} == {"a": 1.0}', True),
        ("1 != 2", True),
        ('"abc" < "abd"', True),
        ("2 <= 2", True),
        ('"b" in ["a", "b"]', True),
        ('"k" in {"k": 1}', True),
        ('"z" in {"k": 1}', False),
        ("true and false", False),
        ("true or false", True),
        ("not false", True),
        ("TRUE AND True", True),
        ("NOT false OR false", True),
        ("not true == false", True),  # (not true) == false
        ("1 < 2 and 2 < 3", True),
        ("true or 1", True),  # short-circuit: the right side is not evaluated
        ('{"a": {"b": [10, 20]}}.a.b[1]', 20),
        ('{"a": 1}["a"]', 1),
        ('"\\u00e9\\n"', "é\n"),
        ("1e3", 1000.0),
    ],
)
def test_operator_results(expr: str, expected: Any) -> None:
    got = ev(expr)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # Docs silent: floor division and the matching modulo (a == (a//b)*b + a%b).
        ("-7 // 2", -4),
        ("7 // -2", -4),
        ("-7 % 2", 1),
        ("7 % -2", -1),
        ("-7.5 // 2", -4.0),
        ("7.5 % 2", 1.5),
    ],
)
def test_negative_floor_division_and_modulo_choice(expr: str, expected: Any) -> None:
    got = ev(expr)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("expr", "tag"),
    [
        ('true + 1', "TypeError"),  # bool + number is a TypeError (datatypes + table)
        ("1 + true", "TypeError"),
        ("1 and true", "TypeError"),  # logical operators take booleans only
        ("true and 1", "TypeError"),
        ("not 1", "TypeError"),
        ("not 1 == 1", "TypeError"),  # not binds tighter than ==: (not 1) == 1
        ('1 < "a"', "TypeError"),
        ("[1] < [2]", "TypeError"),
        ("1 / 0", "ZeroDivisionError"),
        ("1 // 0", "ZeroDivisionError"),
        ("1 % 0", "ZeroDivisionError"),
        ("[1, 2][2]", "IndexError"),
        ("[1, 2][-1]", "IndexError"),
        ('{"a": 1}.b', "KeyError"),
        ('{"a": 1}["b"]', "KeyError"),
        ("nope", "KeyError"),
        ('[1]["a"]', "TypeError"),
        ("{1: 2}", "TypeError"),  # map keys are strings
        ('"a" in 5', "TypeError"),
        # Docs silent: int64 overflow is an error, not a wrap or a double.
        ("9223372036854775807 + 1", "ValueError"),
        ("-9223372036854775807 - 2", "ValueError"),
        ("4611686018427387904 * 2", "ValueError"),
    ],
)
def test_operator_errors(expr: str, tag: str) -> None:
    err = ev_error(expr)
    assert tag in err.tags, err.value
    assert err.step == "out"
    assert isinstance(err.value, dict) and isinstance(err.value["message"], str)


def test_int64_bounds_are_fine() -> None:
    assert ev("9223372036854775806 + 1") == 2**63 - 1
    assert ev("-9223372036854775807 - 1") == -(2**63)


def test_variables_and_access() -> None:
    assert ev("m.list[i] * 2", m={"list": [1, 2, 3]}, i=2) == 6
    assert ev('m["k" + "1"]', m={"k1": "v"}) == "v"


def test_expression_not_interpolated_inside_text() -> None:
    src = "main:\n  steps:\n    - out:\n        return: 'x ${1+1}'\n"
    assert result_of(src) == "x ${1+1}"


@pytest.mark.parametrize(
    "bad", ["1 +", "(1", "a..b", '"open', "1 = 1", "f(1,", "a.(b)", "3(4)", "and", "1 2"]
)
def test_malformed_expressions_name_the_line(bad: str) -> None:
    src = f"main:\n  steps:\n    - a:\n        assign:\n          - x: '${{{bad}}}'\n"
    with pytest.raises(WorkflowSyntaxError) as info:
        load_workflow(src, "bad.yaml")
    assert info.value.line == 5
    assert "bad.yaml:5" in str(info.value)


def test_expression_length_limit() -> None:
    long_ok = "+".join(["1"] * 200)  # 399 characters
    assert len(long_ok) <= 400
    assert ev(long_ok) == 200
    too_long = "+".join(["1"] * 201)  # 401 characters
    src = f"main:\n  steps:\n    - a:\n        return: ${{{too_long}}}\n"
    with pytest.raises(WorkflowSyntaxError, match="400"):
        load_workflow(src, "long.yaml")


def test_out_of_range_integer_literal_is_a_load_error() -> None:
    src = "- a:\n    return: ${9223372036854775808}\n"
    with pytest.raises(WorkflowSyntaxError, match="64-bit"):
        load_workflow(src, "big.yaml")
    assert ev("-9223372036854775808") == -(2**63)


def test_deep_nesting() -> None:
    assert ev("(" * 50 + "1" + ")" * 50) == 1
    deep = "(" * 190 + "1" + ")" * 190
    with pytest.raises(WorkflowSyntaxError, match="nested too deeply"):
        load_workflow(f"- a:\n    return: ${{{deep}}}\n", "deep.yaml")
