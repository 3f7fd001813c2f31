"""Wire formats shared by the Workflows and Executions fronts: timestamps,
durations, enum names (clients send names or integers; we answer names),
page tokens and resource-name patterns."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from wfgen.local.loopback import ApiError

SEGMENT = r"[^/:]+"
PARENT_RE = re.compile(rf"projects/({SEGMENT})/locations/({SEGMENT})")
WORKFLOW_ID_RE = re.compile(r"[a-zA-Z](?:[a-zA-Z0-9_-]{0,62}[a-zA-Z0-9])?")

CALL_LOG_LEVELS = ("CALL_LOG_LEVEL_UNSPECIFIED", "LOG_ALL_CALLS", "LOG_ERRORS_ONLY", "LOG_NONE")
HISTORY_LEVELS = ("EXECUTION_HISTORY_LEVEL_UNSPECIFIED", "EXECUTION_HISTORY_BASIC",
                  "EXECUTION_HISTORY_DETAILED")
EXECUTION_VIEWS = ("EXECUTION_VIEW_UNSPECIFIED", "BASIC", "FULL")


def now() -> tuple[float, str]:
    """(epoch seconds, RFC 3339 UTC with microseconds)."""
    t = time.time()
    return t, timestamp(t)


def timestamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_timestamp(text: str) -> float:
    """Epoch seconds of a timestamp() (fromisoformat: strptime costs ten times more)."""
    if not text.endswith("Z") or len(text) != 27:
        raise ValueError(f"not an RFC 3339 UTC timestamp with microseconds: {text!r}")
    return datetime.fromisoformat(text).timestamp()


def duration(seconds: float) -> str:
    return f"{max(0.0, seconds):.6f}s"


def enum_name(field: str, value: Any, names: tuple[str, ...]) -> str:
    """An enum given by name or number, as its name; anything else is a 400."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value in names:
        return value
    raise ApiError(400, f"Invalid value at '{field}': {value!r}; expected one of "
                        f"{', '.join(names)}")


def page_size(value: str | int | None, default: int, maximum: int = 1000) -> int:
    try:
        size = int(value or 0)
    except ValueError:
        raise ApiError(400, f"Invalid value at 'page_size': {value!r}") from None
    if size < 0:
        raise ApiError(400, "page_size must not be negative")
    return min(size or default, maximum)


def page_offset(token: str | None, scope: str) -> int:
    """The offset an earlier page's nextPageToken stands for (tokens name their scope)."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode() + b"==").decode()
        owner, _, offset = text.rpartition("#")
        if owner != scope or not offset.isdigit() or len(offset) > 12:
            raise ValueError(owner)  # a forged offset would overflow SQLite
        return int(offset)
    except ValueError:
        raise ApiError(400, f"Invalid page token {token!r}") from None


def page_token(scope: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{scope}#{offset}".encode()).decode().rstrip("=")


def paged(key: str, scope: str, size: str | int | None, token: str | None,
          fetch: Callable[[int, int], list[Any]], *, default: int, maximum: int = 1000,
          show: Callable[[Any], Any] = lambda item: item) -> dict[str, Any]:
    """One page of a list call: `fetch(offset, count)` gives up to count items
    from offset on; one more than the page is asked for, to know if a next exists."""
    limit = page_size(size, default, maximum)
    offset = page_offset(token, scope)
    items = fetch(offset, limit + 1)
    out: dict[str, Any] = {key: [show(item) for item in items[:limit]]}
    if len(items) > limit:
        out["nextPageToken"] = page_token(scope, offset + limit)
    return out


def split_parent(parent: str) -> tuple[str, str]:
    match = PARENT_RE.fullmatch(parent)
    if not match:
        raise ApiError(400, f"Invalid parent {parent!r}: expected projects/*/locations/*")
    return match.group(1), match.group(2)
