"""The quoting filter: any text parses back exactly and is never an expression."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from wfgen.job.quoting import QuotingError, comment, looks_like_expression, quote

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
_yaml = YAML(typ="safe", pure=True)


def parse(fragment: str):
    return _yaml.load("value: " + fragment)["value"]


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_any_text_parses_back_exactly(text):
    value = parse(quote(text))
    if looks_like_expression(text):
        # carried as an expression whose whole body is one string literal
        assert value.startswith('${"') and value.endswith('"}')
    else:
        assert value == text


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | TEXT,
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TEXT.filter(lambda s: not looks_like_expression(s)),
                                      inner, max_size=4), max_leaves=12))
def test_nested_data_parses_back(data):
    def plain(v):
        return not (isinstance(v, str) and looks_like_expression(v)) and (
            all(plain(x) for x in v) if isinstance(v, list) else
            all(plain(x) for x in v.values()) if isinstance(v, dict) else True)

    if plain(data):
        assert parse(quote(data)) == data


@pytest.mark.parametrize("text", ["${HOME}", "${1+1}", '${"a: b"}', "${}"])
def test_expression_like_strings_become_string_literals(text):
    import json

    value = parse(quote(text))
    assert json.loads(value[2:-1]) == text


def test_line_breaks_that_yaml_would_fold_are_escaped():
    for ch in ["\n", "\r", "\x85", "\u2028", "\u2029", "\ufeff"]:
        assert ch not in quote(f"a{ch}b")
        assert parse(quote(f"a{ch}b")) == f"a{ch}b"


def test_lone_surrogates_and_non_string_keys_are_refused():
    with pytest.raises(QuotingError):
        quote("\ud800")
    with pytest.raises(QuotingError):
        quote({1: "x"})


@given(TEXT)
def test_comment_text_stays_on_one_line(text):
    out = comment(text)
    assert "\n" not in out and "\r" not in out
    assert _yaml.load(f"# {out}\nk: 1\n") == {"k": 1}
