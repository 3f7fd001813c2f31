"""The execution argument of a job: which keys a run may override, and their
rules (`wfgen run --data`, and what the generated workflow accepts)."""

from __future__ import annotations

import re
from typing import Any

from wfgen.errors import UsageError
from wfgen.job.spec import ENV_NAME_RE, IMAGE_RE

ENV_NAME = re.compile(ENV_NAME_RE)
JOB_ARGUMENT_KEYS = {"image": "a string", "command": "a list of strings",
                     "args": "a list of strings", "script": "a string",
                     "env": "a map of strings"}


def parse_job_argument(data: str | None) -> dict[str, Any] | None:
    """The --data JSON for a job: an object of known keys with the right types."""
    if data is None:
        return None
    from wfgen.engine.values import data_argument

    try:
        value = data_argument(data)  # the engine's rules: 64-bit ints, no lone surrogates
    except ValueError as exc:
        raise UsageError(f"--data: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError('--data must be a JSON object, e.g. {"args": ["--lr", "0.1"]}')
    for key, item in value.items():
        if key not in JOB_ARGUMENT_KEYS:
            raise UsageError(f"--data: unknown key {key!r}; known: {', '.join(JOB_ARGUMENT_KEYS)}")
        kind = JOB_ARGUMENT_KEYS[key]
        ok = (isinstance(item, str) if kind == "a string" else
              isinstance(item, list) and all(isinstance(x, str) for x in item)
              if kind == "a list of strings" else
              isinstance(item, dict) and all(isinstance(x, str) for x in item.values()))
        if not ok:
            raise UsageError(f"--data: {key} must be {kind}")
        texts = [item] if isinstance(item, str) else [*item, *(
            item.values() if isinstance(item, dict) else [])]
        if any("\x00" in text for text in texts):
            raise UsageError(f"--data: {key} may not contain the NUL character")
        if key == "env":
            bad = [name for name in item if not ENV_NAME.fullmatch(name)]
            if bad:
                raise UsageError(f"--data: environment variable name {bad[0]!r} must be "
                                 "letters, digits and _")
    if "args" in value and "script" in value:
        raise UsageError("--data may give args or script, not both")
    if "command" in value and "script" in value:
        raise UsageError("--data: script runs with sh -c; it cannot be combined with command")
    if "image" in value and not re.fullmatch(IMAGE_RE, value["image"]):
        raise UsageError(f"--data: {value['image']!r} is not an image reference")
    return value
