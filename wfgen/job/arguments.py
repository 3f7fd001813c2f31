"""The execution argument of a job's workflow: the rules, written once.

A deployed workflow serves many runs, and each run's argument may override
`image`, `command`, `args`, `script` and `env`. `ARGUMENT_KEYS` and
`EXCLUSIVE` below drive all three places that check such an argument, so they
never disagree:

- `parse_job_argument`: `wfgen run --local JOB --data '{...}'` (a UsageError);
- `json_schema`: the argument's JSON Schema (in `wfgen schema`'s `$defs`);
- `workflow_checks`: the conditions the generated workflow itself evaluates
  before any VM exists, because gcloud, Cloud Scheduler and Eventarc start it
  without wfgen. Each check is one switch condition (no loop, no extra billed
  step): the value is encoded with `json.encode_to_string` and matched against
  a regular expression written for RE2 (Workflows) and Python's `re` alike.

Semantics: every key given replaces the spec's; `script` and `command` exclude
each other (giving one drops the spec's other); `env` is merged over the
spec's. A script runs as `sh -c SCRIPT NAME ARGS...`: its args are its
positional parameters ("$@")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from wfgen.errors import UsageError

ENV_NAME_RE = r"[A-Za-z_][A-Za-z0-9_]*"
# A container image reference as docker reads it: [registry/]path[:tag][@digest].
# No look-ahead, so that RE2 (the workflow's text.match_regex) reads it too.
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_RE = (r"(?:(?:(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[0-9]+)?"
            r"|[A-Za-z0-9-]+:[0-9]+)/)?" + _PATH_PART + r"(?:/" + _PATH_PART + r")*"
            r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
            r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")

_KIND_TEXT = {"str": "a string", "strlist": "a list of strings", "strmap": "a map of strings"}


@dataclass(frozen=True)
class ArgumentKey:
    """One key of the execution argument."""

    name: str
    kind: str  # str, strlist, strmap
    doc: str
    pattern: str | None = None  # the whole string must match (str only)
    what: str = ""  # what `pattern` describes, for messages
    # the workflow's check (shorter: a Workflows expression holds 400 characters)
    workflow_pattern: str | None = None
    nonempty: bool = False  # a list that needs at least one item


ARGUMENT_KEYS: tuple[ArgumentKey, ...] = (
    ArgumentKey("image", "str", "Container image for this run.", pattern=IMAGE_RE,
                what="an image reference such as us-docker.pkg.dev/project/repo/image:tag",
                workflow_pattern=r"[A-Za-z0-9][A-Za-z0-9._/:@-]*"),
    ArgumentKey("command", "strlist", "Entrypoint for this run, as an argv list (drops the "
                "spec's script).", nonempty=True),
    ArgumentKey("args", "strlist", "Arguments for this run: the argv after the command, or "
                "the script's positional parameters (\"$@\")."),
    ArgumentKey("script", "str", "Shell script for this run, run as `sh -c SCRIPT NAME "
                "ARGS...` (drops the spec's command)."),
    ArgumentKey("env", "strmap", "Environment variables, merged over the spec's."),
)
KEY_NAMES = tuple(k.name for k in ARGUMENT_KEYS)
# Pairs of keys one argument may not give together, and why.
EXCLUSIVE: tuple[tuple[str, str, str], ...] = (
    ("command", "script", "script runs with sh -c; it cannot be combined with command"),
)


# ---------------------------------------------------------------------------
# The CLI check


def check_argument(value: Any) -> str | None:
    """Why `value` is not a valid execution argument, or None (messages name the key)."""
    if not isinstance(value, dict):
        return 'the execution argument must be a JSON object, e.g. {"args": ["--lr", "0.1"]}'
    for key in value:
        if key not in KEY_NAMES:
            return f"unknown key {key!r}; known keys: {', '.join(KEY_NAMES)}"
    for rule in ARGUMENT_KEYS:
        if rule.name not in value:
            continue
        item = value[rule.name]
        if not _has_kind(item, rule.kind):
            return f"{rule.name} must be {_KIND_TEXT[rule.kind]}"
        texts = [item] if isinstance(item, str) else [*item, *(
            item.values() if isinstance(item, dict) else [])]
        if any("\x00" in text for text in texts):
            return f"{rule.name} may not contain the NUL character"
        if rule.nonempty and not item:
            return f"{rule.name} must name at least the program to run"
        if rule.kind == "strmap":
            bad = [name for name in item if not re.fullmatch(ENV_NAME_RE, name)]
            if bad:
                return (f"{rule.name}: variable name {bad[0]!r} must be letters, digits and _ "
                        "(not starting with a digit)")
        if rule.pattern and not re.fullmatch(rule.pattern, item):
            return f"{rule.name}: {item!r} is not {rule.what}"
    for first, second, why in EXCLUSIVE:
        if first in value and second in value:
            return why
    return None


def _has_kind(item: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(item, str)
    if kind == "strlist":
        return isinstance(item, list) and all(isinstance(x, str) for x in item)
    return isinstance(item, dict) and all(isinstance(x, str) for x in item.values())


def parse_job_argument(data: str | None, spec: Any = None) -> dict[str, Any] | None:
    """The --data JSON for a job: an object of known keys with the right types; a
    fan-out job's (`spec` has tasks) may also replace its `items`."""
    if data is None:
        return None
    from wfgen.engine.values import data_argument

    try:
        value = data_argument(data)  # the engine's rules: 64-bit ints, no lone surrogates
    except ValueError as exc:
        raise UsageError(f"--data: {exc}") from None
    items: Any = None
    fan_out = spec is not None and spec.data["tasks"] is not None
    if fan_out and isinstance(value, dict) and "items" in value:
        from wfgen.job.tasks import item_rules, items_problem

        value = dict(value)
        items = value.pop("items")
        problem = items_problem(items, item_rules(spec))
        if problem:
            raise UsageError(f"--data: {problem}")
    problem = check_argument(value)
    if problem:
        raise UsageError(f"--data: {problem}")
    return value if items is None else {**value, "items": items}


# ---------------------------------------------------------------------------
# The JSON Schema


_NO_NUL = "[^\\u0000]*"  # ECMA regex: no NUL character


def json_schema() -> dict[str, Any]:
    """The execution argument's JSON Schema (a fragment: no $schema)."""
    props: dict[str, Any] = {}
    for rule in ARGUMENT_KEYS:
        schema: dict[str, Any] = {"description": rule.doc}
        if rule.kind == "str":
            schema.update(type="string", pattern=f"^{rule.pattern or _NO_NUL}$")
        elif rule.kind == "strlist":
            schema.update(type="array", items={"type": "string", "pattern": f"^{_NO_NUL}$"})
            if rule.nonempty:
                schema["minItems"] = 1
        else:
            schema.update(type="object", propertyNames={"pattern": f"^{ENV_NAME_RE}$"},
                          additionalProperties={"type": "string", "pattern": f"^{_NO_NUL}$"})
        props[rule.name] = schema
    return {
        "title": "wfgen execution argument",
        "description": "Per-run overrides of a job's container, passed as the workflow's "
                       "argument.",
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        "allOf": [{"not": {"required": [a, b]}} for a, b, _ in EXCLUSIVE],
    }


# ---------------------------------------------------------------------------
# The checks inside the generated workflow

# One JSON string literal as json.encode_to_string writes it (the encoder's escapes
# are valid; the checks only need to find where each string ends).
_JSON_STR = r'"(?:[^"\\]|\\.)*"'
_JSON_NAME = '"' + ENV_NAME_RE + '"'
_NUL = r"(?:^|[^\\])(?:\\\\)*\\u0000"  # an escaped NUL (not an escaped backslash + u0000)


def _list_re(item: str, nonempty: bool) -> str:
    items = rf"{item}(?:\s*,\s*{item})*"
    return rf"^\s*\[\s*{items if nonempty else f'(?:{items})?'}\s*\]\s*$"


def _map_re(key: str) -> str:
    pair = rf"{key}\s*:\s*{_JSON_STR}"
    return rf"^\s*\{{\s*(?:{pair}(?:\s*,\s*{pair})*)?\s*\}}\s*$"


def _type_re(rule: ArgumentKey) -> str:
    if rule.kind == "str":
        return rf"^\s*{_JSON_STR}\s*$"
    if rule.kind == "strlist":
        return _list_re(_JSON_STR, nonempty=False)
    return _map_re(_JSON_STR)


def _wf_string(text: str) -> str:
    """A Workflows expression string literal (JSON escaping reads the same)."""
    return json.dumps(text, ensure_ascii=False)


def workflow_checks(arg: str = "arg", extra_keys: tuple[str, ...] = ()
                    ) -> list[tuple[str, str]]:
    """(condition, message expression) pairs, in order, for one switch step: the first
    true condition raises a ValueError with its message. `arg` names a variable (or an
    expression) holding the argument, already defaulted from null to {}. `extra_keys`
    are known too (a fan-out job's `items`, checked by wfgen.job.tasks)."""
    enc = f"json.encode_to_string({arg})"
    is_map = _wf_string(r"^\s*\{")
    checks: list[tuple[str, str]] = [(
        f"not text.match_regex({enc}, {is_map})",
        _wf_string('the execution argument must be a JSON object, e.g. {"args": ["--lr", '
                   '"0.1"]}'))]
    rest = arg
    for name in KEY_NAMES + extra_keys:
        rest = f"map.delete({rest}, {_wf_string(name)})"
    checks.append((f"len(keys({rest})) > 0",
                   f"{_wf_string('the execution argument has an unknown key ')} + "
                   f"json.encode_to_string(keys({rest})[0]) + "
                   f"{_wf_string('; known keys: ' + ', '.join(KEY_NAMES + extra_keys))}"))
    for rule in ARGUMENT_KEYS:
        key = _wf_string(rule.name)
        value = f"json.encode_to_string(map.get({arg}, {key}))"
        present = f"{key} in {arg}"
        checks.append((f"{present} and not text.match_regex({value}, "
                       f"{_wf_string(_type_re(rule))})",
                       _wf_string(f"{rule.name} must be {_KIND_TEXT[rule.kind]}")))
        checks.append((f"{present} and text.match_regex({value}, {_wf_string(_NUL)})",
                       _wf_string(f"{rule.name} may not contain the NUL character")))
        if rule.nonempty:
            checks.append((f"{present} and not text.match_regex({value}, "
                           f"{_wf_string(_list_re(_JSON_STR, nonempty=True))})",
                           _wf_string(f"{rule.name} must name at least the program to run")))
        if rule.kind == "strmap":
            checks.append((f"{present} and not text.match_regex({value}, "
                           f"{_wf_string(_map_re(_JSON_NAME))})",
                           _wf_string(f"{rule.name}: variable names must be letters, digits "
                                      "and _ (not starting with a digit); got ")
                           + f" + json.encode_to_string(keys(map.get({arg}, {key})))"))
        if rule.workflow_pattern:
            text = f"default(map.get({arg}, {key}), \"\")"
            checks.append((f"{present} and not text.match_regex({text}, "
                           f"{_wf_string('^(?:' + rule.workflow_pattern + ')$')})",
                           f"{_wf_string(rule.name + ': ')} + json.encode_to_string({text}) + "
                           f"{_wf_string(' is not ' + rule.what)}"))
    for first, second, why in EXCLUSIVE:
        checks.append((f"{_wf_string(first)} in {arg} and {_wf_string(second)} in {arg}",
                       _wf_string(why)))
    return checks
