"""The `sys` namespace: clock, environment, logging, sleeping.

Everything goes through the services object `rt` so tests run on a virtual
clock, a fixed environment and an in-memory log."""

from __future__ import annotations

from typing import Any

from wfgen.engine.errors import make_error
from wfgen.engine.stdlib import builtin
from wfgen.engine.stdlib._values import is_number, type_error, type_name, want_str

SEVERITIES = frozenset(
    {"DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}
)
MAX_SLEEP = 31_536_000  # one year: the longest an execution may run


@builtin("sys.now")
def now(rt: Any) -> float:
    """Seconds since the epoch, as a double."""
    return float(rt.clock.now())


@builtin("sys.get_env")
def get_env(rt: Any, name: Any, default: Any = None) -> Any:
    """An environment variable (built-in GOOGLE_CLOUD_* or user-set), else `default`."""
    want_str("sys.get_env", "name", name)
    value = rt.env.get(name)
    return default if value is None else value


_LOGGABLE = (int, float, bool, str, list, dict)


@builtin("sys.log")
def log(
    rt: Any,
    data: Any = None,
    severity: Any = "DEFAULT",
    text: Any = None,
    json: Any = None,
    timeout: Any = None,
) -> None:
    """Write exactly one of data / text / json at `severity` to rt.log.

    The entry handed to the sink is {"severity": ..., "data"|"text"|"json": ...};
    a map given as `data` is a JSON payload in Cloud Logging, anything else a
    text payload."""
    given = [name for name, value in (("data", data), ("text", text), ("json", json))
             if value is not None]
    if len(given) != 1:
        raise make_error(
            "TypeError", "sys.log: exactly one of data, text or json must be given"
        )
    if severity is None:
        severity = "DEFAULT"
    want_str("sys.log", "severity", severity)
    if severity not in SEVERITIES:
        raise make_error("ValueError", f"sys.log: unknown severity {severity!r}")
    if timeout is not None and not is_number(timeout):
        type_error("sys.log", "timeout", "a number", timeout)
    kind = given[0]
    payload = {"data": data, "text": text, "json": json}[kind]
    if kind == "json":
        if not isinstance(payload, dict):
            type_error("sys.log", "json", "a map", payload)
    elif not isinstance(payload, _LOGGABLE):
        raise make_error(
            "TypeError", f"sys.log: {kind} of type {type_name(payload)} cannot be logged"
        )
    rt.log({"severity": severity, kind: payload})


def _check_sleep(fn: str, seconds: Any) -> float:
    if not is_number(seconds):
        type_error(fn, "seconds", "a number", seconds)
    if seconds < 0 or seconds > MAX_SLEEP:
        raise make_error("ValueError", f"{fn}: seconds must be in [0, {MAX_SLEEP}]: {seconds}")
    return seconds


@builtin("sys.sleep")
def sleep(rt: Any, seconds: Any) -> None:
    """Suspend the execution for `seconds` (on rt.clock: virtual in tests)."""
    rt.clock.sleep(_check_sleep("sys.sleep", seconds))


@builtin("sys.sleep_until")
def sleep_until(rt: Any, time: Any) -> None:
    """Suspend until an RFC 3339 timestamp; a time in the past returns at once."""
    from wfgen.engine.stdlib.time_ import parse_rfc3339

    if not isinstance(time, str):
        type_error("sys.sleep_until", "time", "a string", time)
    delay = parse_rfc3339(time, "sys.sleep_until") - rt.clock.now()
    if delay > 0:
        rt.clock.sleep(_check_sleep("sys.sleep_until", delay))
