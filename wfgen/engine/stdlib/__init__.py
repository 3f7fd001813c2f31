"""The Workflows standard library, one module per namespace.

Registry convention (shared by the runtime and every namespace module):
`BUILTINS` maps a fully qualified name ("len", "text.split", "sys.now",
"http.get") to a Builtin. A builtin is a plain Python function whose first
parameter is the runtime services object `rt` (clock, environment, log sink,
HTTP) and whose remaining parameters carry the documented argument names, so
that expressions call it positionally (`text.split(s, ",")`) and call steps call
it with named args (`args: {source: ..., separator: ...}`). Errors are raised as
wfgen.engine.errors.WorkflowError with the documented tags.

`CONSTANTS` maps names that are values rather than calls
("http.default_retry", "http.default_retry_predicate", ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BUILTINS: dict[str, Callable[..., Any]] = {}
CONSTANTS: dict[str, Any] = {}


def builtin(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register fn under its Workflows name, e.g. @builtin("text.split")."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        BUILTINS[name] = fn
        return fn

    return register


def _load_namespaces() -> None:
    """Import every namespace module so that BUILTINS/CONSTANTS are complete."""
    from wfgen.engine.stdlib import (  # noqa: F401
        base64_,
        core,
        http_,
        json_,
        list_,
        map_,
        math_,
        misc,
        retry_,
        sys_,
        text,
        time_,
    )


_load_namespaces()
