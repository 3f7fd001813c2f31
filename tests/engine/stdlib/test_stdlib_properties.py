"""Round-trip properties (Hypothesis): base64, json, text.encode/decode, url
encoding, time.format/parse, string/int/double."""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from wfgen.engine.services import Services, VirtualClock
from wfgen.engine.stdlib import BUILTINS

RT = Services(clock=VirtualClock())
FAST = settings(max_examples=150, deadline=None)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
DOUBLES = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text()
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | INT64 | DOUBLES | TEXT,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)


def call(name, *args, **kwargs):
    return BUILTINS[name](RT, *args, **kwargs)


def _same(a, b) -> bool:
    """Equal with matching Workflows types (1 and 1.0 differ; -0.0 == 0.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@FAST
@given(st.binary(), st.booleans())
def test_base64_round_trip(data, padding):
    assert call("base64.decode", call("base64.encode", data, padding), padding) == data


@FAST
@given(JSON_VALUES)
def test_json_round_trip_keeps_types(value):
    assert _same(call("json.decode", call("json.encode", value)), value)
    assert _same(call("json.decode", call("json.encode_to_string", value, True)), value)


@FAST
@given(JSON_VALUES, st.text(alphabet=" \t", max_size=3), st.text(alphabet=" \t", max_size=4))
def test_json_indented_round_trip(value, prefix, unit):
    text = call("json.encode_to_string", value, {"prefix": prefix, "indent": unit})
    assert _same(call("json.decode", text), value)


@FAST
@given(TEXT.filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)))
def test_text_encode_decode_round_trip(text):
    assert call("text.decode", call("text.encode", text)) == text
    assert call("text.decode", call("text.encode", text, "UTF-16"), "UTF-16") == text


@FAST
@given(TEXT.filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)))
def test_url_encode_decode_round_trip(text):
    encoded = call("text.url_encode", text)
    assert all((c.isalnum() and c.isascii()) or c in ".-_%" for c in encoded)
    assert call("text.url_decode", encoded) == text


@FAST
# (the last second of year 9999 is left out: a double near 2.5e11 rounds its
# microseconds up into year 10000, which time.format rightly refuses)
@given(st.integers(min_value=0, max_value=253402300798), st.integers(0, 999999))
def test_time_format_parse_round_trip(seconds, micros):
    stamp = seconds + micros / 1e6
    text = call("time.format", stamp)
    assert abs(call("time.parse", text) - stamp) < 2e-6


@FAST
@given(DOUBLES)
def test_string_double_round_trip(value):
    assert call("double", call("string", value)) == value


@FAST
@given(INT64)
def test_string_int_round_trip(value):
    assert call("int", call("string", value)) == value


@FAST
@given(TEXT, TEXT.filter(bool))
def test_split_then_join_restores_source(source, separator):
    assert separator.join(call("text.split", source, separator)) == source


@FAST
@given(TEXT, TEXT.filter(bool))
def test_find_all_indexes_point_at_substr(source, substr):
    for index in call("text.find_all", source, substr):
        assert source[index : index + len(substr)] == substr


@FAST
@given(TEXT, TEXT.filter(bool), TEXT)
def test_replace_all_is_split_then_join(source, substr, repl):
    assert call("text.replace_all", source, substr, repl) == repl.join(
        call("text.split", source, substr)
    )


@FAST
@given(st.text(alphabet="ab.c", max_size=12), st.text(alphabet="ab.c", min_size=1, max_size=3))
def test_regex_on_a_literal_agrees_with_find_all(source, substr):
    found = call("text.find_all_regex", source, re.escape(substr))
    assert [m["index"] for m in found] == call("text.find_all", source, substr)
    assert call("text.replace_all_regex", source, re.escape(substr), "X") == call(
        "text.replace_all", source, substr, "X"
    )
