"""The registry: every documented function is there, under its Workflows name,
with the documented argument names (call steps pass `args:` by name)."""

from __future__ import annotations

import inspect

import pytest

from wfgen.engine.stdlib import BUILTINS, CONSTANTS

_HTTP_COMMON = ["url", "timeout", "headers", "query", "auth", "private_service_name",
                "ca_certificate"]

DOCUMENTED = {
    "default": ["val", "defaultVal"],
    "keys": ["map"],
    "len": ["value"],
    "int": ["arg"],
    "double": ["arg"],
    "string": ["arg"],
    "map.get": ["map", "keys"],
    "map.delete": ["map", "key"],
    "map.merge": ["first", "second"],
    "map.merge_nested": ["first", "second"],
    "list.concat": ["objs", "val"],
    "list.prepend": ["objs", "val"],
    "math.abs": ["x"],
    "math.floor": ["x"],
    "math.max": ["x", "y"],
    "math.min": ["x", "y"],
    "text.split": ["source", "separator"],
    "text.substring": ["source", "start", "end"],
    "text.find_all": ["source", "substr"],
    "text.find_all_regex": ["source", "regexp"],
    "text.match_regex": ["source", "regexp"],
    "text.replace_all": ["source", "substr", "repl"],
    "text.replace_all_regex": ["source", "regexp", "repl"],
    "text.to_lower": ["source"],
    "text.to_upper": ["source"],
    "text.encode": ["text", "charset"],
    "text.decode": ["data", "charset"],
    "text.url_encode": ["source"],
    "text.url_encode_plus": ["source"],
    "text.url_decode": ["source"],
    "json.encode": ["data", "indent"],
    "json.encode_to_string": ["data", "indent"],
    "json.decode": ["data"],
    "base64.encode": ["data", "padding"],
    "base64.decode": ["data", "padding"],
    "time.format": ["seconds", "timezone"],
    "time.parse": ["value"],
    "sys.now": [],
    "sys.get_env": ["name", "default"],
    "sys.log": ["data", "severity", "text", "json", "timeout"],
    "sys.sleep": ["seconds"],
    "sys.sleep_until": ["time"],
    "http.get": _HTTP_COMMON,
    "http.post": [*_HTTP_COMMON, "body"],
    "http.put": [*_HTTP_COMMON, "body"],
    "http.patch": [*_HTTP_COMMON, "body"],
    "http.delete": [*_HTTP_COMMON, "body"],
    "http.request": ["method", *_HTTP_COMMON, "body"],
    "http.default_retry_predicate": ["exception"],
    "http.default_retry_predicate_non_idempotent": ["exception"],
    "retry.always": ["exception"],
    "retry.never": ["exception"],
    "uuid.generate": [],
    "hash.compute_checksum": ["data", "algorithm"],
    "hash.compute_hmac": ["key", "data", "algorithm"],
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_builtin_has_documented_parameter_names(name):
    params = list(inspect.signature(BUILTINS[name]).parameters)
    assert params[0] == "rt"
    assert sorted(params[1:]) == sorted(DOCUMENTED[name])


def test_undocumented_helpers_are_not_builtins():
    assert "get_type" not in BUILTINS


def test_constants_present():
    for name in (
        "http.default_retry",
        "http.default_retry_non_idempotent",
        "http.default_retry_predicate",
        "http.default_retry_predicate_non_idempotent",
        "retry.default_backoff",
    ):
        assert name in CONSTANTS


def test_uuid_generate_is_a_random_v4_uuid(call):
    first, second = call("uuid.generate"), call("uuid.generate")
    assert first != second
    assert len(first) == 36 and first[14] == "4"


def test_hash_checksum_and_hmac(call):
    digest = call("hash.compute_checksum", b"abc", "SHA256")
    assert digest.hex().startswith("ba7816bf")
    fox = b"The quick brown fox jumps over the lazy dog"
    mac = call("hash.compute_hmac", b"key", fox, "SHA256")
    assert mac.hex().startswith("f7bc83f4")


def test_hash_checksum_doc_example(call):
    checksum = call("hash.compute_checksum", call("text.encode", "Hello World", "UTF-8"), "SHA256")
    assert call("base64.encode", checksum) == "pZGm1Av0IEBKARczz7exkNYsZb8LzaMrV7J32a2fFG4="
    assert len(call("hash.compute_checksum", b"x", "SHA224")) == 28


def test_hash_wrong_types(call, raises_tag):
    with raises_tag("TypeError"):
        call("hash.compute_checksum", "text", "SHA256")
    with raises_tag("TypeError"):
        call("hash.compute_checksum", b"x", 256)


def test_hash_unknown_algorithm(call, raises_tag):
    with raises_tag("ValueError"):
        call("hash.compute_checksum", b"abc", "CRC32")
