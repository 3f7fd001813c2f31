"""Conformance, one test per documented statement, each naming its reference page:
syntax/datatypes ("Implicit data type conversions"), syntax/iteration (maps),
stdlib/expression-helpers; plus the engine's recorded choices where the pages
are silent (docs/engine.md, "Choices where the docs are silent")."""

from __future__ import annotations

import pytest

from tests.engine.enginetest import error_of, result_of


def ret(expr: str) -> str:
    """A workflow returning expr (single-quoted YAML: expressions may hold ': ')."""
    return "- r:\n    return: '${" + expr.replace("'", "''") + "}'\n"


@pytest.mark.parametrize(("expr", "want"), [
    ('"n" + 7', "n7"),            # STRING + INTEGER -> STRING
    ('7 + "n"', "7n"),            # INTEGER + STRING -> STRING
    ('"n" + 1.5', "n1.5"),        # STRING + DOUBLE -> STRING
    ('1.5 + "n"', "1.5n"),        # DOUBLE + STRING -> STRING
    ('true + "x"', "truex"),      # BOOL + STRING -> STRING
    ('"x" + false', "xfalse"),    # STRING + BOOL -> STRING
    ('"a" + "b"', "ab"),          # STRING + STRING -> STRING
    ("1 + 2", 3),                 # INTEGER + INTEGER -> INTEGER
    ("1 + 0.5", 1.5),             # INTEGER + DOUBLE -> DOUBLE
    ("0.5 + 1", 1.5),             # DOUBLE + INTEGER -> DOUBLE
], ids=lambda v: f"syntax/datatypes + table: {v}" if isinstance(v, str) else str(v))
def test_plus_operator_table(expr: str, want: object) -> None:
    """syntax/datatypes, "+ operator" table."""
    got = result_of(ret(expr))
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("expr", ["true + 1", "1 + true", "1.5 + false", "true + true"],
                         ids=lambda e: f"syntax/datatypes + table ERROR: {e}")
def test_plus_bool_with_number_is_an_error(expr: str) -> None:
    """syntax/datatypes, "+ operator" table: BOOL with a number (or BOOL) is ERROR."""
    assert "TypeError" in error_of(ret(expr)).tags


@pytest.mark.parametrize("expr", ['"a" - 1', '"a" * 2', '"4" / 2', "true - 1", '"7" // 2',
                                  '"7" % 2'],
                         ids=lambda e: f"syntax/datatypes arithmetic tables ERROR: {e}")
def test_other_arithmetic_operators_take_numbers_only(expr: str) -> None:
    """syntax/datatypes: the -, *, /, //, % tables convert no string or boolean."""
    assert "TypeError" in error_of(ret(expr)).tags


def test_double_in_a_string_is_written_like_string() -> None:
    """syntax/datatypes is silent on the digits: a double joined to a string is
    written exactly as string() writes it (docs/engine.md choice)."""
    assert result_of(ret('["v" + 2.0, string(2.0), "v" + 0.1, "v" + 1e21]')) == [
        "v2.0", "2.0", "v0.1", "v1e+21"]


def test_keys_are_sorted() -> None:
    """syntax/iteration (maps): keys() returns the keys sorted."""
    assert result_of(ret('keys({"b": 1, "a": 2, "C": 3, "a1": 4})')) == ["C", "a", "a1", "b"]


def test_for_over_keys_sees_sorted_order() -> None:
    """syntax/iteration (maps): a for loop over keys(map) visits them in sorted order."""
    src = """
- init:
    assign:
      - m: {zeta: 1, alpha: 2, mid: 3}
      - order: ""
- loop:
    for:
      value: k
      in: ${keys(m)}
      steps:
        - add:
            assign:
              - order: ${order + k + ","}
- r:
    return: ${order}
"""
    assert result_of(src) == "alpha,mid,zeta,"


def test_result_and_json_encode_maps_are_key_sorted() -> None:
    """docs/engine.md choice (the service's maps keep no insertion order): returned
    maps and json.encode write keys sorted."""
    src = ret('[json.encode_to_string({"b": 1, "a": {"d": 1, "c": 2}}), {"y": 1, "x": 2}]')
    got = result_of(src)
    assert got[0] == '{"a":{"c":2,"d":1},"b":1}'
    assert list(got[1]) == ["x", "y"]


@pytest.mark.parametrize(("cond", "want"), [("true", "yes"), ("false", "no"), ("null", "no")],
                         ids=lambda v: f"stdlib/expression-helpers if: {v}")
def test_if_helper(cond: str, want: str) -> None:
    """stdlib/expression-helpers, if(condition, ifTrue, ifFalse): ifTrue when the
    condition is true, ifFalse when it is false or null."""
    assert result_of(ret(f'if({cond}, "yes", "no")')) == want


def test_if_condition_must_be_a_boolean_or_null() -> None:
    """stdlib/expression-helpers: the condition evaluates to a boolean (or null)."""
    assert "TypeError" in error_of(ret('if(1, "yes", "no")')).tags


def test_if_evaluates_both_values() -> None:
    """docs/engine.md choice: if() is a function, so both values are evaluated
    before the call (an error in the other one is raised)."""
    assert "KeyError" in error_of(ret('if(true, 1, {"a": 1}.b)')).tags


def test_if_is_accepted_at_load_time() -> None:
    """stdlib/expression-helpers lists if beside default: not an unknown function."""
    assert result_of(ret('if(len("ab") == 2, default(null, 5), 0)')) == 5


def test_default_helper() -> None:
    """stdlib/expression-helpers, default(val, defaultVal)."""
    assert result_of(ret("[default(null, 1), default(0, 1), default(false, true)]")) == [
        1, 0, False]


@pytest.mark.parametrize(("expr", "want"), [
    ("-7 % 2", 1), ("7 % -2", -1), ("-7 // 2", -4)],
    ids=lambda v: f"silent: negative % and //: {v}")
def test_negative_modulo_choice(expr: str, want: int) -> None:
    """syntax/datatypes is silent on signs: % takes the divisor's sign (docs/engine.md)."""
    assert result_of(ret(expr)) == want


@pytest.mark.parametrize(("expr", "want"), [
    ('"1" == 1', False), ("1 == 1.0", True), ("null == false", False)],
    ids=lambda v: f"silent: cross-type ==: {v}")
def test_cross_type_equality_choice(expr: str, want: bool) -> None:
    """syntax/datatypes is silent: values of different types are unequal (docs/engine.md)."""
    assert result_of(ret(expr)) is want


def test_cross_type_ordering_is_an_error() -> None:
    """syntax/datatypes is silent: < between a string and a number is a TypeError."""
    assert "TypeError" in error_of(ret('"1" < 2')).tags


def test_range_of_doubles_choice() -> None:
    """syntax/iteration is silent on doubles in range: they step by 1 (docs/engine.md)."""
    src = """
- init:
    assign:
      - seen: []
- loop:
    for:
      value: v
      range: [0.5, 2.5]
      steps:
        - add:
            assign:
              - seen: ${list.concat(seen, v)}
- r:
    return: ${seen}
"""
    assert result_of(src) == [0.5, 1.5, 2.5]
