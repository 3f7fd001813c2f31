"""The `time` namespace: epoch seconds <-> ISO 8601 text."""

from __future__ import annotations

import datetime as _dt
import functools
import re
from typing import Any

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import type_error, want_number

_UTC = _dt.UTC
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
# RFC 3339 section 5.6: date "T" time, optional fraction, then Z or +hh:mm.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> _dt.tzinfo:
    if name in ("", "UTC", "Etc/UTC", "Z"):
        return _UTC
    import zoneinfo  # only when a named zone is used

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise make_error("ValueError", f"time.format: unknown timezone {name!r}") from None


def format_seconds(seconds: float, timezone: str = "") -> str:
    """ISO 8601 with microseconds; "Z" for a zero offset, else "+hh:mm"."""
    try:
        moment = _EPOCH + _dt.timedelta(seconds=seconds)
    except OverflowError:
        raise make_error("ValueError", f"time.format: timestamp out of range: {seconds}") from None
    local = moment.astimezone(_zone(timezone))
    text = local.strftime("%Y-%m-%dT%H:%M:%S.%f")
    offset = local.utcoffset()
    if not offset:
        return text + "Z"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    hours, rest = divmod(abs(total), 3600)
    return f"{text}{sign}{hours:02d}:{rest // 60:02d}"


@builtin("time.format")
def format(rt: Any, seconds: Any, timezone: Any = None) -> str:
    """Seconds since the epoch as ISO 8601 text in `timezone` (tz name, default UTC)."""
    want_number("time.format", "seconds", seconds)
    if timezone is None:
        timezone = ""
    elif not isinstance(timezone, str):
        type_error("time.format", "timezone", "a string", timezone)
    return format_seconds(seconds, timezone)


def parse_rfc3339(value: str, fn: str = "time.parse") -> float:
    """Seconds since the epoch (double) of an RFC 3339 timestamp; an offset is
    required, so that the instant is unambiguous."""
    m = _RFC3339.match(value)
    if not m:
        raise make_error("ValueError", f"{fn}: not an RFC 3339 timestamp: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    fraction = m.group(7) or ""
    if m.group(8):
        offset = 0
    else:
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        if m.group(9) == "-":
            offset = -offset
    try:
        moment = _dt.datetime(year, month, day, hour, minute, second, tzinfo=_UTC)
    except ValueError as exc:
        raise make_error("ValueError", f"{fn}: {exc}: {value!r}") from None
    whole = int((moment - _EPOCH).total_seconds()) - offset
    return whole + (float("0." + fraction) if fraction else 0.0)


@builtin("time.parse")
def parse(rt: Any, value: Any) -> float:
    """Seconds since the epoch (double) of an ISO 8601 / RFC 3339 timestamp."""
    if not isinstance(value, str):
        type_error("time.parse", "value", "a string", value)
    return float(parse_rfc3339(value))
