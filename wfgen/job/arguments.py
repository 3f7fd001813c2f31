"""The execution argument of a job's workflow, checked with the rules of
wfgen.job.rules (`ARGUMENT_KEYS`, `EXCLUSIVE`, `check_argument`) in two places
that must agree:

- `parse_job_argument`: `wfgen run --local JOB --data '{...}'` (a UsageError);
- `workflow_checks`: the conditions the generated workflow itself evaluates
  before any VM exists, because gcloud, Cloud Scheduler and Eventarc start it
  without wfgen.

(The argument's JSON Schema is wfgen.job.schema's `argument_schema`.)"""

from __future__ import annotations

import json
from typing import Any

from wfgen.errors import UsageError
from wfgen.job.rules import (
    _KIND_TEXT,
    ARGUMENT_KEYS,
    ENV_NAME_RE,
    EXCLUSIVE,
    URI_REFUSE_TEXT,
    ArgumentKey,
    argument_keys,
    check_argument,
)


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
    secrets = spec is not None and spec.data["container"].get("secret_env") is not None
    data = spec is not None and spec.data
    problem = check_argument(value, argument_keys(
        secrets, bool(data and data.get("inputs")), bool(data and data.get("outputs")),
        bool(data and data.get("workdir"))))
    if problem:
        raise UsageError(f"--data: {problem}")
    return value if items is None else {**value, "items": items}


# ---------------------------------------------------------------------------
# The checks inside the generated workflow

# Inside a list or map value, only its JSON text shows every item at once: an
# expression cannot loop, and a loop of steps would bill steps on every run with
# overrides. One JSON string literal as json.encode_to_string writes it (the
# encoder's escapes are valid; the checks only need to find where each string ends).
_JSON_STR = r'"(?:[^"\\]|\\.)*"'
_JSON_NAME = '"' + ENV_NAME_RE + '"'
_JSON_NUL = r"(?:^|[^\\])(?:\\\\)*\\u0000"  # an escaped NUL (not an escaped backslash + u0000)
NUL_RE = r"\x00"  # in a string value itself: RE2 and Python alike


def _list_re(item: str) -> str:
    items = rf"{item}(?:\s*,\s*{item})*"
    return rf"^\s*\[\s*(?:{items})?\s*\]\s*$"


def _map_re(key: str, value: str = _JSON_STR) -> str:
    pair = rf"{key}\s*:\s*{value}"
    return rf"^\s*\{{\s*(?:{pair}(?:\s*,\s*{pair})*)?\s*\}}\s*$"


def _wf_string(text: str) -> str:
    """A Workflows expression string literal (JSON escaping reads the same)."""
    return json.dumps(text, ensure_ascii=False)


# What a value's JSON text starts with, by kind: the parsed value's type without
# get_type, which is not among the documented expression helpers.
_FIRST_CHAR = {"str": r'^"', "strmap": r"^\s*\{"}


def _is_kind(kind: str, value: str) -> str:
    """An expression: whether `value` is a string (a map); a list's or map's items are
    checked with its kind (_item_checks)."""
    return (f"text.match_regex(json.encode_to_string({value}), "
            f"{_wf_string(_FIRST_CHAR[kind])})")


def _type_message(rule: ArgumentKey) -> str:
    return _wf_string(f"{rule.name} must be {_KIND_TEXT[rule.kind]}")


def _nul_message(rule: ArgumentKey) -> str:
    return _wf_string(f"{rule.name} may not contain the NUL character")


def _item_checks(rule: ArgumentKey, present: str, value: str) -> list[tuple[str, str]]:
    """A list's items (a map's values) are strings without NUL; a map's keys are
    variable names (the parsed keys, as a list)."""
    enc = f"json.encode_to_string({value})"
    items = _list_re(_JSON_STR) if rule.kind == "strlist" else _map_re(_JSON_STR)
    checks = [(f"{present} and not text.match_regex({enc}, {_wf_string(items)})",
               _type_message(rule)),
              (f"{present} and text.match_regex({enc}, {_wf_string(_JSON_NUL)})",
               _nul_message(rule))]
    if rule.kind == "strmap":
        names = f"json.encode_to_string(keys({value}))"
        checks.append((f"{present} and not text.match_regex({names}, "
                       f"{_wf_string(_list_re(_JSON_NAME))})",
                       _wf_string(f"{rule.name}: variable names must be letters, digits and "
                                  "_ (not starting with a digit); got ") + f" + {names}"))
    return checks


def workflow_checks(arg: str = "arg", extra_keys: tuple[str, ...] = (),
                    keys: tuple[ArgumentKey, ...] = ARGUMENT_KEYS) -> list[tuple[str, str]]:
    """(condition, message expression) pairs, in order, for one switch step: the first
    true condition raises a ValueError with its message. Each checks one part of the
    parsed argument (its keys, one key's value, len, text.match_regex on a string
    value) by check_argument's rules and in its order; a value's type and the items
    inside a list or map value are matched on that value's JSON text. No loop, no
    step of their own: the success path bills 11 steps with or without overrides.
    `arg` names a variable (or an expression) holding the argument, already
    defaulted from null to {}. `extra_keys` are known too (a fan-out job's `items`,
    checked by wfgen.job.tasks); `keys` are the argument's (rules.argument_keys)."""
    checks: list[tuple[str, str]] = [(
        f"not {_is_kind('strmap', arg)}",
        _wf_string('the execution argument must be a JSON object, e.g. {"args": ["--lr", '
                   '"0.1"]}'))]
    rest = arg
    names = tuple(k.name for k in keys) + extra_keys
    for name in names:
        rest = f"map.delete({rest}, {_wf_string(name)})"
    checks.append((f"len(keys({rest})) > 0",
                   f"{_wf_string('the execution argument has an unknown key ')} + "
                   f"json.encode_to_string(keys({rest})[0]) + "
                   f"{_wf_string('; known keys: ' + ', '.join(names))}"))
    nul = _wf_string(NUL_RE)
    for rule in keys:
        key = _wf_string(rule.name)
        value = f"map.get({arg}, {key})"
        present = f"{key} in {arg}"
        if rule.kind == "str":
            checks.append((f"{present} and not {_is_kind(rule.kind, value)}",
                           _type_message(rule)))
            checks.append((f"{present} and text.match_regex({value}, {nul})",
                           _nul_message(rule)))
        else:
            checks += _item_checks(rule, present, value)
        if rule.nonempty:
            checks.append((f"{present} and len({value}) == 0",
                           _wf_string(f"{rule.name} must name at least the program to run")))
        if rule.workflow_pattern and rule.kind == "strmap":  # each value, on the JSON text
            enc = f"json.encode_to_string({value})"
            values = _map_re(r'"\w+"', f'"(?:{rule.workflow_pattern})"')
            checks.append((f"{present} and not text.match_regex({enc}, {_wf_string(values)})",
                           f"{_wf_string(rule.name + ': each value must be ' + rule.what)}"
                           f" + {_wf_string('; got ')} + {enc}"))
        elif rule.workflow_pattern:
            checks.append((f"{present} and not text.match_regex({value}, "
                           f"{_wf_string('^(?:' + rule.workflow_pattern + ')$')})",
                           f"{_wf_string(rule.name + ': ')} + json.encode_to_string({value}) + "
                           f"{_wf_string(' is not ' + rule.what)}"))
        if rule.workflow_refuse:
            enc = f"json.encode_to_string({value})"
            checks.append((f"{present} and text.match_regex({enc}, "
                           f"{_wf_string(rule.workflow_refuse)})",
                           f"{_wf_string(rule.name + ': each value must be ' + URI_REFUSE_TEXT)}"
                           f" + {_wf_string('; got ')} + {enc}"))
    for first, second, why in EXCLUSIVE:
        checks.append((f"{_wf_string(first)} in {arg} and {_wf_string(second)} in {arg}",
                       _wf_string(why)))
    return checks
