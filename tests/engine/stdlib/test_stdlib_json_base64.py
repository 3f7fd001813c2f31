"""json.* and base64.*."""

from __future__ import annotations

import pytest


def test_encode_to_string_is_compact(call):
    assert call("json.encode_to_string", {"key1": "hello"}) == '{"key1":"hello"}'


def test_encode_returns_utf8_bytes(call):
    out = call("json.encode", {"hello": "wörld"})
    assert isinstance(out, bytes)
    assert out == '{"hello":"wörld"}'.encode()


def test_encode_numbers_keep_their_type(call):
    assert call("json.encode_to_string", [1, 1.0, 2.5, -3, 1e21]) == "[1,1.0,2.5,-3,1e+21]"


def test_encode_scalars(call):
    assert call("json.encode_to_string", None) == "null"
    assert call("json.encode_to_string", True) == "true"
    assert call("json.encode_to_string", "a\"b") == '"a\\"b"'


def test_encode_indent_true_is_four_spaces(call):
    assert call("json.encode_to_string", {"a": [1, 2]}, True) == (
        '{\n    "a": [\n        1,\n        2\n    ]\n}'
    )


def test_encode_indent_empty_map_equals_true(call):
    data = {"a": {"b": 1}}
    assert call("json.encode_to_string", data, {}) == call("json.encode_to_string", data, True)


def test_encode_indent_false_is_compact(call):
    assert call("json.encode_to_string", {"a": 1}, indent=False) == '{"a":1}'


def test_encode_indent_prefix_and_unit(call):
    out = call("json.encode_to_string", {"a": 1, "b": [2]}, {"prefix": "> ", "indent": "\t"})
    assert out == '{\n> \t"a": 1,\n> \t"b": [\n> \t\t2\n> \t]\n> }'


def test_encode_bytes_is_value_error(call, raises_tag):
    with raises_tag("ValueError"):
        call("json.encode_to_string", {"a": b"x"})


def test_encode_non_finite_is_value_error(call, raises_tag):
    with raises_tag("ValueError"):
        call("json.encode", float("nan"))


def test_decode_integers_and_doubles(call):
    assert call("json.decode", "1") == 1
    assert isinstance(call("json.decode", "1"), int)
    assert isinstance(call("json.decode", "1.0"), float)
    assert call("json.decode", '{"a": [1, 2.5, "x", null, true]}') == {
        "a": [1, 2.5, "x", None, True]
    }


def test_decode_bytes(call):
    assert call("json.decode", '{"k": "é"}'.encode()) == {"k": "é"}


def test_decode_bytes_reads_them_as_text_decode_does(call):
    assert call("json.decode", b'"a\xffb"') == "a\ufffdb"


def test_decode_integer_beyond_int64_becomes_double(call):
    value = call("json.decode", "9223372036854775808")
    assert isinstance(value, float)


@pytest.mark.parametrize("text", ["{", "NaN", "[1,]", "", "{'a': 1}"])
def test_decode_invalid_json_is_value_error(call, raises_tag, text):
    with raises_tag("ValueError"):
        call("json.decode", text)


def test_decode_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("json.decode", 5)


def test_base64_encode(call):
    assert call("base64.encode", b"hello") == "aGVsbG8="
    assert call("base64.encode", b"hello", False) == "aGVsbG8"


def test_base64_decode(call):
    assert call("base64.decode", "aGVsbG8=") == b"hello"
    assert call("base64.decode", "aGVsbG8", padding=False) == b"hello"


def test_base64_decode_ignores_cr_lf(call):
    assert call("base64.decode", "aGVs\r\nbG8=") == b"hello"


def test_base64_decode_bad_alphabet(call, raises_tag):
    with raises_tag("ValueError"):
        call("base64.decode", "a$b=")


def test_base64_decode_unpadded_input_with_padding_true(call, raises_tag):
    with raises_tag("ValueError"):
        call("base64.decode", "aGVsbG8")


def test_base64_pubsub_round_trip(call):
    message = {"hello": "world"}
    encoded = call("base64.encode", call("json.encode", message))
    assert call("json.decode", call("base64.decode", encoded)) == message


def test_base64_encode_needs_bytes(call, raises_tag):
    with raises_tag("TypeError"):
        call("base64.encode", "text")
