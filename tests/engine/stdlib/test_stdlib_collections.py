"""list.*, map.*, math.*."""

from __future__ import annotations

import pytest


def test_list_concat_appends_without_mutating(call):
    objs = [1, 2]
    assert call("list.concat", objs, 3) == [1, 2, 3]
    assert objs == [1, 2]


def test_list_concat_of_a_list_value_nests_it(call):
    assert call("list.concat", ["a"], ["b"]) == ["a", ["b"]]


def test_list_prepend(call):
    objs = ["b"]
    assert call("list.prepend", objs=objs, val="a") == ["a", "b"]
    assert objs == ["b"]


@pytest.mark.parametrize("name", ["list.concat", "list.prepend"])
def test_list_functions_need_a_list(call, raises_tag, name):
    with raises_tag("TypeError"):
        call(name, "abc", 1)


def test_map_get_doc_example(call):
    assert call("map.get", {"key1": "hello", "key2": "world"}, "key2") == "world"


def test_map_get_missing_key_is_null(call):
    assert call("map.get", {"a": 1}, "b") is None


def test_map_get_key_path(call):
    m = {"key1": {"key2": {"key3": 7}}}
    assert call("map.get", m, ["key1", "key2", "key3"]) == 7
    assert call("map.get", m, ["key1", "missing", "key3"]) is None
    assert call("map.get", m, ["key1", "key2", "key3", "deeper"]) is None


def test_map_get_on_non_map_is_null(call):
    assert call("map.get", None, "a") is None
    assert call("map.get", [1, 2], "a") is None


def test_map_get_bad_key_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("map.get", {"a": 1}, 1)
    with raises_tag("TypeError"):
        call("map.get", {"a": 1}, ["a", 2])


def test_map_delete(call):
    m = {"a": 1, "b": 2}
    assert call("map.delete", m, "a") == {"b": 2}
    assert m == {"a": 1, "b": 2}
    assert call("map.delete", m, "zzz") == {"a": 1, "b": 2}


def test_map_delete_needs_a_map(call, raises_tag):
    with raises_tag("TypeError"):
        call("map.delete", [1], "a")


def test_map_merge_second_wins(call):
    assert call("map.merge", {"a": 1, "b": {"x": 1}}, {"b": {"y": 2}, "c": 3}) == {
        "a": 1,
        "b": {"y": 2},
        "c": 3,
    }


def test_map_merge_nested(call):
    first = {"a": 1, "b": {"x": 1, "z": {"k": 1}}}
    second = {"b": {"y": 2, "z": {"j": 2}}, "c": 3}
    assert call("map.merge_nested", first, second) == {
        "a": 1,
        "b": {"x": 1, "z": {"k": 1, "j": 2}, "y": 2},
        "c": 3,
    }
    assert first == {"a": 1, "b": {"x": 1, "z": {"k": 1}}}


@pytest.mark.parametrize("name", ["map.merge", "map.merge_nested"])
def test_map_merges_need_maps(call, raises_tag, name):
    with raises_tag("TypeError"):
        call(name, {"a": 1}, [1])


def test_math_abs(call):
    assert call("math.abs", -5) == 5
    assert call("math.abs", -2.5) == 2.5
    assert isinstance(call("math.abs", -5), int)


def test_math_abs_int64_overflow(call, raises_tag):
    with raises_tag("ValueError"):
        call("math.abs", -(2**63))


def test_math_floor(call):
    assert call("math.floor", 2.7) == 2
    assert call("math.floor", -2.1) == -3
    assert call("math.floor", 5) == 5
    assert isinstance(call("math.floor", 2.7), int)


def test_math_max_min(call):
    assert call("math.max", 1, 2) == 2
    assert call("math.max", 2.5, 1) == 2.5
    assert call("math.min", 1, 2) == 1
    assert call("math.min", x=-1.5, y=3) == -1.5


def test_math_max_doc_example_and_result_type(call):
    result = call("math.max", 123, -456.7)  # docs: returns 123
    assert result == 123
    assert isinstance(result, float)  # docs: a double unless both are integers
    assert isinstance(call("math.max", 1, 2), int)
    assert isinstance(call("math.min", 1, 2.0), float)


@pytest.mark.parametrize("name", ["math.abs", "math.floor"])
def test_math_needs_numbers(call, raises_tag, name):
    with raises_tag("TypeError"):
        call(name, "1")


def test_math_max_needs_numbers(call, raises_tag):
    with raises_tag("TypeError"):
        call("math.max", 1, "2")
    with raises_tag("TypeError"):
        call("math.min", True, 2)


def test_doc_examples_list(call):
    my_list = ["zero", "one", "two"]
    assert call("list.concat", my_list, "three") == ["zero", "one", "two", "three"]
    assert call("list.prepend", my_list, "three") == ["three", "zero", "one", "two"]


def test_doc_examples_map(call):
    m1 = {"key1": "hello", "key2": "world"}
    assert call("map.merge", m1, {"key3": "good", "key4": "morning"}) == {
        "key1": "hello", "key2": "world", "key3": "good", "key4": "morning"
    }
    assert call("map.merge", m1, {"key1": "good", "key2": "morning"}) == {
        "key1": "good", "key2": "morning"
    }
    assert call("map.merge_nested", {"key1": {"key2": "value2"}}, {"key1": {"key3": "value3"}}) == {
        "key1": {"key2": "value2", "key3": "value3"}
    }
    assert call("map.delete", m1, "key2") == {"key1": "hello"}
    assert call("map.delete", m1, "key3") == m1


def test_doc_example_math_abs(call):
    assert call("math.abs", -123) == 123
