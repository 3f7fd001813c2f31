"""Fixtures for the stdlib conformance suite: a services object on a virtual
clock with a fixed environment, and `call` to invoke a builtin by its
Workflows name the way a call step would (named args) or an expression would
(positional args)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wfgen.engine.errors import WorkflowError
from wfgen.engine.services import Services, VirtualClock, default_env
from wfgen.engine.stdlib import BUILTINS


@pytest.fixture
def rt() -> Services:
    env = default_env()
    env["MY_VAR"] = "my value"
    return Services(clock=VirtualClock(start=1_720_788_633.0), env=env)


@pytest.fixture
def call(rt: Services) -> Callable[..., Any]:
    def invoke(name: str, *args: Any, **kwargs: Any) -> Any:
        return BUILTINS[name](rt, *args, **kwargs)

    return invoke


@contextlib.contextmanager
def _raises_tag(tag: str) -> Iterator[pytest.ExceptionInfo[WorkflowError]]:
    """Expect a WorkflowError whose value is a map tagged `tag`."""
    with pytest.raises(WorkflowError) as info:
        yield info
    value = info.value.value
    assert isinstance(value, dict), value
    assert tag in value["tags"], value
    assert isinstance(value["message"], str) and value["message"]


@pytest.fixture
def raises_tag() -> Callable[[str], Any]:
    """`with raises_tag("TypeError") as info:` checks the error map and its tag."""
    return _raises_tag
