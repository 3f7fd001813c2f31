"""Retry policies and predicates: `retry.*` and the `http.default_retry*` family.

Policies are plain maps (what a `retry:` block accepts); predicates are
FunctionRef values naming builtins here, so `${http.default_retry_predicate}`
can be stored, passed and called like a user subworkflow."""

from __future__ import annotations

from typing import Any

from wfgen.engine.stdlib import CONSTANTS, builtin
from wfgen.engine.values import FunctionRef

DEFAULT_BACKOFF: dict[str, Any] = {"initial_delay": 1, "max_delay": 60, "multiplier": 1.25}

_IDEMPOTENT_CODES = frozenset({429, 502, 503, 504})
_IDEMPOTENT_TAGS = frozenset({"ConnectionError", "ConnectionFailedError", "TimeoutError"})
_NON_IDEMPOTENT_CODES = frozenset({429, 503})
_NON_IDEMPOTENT_TAGS = frozenset({"ConnectionFailedError"})


def _matches(exception: Any, codes: frozenset[int], tags: frozenset[str]) -> bool:
    if not isinstance(exception, dict):
        return False
    code = exception.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and code in codes:
        return True
    found = exception.get("tags")
    return isinstance(found, list) and any(t in tags for t in found if isinstance(t, str))


@builtin("http.default_retry_predicate")
def default_retry_predicate(rt: Any, exception: Any) -> bool:
    """True for HTTP 429/502/503/504 and ConnectionError, ConnectionFailedError,
    TimeoutError (idempotent targets)."""
    return _matches(exception, _IDEMPOTENT_CODES, _IDEMPOTENT_TAGS)


@builtin("http.default_retry_predicate_non_idempotent")
def default_retry_predicate_non_idempotent(rt: Any, exception: Any) -> bool:
    """True for HTTP 429/503 and ConnectionFailedError only (the request may have
    had an effect in every other case)."""
    return _matches(exception, _NON_IDEMPOTENT_CODES, _NON_IDEMPOTENT_TAGS)


@builtin("retry.always")
def always(rt: Any, exception: Any) -> bool:
    """Retry on every error."""
    return True


@builtin("retry.never")
def never(rt: Any, exception: Any) -> bool:
    """Never retry."""
    return False


def _policy(predicate: str) -> dict[str, Any]:
    return {
        "predicate": FunctionRef(predicate),
        "max_retries": 5,
        "backoff": dict(DEFAULT_BACKOFF),
    }


CONSTANTS.update(
    {
        "retry.default_backoff": dict(DEFAULT_BACKOFF),
        "retry.always": FunctionRef("retry.always"),
        "retry.never": FunctionRef("retry.never"),
        "http.default_retry_predicate": FunctionRef("http.default_retry_predicate"),
        "http.default_retry_predicate_non_idempotent": FunctionRef(
            "http.default_retry_predicate_non_idempotent"
        ),
        "http.default_retry": _policy("http.default_retry_predicate"),
        "http.default_retry_non_idempotent": _policy(
            "http.default_retry_predicate_non_idempotent"
        ),
    }
)
