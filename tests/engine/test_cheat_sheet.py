"""Google's all-syntax sample parses and runs, HTTP answered on loopback.

Reading of "runs to the end": the sample as published cannot complete on the
real service either, for two reasons that are in the file itself:
1. `map_ops` reads `var.key["special!key"]`, and no variable `var` exists, so
   the original stops there with a KeyError;
2. `raise_custom_string_error` raises on purpose, which ends any execution.
So the tests (a) run the original and assert it fails exactly at `map_ops`;
(b) run a copy that defines `var` and assert it fails exactly at
`raise_custom_string_error` with the raised string as the error value; and
(c) run a copy that also wraps both raise steps in try/except and assert it
reaches `return_multiple_values` and returns what the sample computes, with
every HTTP call answered by the loopback server and the Compute Engine
connector supplied by the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.enginetest import Loopback, services
from wfgen.engine import execute, load_workflow

SAMPLE = Path(__file__).parent.parent / "data" / "syntax-cheat-sheet.workflows.yaml"
ARG = {"arg1": "a", "arg2": "b", "userId": "u1", "notificationId": "n1", "posts": []}

DEFINE_VAR = """    - define_var:
        assign:
          - var: {key: {"special!key": "!"}}
    - map_ops:"""

WRAPPED_RAISES = """    - raise_custom_string_error:
        try:
          raise: "Something went wrong."
        except:
          as: e
          steps:
            - note_string_error:
                assign:
                  - caught_string: ${e}
    - raise_custom_map_error:
        try:
          raise:
            code: 55
            message: "Something went wrong."
        except:
          as: e
          steps:
            - note_map_error:
                assign:
                  - caught_code: ${e.code}
    - try_retry_except:"""


def _text() -> str:
    return SAMPLE.read_text()


def _with_var(text: str) -> str:
    assert "    - map_ops:" in text
    return text.replace("    - map_ops:", DEFINE_VAR, 1)


def _with_wrapped_raises(text: str) -> str:
    start = text.index("    - raise_custom_string_error:")
    end = text.index("    - try_retry_except:")
    return text[:start] + WRAPPED_RAISES + text[end + len("    - try_retry_except:"):]


def _insert(rt: Any, connector_params: Any = None, **args: Any) -> dict[str, Any]:
    return {"name": "operation-1", "status": "DONE", "targetLink": args["body"]["name"]}


def _run(text: str, lb: Loopback) -> Any:
    wf = load_workflow(text, "syntax-cheat-sheet.workflows.yaml")
    return execute(wf, ARG, services=services(lb),
                   connectors={"googleapis.compute.v1.instances.insert": _insert})


def test_sample_parses() -> None:
    wf = load_workflow(_text(), str(SAMPLE))
    assert set(wf.subworkflows) == {"main", "subworkflow_name_message"}
    assert wf.main.steps[0].name == "read_runtime_args"
    assert wf.main.steps[0].line == 20


def test_original_fails_at_undefined_var(loopback: Loopback) -> None:
    res = _run(_text(), loopback)
    assert res.state == "FAILED"
    assert res.error.step == "map_ops"
    assert "KeyError" in res.error.tags
    assert "var" in res.error.message


def test_stops_at_raise_custom_string_error(loopback: Loopback) -> None:
    res = _run(_with_var(_text()), loopback)
    assert res.state == "FAILED"
    assert res.error.step == "raise_custom_string_error"
    assert res.error.value == "Something went wrong."  # a raised string stays a string


def test_runs_to_the_end_with_raises_wrapped(loopback: Loopback) -> None:
    res = _run(_with_wrapped_raises(_with_var(_text())), loopback)
    assert res.state == "SUCCEEDED", res.error
    out = res.result
    assert out["my_integer"] == 1
    assert out["my_string"] == "hello"
    assert out["my_true"] is True and out["my_false"] is False
    assert out["my_list"] == [0, 1, 2, 3]
    assert out["my_multi_dimen_list"] == [[10, "Value11", 12], [20, 21, 22]]
    assert out["my_map"] == {"Key1": "Value1", "Key2": "Value2", "Key3": "Value3"}
    assert out["my_nested_map"] == {"NestedMapKey": {"Key1": "Value1", "Key2": "Value2"}}
    paths = sorted(p.split("?")[0] for _, p, _ in loopback.requests)
    assert paths == ["/api", "/api2", "/myfunc1", "/notification/n1", "/users/u1",
                     "/w/api.php"]
    # Billing: the two example.com calls, host.com x2 and wikipedia are external;
    # cloudfunctions.net is a Google host (internal).
    assert res.steps_external == 5
    assert res.steps_internal > 40


def test_same_result_twice(loopback: Loopback) -> None:
    text = _with_wrapped_raises(_with_var(_text()))
    a = _run(text, loopback)
    b = _run(text, loopback)
    assert a.state == b.state == "SUCCEEDED"
    assert a.result == b.result
    assert (a.steps_internal, a.steps_external) == (b.steps_internal, b.steps_external)
