"""text.*: values from the function reference pages where they give one."""

from __future__ import annotations

import pytest


def test_split_on_separator(call):
    assert call("text.split", "a,b,c", ",") == ["a", "b", "c"]


def test_split_named_args(call):
    assert call("text.split", source="x--y", separator="--") == ["x", "y"]


def test_split_keeps_empty_fields(call):
    assert call("text.split", ",a,,b,", ",") == ["", "a", "", "b", ""]


def test_split_without_separator_in_source(call):
    assert call("text.split", "abc", ",") == ["abc"]


def test_split_empty_separator_is_value_error(call, raises_tag):
    with raises_tag("ValueError"):
        call("text.split", "abc", "")


@pytest.mark.parametrize(
    ("source", "separator", "expected"),
    [
        ("baaab", "aa", ["b", "ab"]),  # overlapping: leftmost match
        ("abc", "a", ["", "bc"]),
        ("abc", "c", ["ab", ""]),
        ("abbc", "b", ["a", "", "c"]),
    ],
)
def test_split_doc_examples(call, source, separator, expected):
    assert call("text.split", source, separator) == expected


def test_split_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("text.split", 5, ",")


def test_substring_doc_examples(call):
    assert call("text.substring", "hello", 2, 4) == "ll"
    # negative index is an offset from the end, then clamped to the string
    assert call("text.substring", "hello", -10, 10) == "hello"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 5, "Hello"),
        (6, 11, "World"),
        (6, 100, "World"),  # end past the string: clamped
        (-5, 11, "World"),  # negative: from the end
        (0, -6, "Hello"),
        (-5, -1, "Worl"),
        (4, 2, ""),  # empty range
        (20, 30, ""),  # both past the end
        (-100, -50, ""),
    ],
)
def test_substring_indexes(call, start, end, expected):
    assert call("text.substring", "Hello World", start, end) == expected


def test_substring_counts_code_points(call):
    assert call("text.substring", "héllo✓", 1, 6) == "éllo✓"


def test_substring_index_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("text.substring", "abc", 0.5, 2)


def test_find_all_doc_examples(call):
    assert call("text.find_all", "00000", "00") == [0, 2]
    assert call("text.find_all", "Hello World", "l") == [2, 3, 9]


def test_find_all_no_match(call):
    assert call("text.find_all", "abc", "z") == []


def test_find_all_indexes_are_code_points(call):
    assert call("text.find_all", "ééxéx", "x") == [2, 4]


def test_find_all_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("text.find_all", "abc", None)


def test_find_all_regex_doc_example(call):
    assert call("text.find_all_regex", "HelloWorld", "Hello|World") == [
        {"index": 0, "match": "Hello"},
        {"index": 5, "match": "World"},
    ]


def test_find_all_regex_no_match(call):
    assert call("text.find_all_regex", "abc", "[0-9]+") == []


def test_find_all_regex_invalid_regex(call, raises_tag):
    with raises_tag("ValueError"):
        call("text.find_all_regex", "abc", "(")


def test_regex_backreference_is_rejected_as_in_re2(call, raises_tag):
    with raises_tag("ValueError"):
        call("text.match_regex", "aa", r"(a)\1")
    with raises_tag("ValueError"):
        call("text.match_regex", "ab", r"a(?=b)")


def test_regex_digit_class_is_ascii_as_in_re2(call):
    assert call("text.match_regex", "٣", r"\d") is False
    assert call("text.match_regex", "3", r"\d") is True


def test_match_regex_doc_examples(call):
    assert call("text.match_regex", "HelloWorld", "Hello|Goodbye") is True
    assert call("text.match_regex", "HelloWorld", "Goodbye") is False


def test_match_regex(call):
    assert call("text.match_regex", "hello world", "w.rld") is True
    assert call("text.match_regex", "hello world", "^world") is False
    assert call("text.match_regex", source="abc123", regexp=r"^[a-z]+\d+$") is True


def test_match_regex_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("text.match_regex", "abc", 1)


def test_replace_all_doc_example(call):
    assert call("text.replace_all", "Hello World", "Hello", "Goodbye") == "Goodbye World"


def test_replace_all_leftmost_non_overlapping(call):
    assert call("text.replace_all", "aaa", "aa", "b") == "ba"


def test_replace_all_empty_substr_matches_around_code_points(call):
    assert call("text.replace_all", "ab", "", "-") == "-a-b-"


def test_replace_all_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("text.replace_all", "abc", "a", 1)


def test_replace_all_regex_doc_example(call):
    assert call("text.replace_all_regex", "one two", "one|two", "three") == "three three"


def test_replace_all_regex_replacement_is_literal(call):
    assert call("text.replace_all_regex", "ab", "(a)", r"\1$1") == r"\1$1b"


def test_replace_all_regex_empty_expression(call):
    assert call("text.replace_all_regex", "ab", "", "-") == "-a-b-"


def test_replace_all_regex_invalid(call, raises_tag):
    with raises_tag("ValueError"):
        call("text.replace_all_regex", "ab", "[", "x")


def test_to_lower_doc_example(call):
    assert call("text.to_lower", "Hello World") == "hello world"


def test_to_lower_and_upper(call):
    assert call("text.to_lower", "HeLLo ÄÖ") == "hello äö"
    assert call("text.to_upper", "HeLLo äö") == "HELLO ÄÖ"


def test_to_lower_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("text.to_lower", 1)


def test_encode_decode_utf8(call):
    data = call("text.encode", "héllo")
    assert data == "héllo".encode()
    assert isinstance(data, bytes)
    assert call("text.decode", data) == "héllo"


def test_encode_other_charset(call):
    assert call("text.encode", "é", "ISO-8859-1") == b"\xe9"
    assert call("text.decode", b"\xe9", charset="ISO-8859-1") == "é"


def test_decode_replaces_each_undecodable_byte(call):
    assert call("text.decode", b"\xff\xfe\xfd") == "\ufffd\ufffd\ufffd"
    assert call("text.decode", b"a\xe2\x82b") == "a\ufffd\ufffdb"  # one per byte


def test_decode_doc_example(call):
    assert call("text.decode", call("base64.decode", "SGVsbG8gV29ybGQ="), "UTF-8") == "Hello World"


def test_encode_unknown_charset_is_value_error(call, raises_tag):
    with raises_tag("ValueError"):
        call("text.encode", "x", "NO-SUCH-CHARSET")
    with raises_tag("ValueError"):
        call("text.encode", "x", "base64")  # a codec, but not a character set
    with raises_tag("ValueError"):
        call("text.decode", b"x", "rot13")


def test_encode_charset_is_case_insensitive(call):
    assert call("text.encode", "Hello World", "utf-8") == b"Hello World"
    assert call("text.encode", "abc", "us-ascii") == b"abc"


def test_encode_unrepresentable_is_value_error(call, raises_tag):
    with raises_tag("ValueError"):
        call("text.encode", "é", "US-ASCII")


def test_encode_doc_example_base64(call):
    assert call("base64.encode", call("text.encode", "Hello World", "UTF-8")) == "SGVsbG8gV29ybGQ="


def test_decode_needs_bytes(call, raises_tag):
    with raises_tag("TypeError"):
        call("text.decode", "not bytes")


def test_url_encode_doc_example(call):
    assert call("text.url_encode", "a/b/c?item=d+e f") == "a%2Fb%2Fc%3Fitem%3Dd%2Be%20f"


def test_url_encode_keeps_only_letters_digits_dot_dash_underscore(call):
    assert call("text.url_encode", "aZ09.-_~é") == "aZ09.-_%7E%C3%A9"


def test_url_encode_plus_doc_example(call):
    assert call("text.url_encode_plus", "a/b/c?item=d+e f") == "a%2Fb%2Fc%3Fitem%3Dd%2Be+f"


def test_url_encode_wrong_type(call, raises_tag):
    with raises_tag("TypeError"):
        call("text.url_encode", 1)


def test_url_decode_doc_example(call):
    assert call("text.url_decode", "a%2Fb%2Fc%3Fitem%3Dd%2Be") == "a/b/c?item=d+e"


def test_url_decode_plus_is_space_and_utf8(call):
    assert call("text.url_decode", "a+b%20c%C3%A9") == "a b cé"
    assert call("text.url_decode", "x%FFy") == "x\ufffdy"


def test_url_decode_inverts_url_encode_plus(call):
    text = "a/b c+d&é"
    assert call("text.url_decode", call("text.url_encode_plus", text)) == text


def test_url_decode_malformed(call, raises_tag):
    with raises_tag("ValueError"):
        call("text.url_decode", "100%")
    with raises_tag("ValueError"):
        call("text.url_decode", "%zz")


def test_find_all_regex_longest_of_matches_at_same_index(call):
    # docs: overlapping matches starting at the same index -> the longest one
    assert call("text.find_all_regex", "HelloWorld", "Hello|HelloWorld") == [
        {"index": 0, "match": "HelloWorld"}
    ]
    assert call("text.find_all_regex", "x ab y", "(?i)A|AB") == [{"index": 2, "match": "ab"}]
    assert call("text.find_all_regex", "a|b", r"[|]|a\|b") == [{"index": 0, "match": "a|b"}]


def test_replace_all_regex_longest_of_matches_at_same_index(call):
    assert call("text.replace_all_regex", "HelloWorld!", "Hello|HelloWorld", "X") == "X!"


def test_regex_empty_match_after_a_match_is_not_reported(call):
    # RE2: no empty match right after the previous match ("x*" on "abxd")
    assert call("text.replace_all_regex", "abxd", "x*", "-") == "-a-b-d-"
    assert call("text.find_all_regex", "ab", "x*") == [
        {"index": 0, "match": ""},
        {"index": 1, "match": ""},
        {"index": 2, "match": ""},
    ]


def test_regex_anchors_keep_leftmost_first(call):
    assert call("text.find_all_regex", "abc", "a|ab$") == [{"index": 0, "match": "a"}]


def test_find_all_empty_substr_matches_at_every_index(call):
    assert call("text.find_all", "abc", "") == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("source", "regexp", "expected"),
    [
        ("a1b22", "[[:digit:]]+", ["1", "22"]),
        ("ab-CD", "[[:upper:][:digit:]]+", ["CD"]),
        ("x.y*z", r"\Q.y*\E", [".y*"]),
        ("abc", r"c\z", ["c"]),
        ("key=val", "(?<k>[a-z]+)=", ["key="]),
    ],
)
def test_regex_re2_spellings(call, source, regexp, expected):
    found = call("text.find_all_regex", source, regexp)
    assert [m["match"] for m in found] == expected


@pytest.mark.parametrize("regexp", [r"a\Z", "[[:nope:]]", r"(a)\1", "(?=a)", "a{2,1}", "(a"])
def test_regex_not_re2_is_value_error(call, raises_tag, regexp):
    with raises_tag("ValueError"):
        call("text.match_regex", "a", regexp)


def test_regex_unicode_classes_are_re2s(call):
    found = call("text.find_all_regex", "a\u00e9\u03b1 1", r"\p{Greek}|\pL+")
    assert found == [{"index": 0, "match": "a\u00e9\u03b1"}]
    assert call("text.match_regex", "\u03b1", r"^\p{Greek}$") is True


@pytest.mark.parametrize(
    ("source", "regexp", "expected"),
    [
        ("Ab AB ab", "a(?i)b", ["ab"]),  # (?i) after "a": only the b folds case
        ("aB AB", "a(?i)b", ["aB"]),
        ("xAB xab", "x(?:(?i)a)B", ["xAB"]),  # flag scoped to its group
        ("HELLO", "(?i)hello", ["HELLO"]),  # leading flags as usual
        ("xA B b", "x(?i)a|b", ["xA", "B", "b"]),  # still two alternatives
    ],
)
def test_regex_flags_in_mid_pattern(call, source, regexp, expected):
    found = call("text.find_all_regex", source, regexp)
    assert [m["match"] for m in found] == expected


def test_regex_ungreedy_flag_is_re2s(call):
    # RE2's U flag swaps greedy and lazy: a+ takes one "a", a+? all of them
    found = call("text.find_all_regex", "aaa", "(?U)a+")
    assert [m["match"] for m in found] == ["a", "a", "a"]


def test_regex_runs_in_linear_time(call):
    # catastrophic backtracking in a backtracking engine (2**40 paths); RE2 is linear
    assert call("text.match_regex", "a" * 40 + "!", "(a+)+$") is False
    found = call("text.find_all_regex", "\u00e9" * 20000 + "x", "x")
    assert found == [{"index": 20000, "match": "x"}]
