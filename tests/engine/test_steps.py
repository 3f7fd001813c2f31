"""Conformance: steps, jumps, scopes, subworkflows, errors and limits."""

from __future__ import annotations

import textwrap

import pytest

from tests.engine.enginetest import error_of, result_of, run
from wfgen.engine import WorkflowSyntaxError, load_workflow


def wf(text: str) -> str:
    return textwrap.dedent(text)


# ---- assign ---------------------------------------------------------------------------


def test_assign_targets() -> None:
    src = wf("""
    - a:
        assign:
          - m: {"k": {"n": [1, 2, 3]}}
          - m.k.n[0]: 10
          - m["k"]["x"]: "y"
          - i: 2
          - m.k.n[i]: ${i * 100}
          - l: [[1, 2], [3, 4]]
          - l[1][0]: 30
    - r:
        return: ${[m, l]}
    """)
    assert result_of(src) == [{"k": {"n": [10, 2, 200], "x": "y"}}, [[1, 2], [30, 4]]]


def test_assign_is_by_value() -> None:
    src = wf("""
    - a:
        assign:
          - a: {"x": 1}
          - b: ${a}
          - b.x: 2
    - r:
        return: ${[a.x, b.x]}
    """)
    assert result_of(src) == [1, 2]


def test_assign_into_missing_index_is_index_error() -> None:
    src = wf("""
    - a:
        assign:
          - l: [1]
          - l[3]: 2
    """)
    assert "IndexError" in error_of(src).tags


def test_yaml_map_keys_become_strings() -> None:
    src = wf("""
    - a:
        assign:
          - m: {1: 10, 2: 20}
    - r:
        return: ${m["1"] + m["2"]}
    """)
    assert result_of(src) == 30


def test_multiple_assignments_run_in_order() -> None:
    src = wf("""
    - a:
        assign:
          - x: 1
          - y: ${x + 1}
          - x: ${y * 10}
    - r:
        return: ${x}
    """)
    assert result_of(src) == 20


# ---- next / switch ----------------------------------------------------------------------


def test_next_jumps_and_end() -> None:
    src = wf("""
    - a:
        assign:
          - x: 1
        next: c
    - b:
        assign:
          - x: 2
    - c:
        assign:
          - y: ${x}
        next: end
    - d:
        return: "not reached"
    """)
    res = run(src)
    assert res.state == "SUCCEEDED" and res.result is None
    assert res.steps_internal == 2


def test_next_from_nested_block_to_outer_step() -> None:
    src = wf("""
    - outer:
        steps:
          - inner:
              next: target
    - skipped:
        return: "no"
    - target:
        return: "yes"
    """)
    assert result_of(src) == "yes"


def test_switch_first_true_condition_wins() -> None:
    src = wf("""
    main:
      params: [n]
      steps:
        - s:
            switch:
              - condition: ${n < 10}
                return: "small"
              - condition: ${n < 100}
                next: medium
              - condition: true
                raise: "big"
        - medium:
            return: "medium"
    """)
    assert result_of(src, 5) == "small"
    assert result_of(src, 50) == "medium"
    assert error_of(src, 500).value == "big"


def test_switch_step_level_next_is_the_default() -> None:
    src = wf("""
    main:
      params: [n]
      steps:
        - s:
            switch:
              - condition: ${n == 1}
                next: one
              - condition: ${n == 2}
                assign:
                  - note: "two"
            next: other
        - fallthrough:
            return: "fell through"
        - one:
            return: "one"
        - other:
            return: "other"
    """)
    assert result_of(src, 1) == "one"
    assert result_of(src, 2) == "other"  # matched without next: the step-level next
    assert result_of(src, 3) == "other"  # nothing matched: the step-level next


def test_switch_steps_and_assign() -> None:
    src = wf("""
    - init:
        assign:
          - x: 0
    - s:
        switch:
          - condition: ${x == 0}
            assign:
              - x: 1
            steps:
              - inner:
                  assign:
                    - x: ${x + 10}
    - r:
        return: ${x}
    """)
    assert result_of(src) == 11


def test_switch_condition_must_be_boolean() -> None:
    src = wf("""
    - s:
        switch:
          - condition: ${1}
            next: end
    """)
    err = error_of(src)
    assert "TypeError" in err.tags and err.step == "s"


# ---- for ------------------------------------------------------------------------------------


def test_for_in_list_with_index() -> None:
    src = wf("""
    - init:
        assign:
          - out: []
    - loop:
        for:
          value: v
          index: i
          in: ["a", "b", "c"]
          steps:
            - add:
                assign:
                  - out: ${out + [string(i) + v]}
    - r:
        return: ${out}
    """)
    assert result_of(src) == ["0a", "1b", "2c"]


def test_for_range_is_inclusive() -> None:
    src = wf("""
    - init:
        assign:
          - sum: 0
    - loop:
        for:
          value: v
          range: [1, 9]
          steps:
            - add:
                assign:
                  - sum: ${sum + v}
    - r:
        return: ${sum}
    """)
    assert result_of(src) == 45


def test_for_range_expression() -> None:
    src = wf("""
    main:
      params: [n]
      steps:
        - init:
            assign:
              - seen: []
        - loop:
            for:
              value: v
              range: ${[1, n]}
              steps:
                - add:
                    assign:
                      - seen: ${seen + [v]}
        - r:
            return: ${seen}
    """)
    assert result_of(src, 3) == [1, 2, 3]


def test_loop_scope() -> None:
    """Docs sample: variables created in a loop do not exist after it."""
    base = wf("""
    - init:
        assign:
          - workflowScope: foo
    - outerLoop:
        for:
          value: outerLoopValue
          in: [1, 2]
          steps:
            - outerLoopAssign:
                assign:
                  - outerLoopScope: ${workflowScope}
            - innerLoop:
                for:
                  value: innerLoopValue
                  in: [5, 6]
                  steps:
                    - innerLoopAssign:
                        assign:
                          - workflowScope: ${innerLoopValue}
                          - innerLoopScope: ${outerLoopScope}
    """)
    assert result_of(base + "- final:\n    return: ${workflowScope}\n") == 6
    final_line = base.count("\n") + 2
    for name in ("outerLoopScope", "innerLoopScope", "outerLoopValue", "innerLoopValue"):
        # a deploy error (reference/syntax/variables): refused before anything runs
        with pytest.raises(WorkflowSyntaxError, match=f"variable '{name}' exists only in the "
                                                      "for loop") as exc:
            load_workflow(base + f"- final:\n    return: ${{{name}}}\n", "t.yaml")
        assert exc.value.line == final_line


def test_break_and_continue() -> None:
    src = wf("""
    - init:
        assign:
          - seen: []
    - loop:
        for:
          value: v
          in: [1, 2, 3, 4, 5, 6]
          steps:
            - check:
                switch:
                  - condition: ${v == 2}
                    next: continue
                  - condition: ${v == 5}
                    next: break
            - add:
                assign:
                  - seen: ${seen + [v]}
    - r:
        return: ${seen}
    """)
    assert result_of(src) == [1, 3, 4]


def test_return_from_inside_loop() -> None:
    src = wf("""
    - loop:
        for:
          value: v
          in: [1, 2, 3]
          steps:
            - check:
                switch:
                  - condition: ${v == 2}
                    return: ${v * 100}
    - r:
        return: 0
    """)
    assert result_of(src) == 200


def test_for_in_needs_a_list() -> None:
    src = wf("""
    - loop:
        for:
          value: v
          in: ${"abc"}
          steps:
            - s:
                assign:
                  - x: 1
    """)
    err = error_of(src)
    assert "TypeError" in err.tags and err.step == "loop"


# ---- subworkflows ---------------------------------------------------------------------------


SUBS = wf("""
main:
  params: [args]
  steps:
    - call_named:
        call: greet
        args:
          first_name: "Ada"
          last_name: "Lovelace"
        result: a
    - call_expr:
        assign:
          - b: ${greet("Sherlock", "Holmes", "Scotland")}
    - r:
        return: ${[a, b]}
greet:
  params: [first_name, last_name, country: "England"]
  steps:
    - prepareMessage:
        return: ${"Hello " + first_name + " " + last_name + " from " + country + "."}
""")


def test_subworkflow_params_and_defaults() -> None:
    assert result_of(SUBS) == [
        "Hello Ada Lovelace from England.",
        "Hello Sherlock Holmes from Scotland.",
    ]


@pytest.mark.parametrize(
    "call",
    [
        "call: greet\n        args:\n          first_name: Ada",  # missing last_name
        "call: greet\n        args:\n          first_name: A\n          last_name: B\n"
        "          age: 3",  # unknown argument
    ],
)
def test_subworkflow_bad_arguments_are_type_errors(call: str) -> None:
    src = SUBS.replace("call: greet\n        args:\n          first_name: \"Ada\"\n"
                       "          last_name: \"Lovelace\"", call)
    err = error_of(src, {})
    assert "TypeError" in err.tags and err.step == "call_named"


def test_subworkflow_without_return_gives_null_and_has_own_scope() -> None:
    src = wf("""
    main:
      steps:
        - a:
            assign:
              - x: 1
        - c:
            call: sub
            result: r
        - out:
            return: ${[x, r]}
    sub:
      steps:
        - s:
            assign:
              - x: 2
    """)
    assert result_of(src) == [1, None]


def test_call_depth_limit_is_recursion_error() -> None:
    src = wf("""
    main:
      steps:
        - c:
            return: ${down(0)}
    down:
      params: [n]
      steps:
        - s:
            return: ${down(n + 1)}
    """)
    err = error_of(src)
    assert "RecursionError" in err.tags


def test_call_depth_19_is_fine() -> None:
    src = wf("""
    main:
      steps:
        - c:
            return: ${down(1)}
    down:
      params: [n]
      steps:
        - s:
            switch:
              - condition: ${n >= 19}
                return: ${n}
        - d:
            return: ${down(n + 1)}
    """)
    assert result_of(src) == 19


def test_main_param_gets_the_argument() -> None:
    src = "main:\n  params: [input]\n  steps:\n    - r:\n        return: ${input.a}\n"
    assert result_of(src, {"a": [1]}) == [1]


def test_unknown_function() -> None:
    with pytest.raises(WorkflowSyntaxError, match="no_such_fn"):
        load_workflow("- a:\n    return: ${no_such_fn(1)}\n", "w.yaml")
    err = error_of("- a:\n    return: ${no_such.fn(1)}\n")  # dotted: checked when run
    assert "no_such.fn" in err.message and err.step == "a"


# ---- raise / errors -----------------------------------------------------------------------


def test_raise_string_and_map() -> None:
    assert error_of('- r:\n    raise: "boom"\n').value == "boom"
    err = error_of("- r:\n    raise:\n      code: 55\n      message: ${\"x\" + \"y\"}\n")
    assert err.value == {"code": 55, "message": "xy"} and err.step == "r"


def test_error_names_the_innermost_failing_step() -> None:
    src = wf("""
    - outer:
        steps:
          - inner:
              assign:
                - x: ${1 / 0}
    """)
    err = error_of(src)
    assert err.step == "inner" and "ZeroDivisionError" in err.tags


def test_same_workflow_same_result_twice() -> None:
    a = run(SUBS, {})
    b = run(SUBS, {})
    assert a.result == b.result and a.steps_internal == b.steps_internal


# ---- limits -----------------------------------------------------------------------------------


def test_infinite_loop_stops_at_step_limit() -> None:
    src = wf("""
    - a:
        assign:
          - n: 0
    - b:
        assign:
          - n: ${n + 1}
        next: b
    """)
    res = run(src)
    assert res.state == "FAILED"
    assert "ResourceLimitError" in res.error.tags
    assert res.steps_internal == 100_001  # the step that would be 100,001st fails


def test_caught_resource_limit_cannot_keep_running() -> None:
    src = wf("""
    - t:
        try:
          steps:
            - b:
                next: b
        except:
          as: e
          steps:
            - again:
                return: "escaped"
    """)
    res = run(src)
    assert res.state == "FAILED" and "ResourceLimitError" in res.error.tags


def test_variable_memory_limit() -> None:
    big = wf("""
    main:
      params: [chunk]
      steps:
        - a:
            assign:
              - l: []
        - grow:
            for:
              value: i
              range: [1, 1000]
              steps:
                - add:
                    assign:
                      - l: ${list.concat(l, chunk + string(i))}
    """)
    res = run(big, "x" * 2000)  # 1000 x 2 KB > 512 KB
    assert res.state == "FAILED"
    assert "ResourceLimitError" in res.error.tags
    assert res.error.step == "add"
    ok = run(big, "x" * 200)  # 1000 x 200 B < 512 KB
    assert ok.state == "SUCCEEDED", ok.error


def test_string_limit() -> None:
    src = wf("""
    - a:
        assign:
          - s: "0123456789012345678901234567890123456789012345678901234567890123"
    - grow:
        for:
          value: i
          range: [1, 13]
          steps:
            - dbl:
                assign:
                  - s: ${s + s}
    """)
    err = error_of(src)
    assert "ResourceLimitError" in err.tags


# ---- parse errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "line", "fragment"),
    [
        ("- a:\n    assign:\n      - x: 1\n    next: nowhere\n", 1, "nowhere"),
        ("- a:\n    bogus: 1\n", 2, "bogus"),
        ("- a:\n    assign:\n      - x: 1\n    call: f\n", 1, "mixes"),
        ("main:\n  params: [a, b]\n  steps:\n    - s:\n        return: 1\n", 1, "one parameter"),
        ("- a:\n    for:\n      value: v\n      steps:\n        - s:\n            next: end\n",
         2, "in"),
        ("- a:\n    try:\n      call: f\n      next: b\n    except:\n      steps:\n"
         "        - b:\n            return: 1\n", 4, "next may not sit inside try"),
        ("- a:\n    next: break\n", 1, "outside a for loop"),
        ("- a: [1\n", 2, "YAML"),
    ],
)
def test_syntax_errors_name_the_line(src: str, line: int, fragment: str) -> None:
    with pytest.raises(WorkflowSyntaxError) as info:
        load_workflow(src, "w.yaml")
    assert any(i.line == line and fragment in i.message for i in info.value.issues), (
        info.value.issues)
    assert str(info.value).startswith("w.yaml:")


def test_dynamic_map_keys() -> None:
    """Docs (maps): keys written as expressions are evaluated."""
    src = wf("""
    - createMap:
        assign:
          - dynamicKey: "myKey"
          - myMap: {"${dynamicKey}": "myValue"}
          - myMap2: {'${dynamicKey + "Apple"}': "myValue", "plain": 1}
    - r:
        return: ${[myMap, myMap2]}
    """)
    assert result_of(src) == [{"myKey": "myValue"}, {"myKeyApple": "myValue", "plain": 1}]
    bad = src.replace('"${dynamicKey}"', '"${1 + 1}"')
    assert "TypeError" in error_of(bad).tags


def test_error_names_the_subworkflow() -> None:
    err = error_of(SUBS.replace('"Hello " + first_name', '"Hello " + null'), {})
    assert err.step == "prepareMessage" and err.subworkflow == "greet"
    top = error_of('- r:\n    raise: "x"\n')
    assert top.subworkflow == "main"


def test_main_param_default_when_no_argument() -> None:
    src = "main:\n  params: [cfg: {n: 2}]\n  steps:\n    - r:\n        return: ${cfg.n}\n"
    assert result_of(src) == 2
    assert result_of(src, {"n": 5}) == 5


def test_docs_sample_switch_with_embedded_steps() -> None:
    """Docs sample "execute steps using an embedded switch"."""
    src = wf("""
    - step1:
        assign:
          - a: 1
    - step2:
        switch:
          - condition: ${a==1}
            steps:
              - stepA:
                  assign:
                    - a: ${a+7}
              - stepB:
                  return: ${"increase a to:"+string(a)}
    - step3:
        return: ${"default a="+string(a)}
    """)
    assert result_of(src) == "increase a to:8"
    assert result_of(src.replace("- a: 1", "- a: 2")) == "default a=2"


def test_docs_sample_conditional_jump() -> None:
    """Docs sample "jump to a specific step": switch next, step-level next, next: end."""
    src = wf("""
    main:
      params: [field]
      steps:
        - where_to_jump:
            switch:
              - condition: ${field < 10}
                next: small
              - condition: ${field < 100}
                next: medium
            next: large
        - small:
            assign:
              - r: "small"
            next: end_step
        - medium:
            assign:
              - r: "medium"
            next: end_step
        - large:
            assign:
              - r: "large"
        - end_step:
            return: ${r}
    """)
    assert [result_of(src, n) for n in (5, 50, 500)] == ["small", "medium", "large"]
