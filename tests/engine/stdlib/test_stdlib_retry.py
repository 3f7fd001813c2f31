"""http.default_retry*, retry.* policies and predicates."""

from __future__ import annotations

import pytest

from wfgen.engine.stdlib import BUILTINS, CONSTANTS
from wfgen.engine.values import FunctionRef


def _http_error(code: int) -> dict:
    return {"message": f"HTTP {code}", "tags": ["HttpError"], "code": code}


def _tagged(tag: str) -> dict:
    return {"message": tag, "tags": [tag]}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_http_error(429), True),
        (_http_error(502), True),
        (_http_error(503), True),
        (_http_error(504), True),
        (_http_error(500), False),
        (_http_error(404), False),
        (_tagged("ConnectionError"), True),
        (_tagged("ConnectionFailedError"), True),
        (_tagged("TimeoutError"), True),
        (_tagged("KeyError"), False),
        ("a raised string", False),
    ],
)
def test_default_retry_predicate(call, error, expected):
    assert call("http.default_retry_predicate", error) is expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_http_error(429), True),
        (_http_error(503), True),
        (_http_error(502), False),
        (_http_error(504), False),
        (_tagged("ConnectionFailedError"), True),
        (_tagged("ConnectionError"), False),
        (_tagged("TimeoutError"), False),
    ],
)
def test_default_retry_predicate_non_idempotent(call, error, expected):
    assert call("http.default_retry_predicate_non_idempotent", error) is expected


def test_default_retry_policy():
    policy = CONSTANTS["http.default_retry"]
    assert policy == {
        "predicate": FunctionRef("http.default_retry_predicate"),
        "max_retries": 5,
        "backoff": {"initial_delay": 1, "max_delay": 60, "multiplier": 1.25},
    }


def test_default_retry_non_idempotent_policy():
    policy = CONSTANTS["http.default_retry_non_idempotent"]
    assert policy["predicate"] == FunctionRef("http.default_retry_predicate_non_idempotent")
    assert policy["max_retries"] == 5
    assert policy["backoff"] == CONSTANTS["retry.default_backoff"]


def test_predicate_constants_name_builtins():
    for name in (
        "http.default_retry_predicate",
        "http.default_retry_predicate_non_idempotent",
        "retry.always",
        "retry.never",
    ):
        ref = CONSTANTS[name]
        assert isinstance(ref, FunctionRef)
        assert ref.name in BUILTINS


def test_retry_always_never(call):
    assert call("retry.always", _tagged("KeyError")) is True
    assert call("retry.never", _http_error(503)) is False


def test_policy_predicate_via_call_function(rt):
    bound = rt.bind(lambda ref, args: BUILTINS[ref.name](bound, *args))
    ref = CONSTANTS["http.default_retry"]["predicate"]
    assert bound.call_function(ref, [_http_error(503)]) is True
