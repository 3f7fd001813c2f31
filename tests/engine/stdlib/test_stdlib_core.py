"""default, keys, len, int, double, string."""

from __future__ import annotations

import pytest


def test_default_returns_value_when_not_null(call):
    assert call("default", "x", "fallback") == "x"


def test_default_returns_default_for_null(call):
    assert call("default", None, "fallback") == "fallback"


def test_default_keeps_falsy_non_null_values(call):
    assert call("default", 0, 5) == 0
    assert call("default", False, True) is False
    assert call("default", "", "d") == ""


def test_default_with_map_get_named_args(call):
    m = {"a": 1}
    assert call("default", val=call("map.get", m, "b"), defaultVal="none") == "none"


def test_keys_lists_map_keys(call):
    assert call("keys", {"key1": "hello", "key2": "world"}) == ["key1", "key2"]


def test_keys_of_non_map_is_type_error(call, raises_tag):
    with raises_tag("TypeError"):
        call("keys", [1, 2])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("hello", 5), ("héllo", 5), ([1, 2, 3], 3), ({"a": 1, "b": 2}, 2), (b"\x00\x01", 2), ("", 0)],
)
def test_len(call, value, expected):
    assert call("len", value) == expected


@pytest.mark.parametrize("value", [1, 2.5, True, None])
def test_len_of_scalar_is_type_error(call, raises_tag, value):
    with raises_tag("TypeError"):
        call("len", value)


def test_int_truncates_doubles_toward_zero(call):
    assert call("int", 2.7) == 2
    assert call("int", -2.7) == -2


def test_int_parses_strings(call):
    assert call("int", "3") == 3
    assert call("int", "-42") == -42


def test_int_of_int_is_identity(call):
    assert call("int", 7) == 7


@pytest.mark.parametrize("text", ["abc", "2.5", "", "1_000", "0x10"])
def test_int_of_bad_string_is_value_error(call, raises_tag, text):
    with raises_tag("ValueError"):
        call("int", text)


def test_int_out_of_int64_range_is_value_error(call, raises_tag):
    with raises_tag("ValueError"):
        call("int", "9223372036854775808")
    with raises_tag("ValueError"):
        call("int", 1e19)
    assert call("int", "9223372036854775807") == 2**63 - 1


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}])
def test_int_of_wrong_type_is_type_error(call, raises_tag, value):
    with raises_tag("TypeError"):
        call("int", value)


def test_double_conversions(call):
    assert call("double", "2.7") == 2.7
    assert isinstance(call("double", 2), float)
    assert call("double", 2) == 2.0
    assert call("double", "1e3") == 1000.0
    assert call("double", "-5") == -5.0


@pytest.mark.parametrize("text", ["abc", "nan", "inf", "", "1e999"])
def test_double_of_bad_string_is_value_error(call, raises_tag, text):
    with raises_tag("ValueError"):
        call("double", text)


def test_double_of_wrong_type_is_type_error(call, raises_tag):
    with raises_tag("TypeError"):
        call("double", False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.7, "1.7"),
        (2.0, "2.0"),
        (-0.5, "-0.5"),
        (1e21, "1e+21"),
        (0.1 + 0.2, "0.30000000000000004"),
        (42, "42"),
        (-7, "-7"),
        (True, "true"),
        (False, "false"),
        ("text", "text"),
    ],
)
def test_string(call, value, expected):
    assert call("string", value) == expected


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, b"x"])
def test_string_of_wrong_type_is_type_error(call, raises_tag, value):
    with raises_tag("TypeError"):
        call("string", value)
