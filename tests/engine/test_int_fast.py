"""The loop fast paths (wfgen.engine.expr.int_fast, the one-closure loop test)
answer exactly as the general operators: `${x OP 3}` takes the fast path and
`${x OP y}` with y = 3 the general one, for ints at the edges of the 64-bit
range and for every other type, results and errors alike."""

from __future__ import annotations

import json

import pytest

from tests.engine.enginetest import run
from wfgen.engine.expr.int_fast import FAST_OPS

VALUES = [0, 7, -3, 9223372036854775807, -9223372036854775808, 2.5, "a", True, None,
          [1], {"k": 1}]


def _outcome(expression: str, x: object) -> tuple[str, object]:
    src = (f"main:\n  params: [args]\n  steps:\n    - s:\n        assign:\n"
           f"          - x: ${{args.x}}\n          - y: 3\n"
           f"          - r: ${{{expression}}}\n    - done:\n        return: ${{r}}\n")
    res = run(src, {"x": x})
    if res.state == "SUCCEEDED":
        return "ok", res.result
    assert res.error is not None
    return "error", json.dumps(res.error.to_json()["error"], sort_keys=True)


@pytest.mark.parametrize("op", sorted(FAST_OPS))
@pytest.mark.parametrize("x", VALUES, ids=repr)
def test_a_variable_and_an_int_constant_answer_as_the_general_operator(op: str,
                                                                       x: object) -> None:
    assert _outcome(f"x {op} 3", x) == _outcome(f"x {op} y", x)


def test_an_int_overflow_is_still_an_error() -> None:
    kind, error = _outcome("x + 3", 9223372036854775807)
    assert kind == "error" and "overflow" in str(error)


def test_a_counting_loop_with_a_jump_test_ends_where_it_should() -> None:
    src = """\
main:
  steps:
    - init:
        assign:
          - i: 0
    - step:
        assign:
          - i: ${i + 1}
        next: test
    - test:
        switch:
          - condition: ${i < 1000}
            next: step
    - done:
        return: ${i}
"""
    res = run(src)
    assert res.state == "SUCCEEDED" and res.result == 1000
    assert res.steps_internal == 1 + 2 * 1000 + 1


def test_a_jump_test_that_is_not_a_boolean_fails_as_a_switch_does() -> None:
    src = """\
main:
  steps:
    - test:
        switch:
          - condition: ${1 + 1}
            next: done
    - done:
        return: 1
"""
    res = run(src)
    assert res.state == "FAILED" and res.error is not None
    assert "TypeError" in json.dumps(res.error.to_json())


def test_a_parallel_branch_reads_its_parents_counter_on_the_fast_path() -> None:
    src = """\
main:
  steps:
    - init:
        assign:
          - n: 41
          - out: 0
    - p:
        parallel:
          shared: [out]
          branches:
            - b:
                steps:
                  - add:
                      assign:
                        - out: ${n + 1}
    - done:
        return: ${out}
"""
    res = run(src)
    assert res.state == "SUCCEEDED" and res.result == 42


def test_a_missing_variable_fails_alike_on_both_paths() -> None:
    src = "main:\n  steps:\n    - s:\n        assign:\n          - y: 3\n          - r: ${{{}}}\n"
    fast, general = run(src.format("z + 3")), run(src.format("z + y"))
    assert fast.state == general.state == "FAILED"
    assert fast.error is not None and general.error is not None
    assert fast.error.to_json() == general.error.to_json()
