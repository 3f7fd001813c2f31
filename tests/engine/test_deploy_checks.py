"""Deploy-time checks (wfgen.engine.deploy_checks, scope_check): each rule's
refused form and its accepted neighbour, modelled on the example of the page
the rule comes from. A refusal happens when the definition loads (validate,
run --local and serve's deploy alike), never while it runs; warnings never
refuse."""

from __future__ import annotations

import textwrap

import pytest

from tests.engine.enginetest import result_of, run
from wfgen.engine import WorkflowSyntaxError, load_workflow
from wfgen.engine.lint import Finding, errors_only, lint_workflow_text


def wf(src: str) -> str:
    return textwrap.dedent(src).lstrip("\n")


def errors(src: str) -> list[Finding]:
    return errors_only(lint_workflow_text(wf(src), "w.yaml"))


def warnings(src: str) -> list[Finding]:
    return [f for f in lint_workflow_text(wf(src), "w.yaml") if f.severity == "warning"]


def refused(src: str, fragment: str) -> WorkflowSyntaxError:
    """The load refuses src naming fragment, and validate reports the same place."""
    with pytest.raises(WorkflowSyntaxError) as exc:
        load_workflow(wf(src), "w.yaml")
    assert fragment in str(exc.value), str(exc.value)
    found = [f for f in errors(src) if fragment in f.message]
    assert found and (found[0].line, found[0].column) == (exc.value.line, exc.value.column)
    return exc.value


# ---- reference/syntax/variables, "Variable scope"; reference/syntax/iteration -----

NESTED_LOOPS = """
- init:
    assign:
      - total: 0
- outer:
    for:
      value: row
      in: [[1, 2], [3]]
      steps:
        - start_row:
            assign:
              - row_sum: 0
        - inner:
            for:
              value: cell
              in: ${row}
              steps:
                - add:
                    assign:
                      - row_sum: ${row_sum + cell}
        - after_inner:
            assign:
              - total: ${total + row_sum}
- done:
    return: ${total}
"""


def test_a_variable_made_before_an_inner_loop_lives_on_after_it() -> None:
    """The twitter-sentiment-parallel pattern: created in the outer loop before
    the inner one, updated inside it, read after it (still in the outer loop)."""
    assert errors(NESTED_LOOPS) == []
    assert result_of(wf(NESTED_LOOPS)) == 6


def test_the_same_variable_read_after_the_outer_loop_is_refused() -> None:
    src = NESTED_LOOPS.replace("return: ${total}", "return: ${row_sum}")
    exc = refused(src, "variable 'row_sum' exists only in the for loop of step 'outer'")
    assert exc.line == 24


@pytest.mark.parametrize("name", ["row", "cell"])
def test_loop_values_do_not_exist_after_their_loop(name: str) -> None:
    refused(NESTED_LOOPS.replace("return: ${total}", f"return: ${{{name}}}"),
            f"variable '{name}' exists only in the for loop")


def test_nested_loops_may_not_share_a_variable_name() -> None:
    """reference/syntax/iteration: the same name serves several loops "as long as
    they are not nested"."""
    refused(NESTED_LOOPS.replace("value: cell", "value: row").replace("cell}", "row}"),
            "loop variable 'row' of step 'inner' is already the variable of an enclosing loop")
    siblings = """
    - a:
        for:
          value: v
          in: [1]
          steps:
            - x:
                assign:
                  - y: ${v}
    - b:
        for:
          value: v
          index: i
          in: [2]
          steps:
            - z:
                assign:
                  - w: ${v + i}
    """
    assert errors(siblings) == []


def test_an_except_blocks_variables_stay_in_it() -> None:
    src = """
    - init:
        assign:
          - err: null
    - t:
        try:
          assign:
            - x: ${1 / 0}
        except:
          as: e
          steps:
            - keep:
                assign:
                  - err: ${e.tags}
                  - note: seen
    - done:
        return: ${err}
    """
    assert errors(src) == []
    assert result_of(wf(src)) == ["ZeroDivisionError"]
    refused(src.replace("return: ${err}", "return: ${note}"),
            "variable 'note' exists only in the except block of step 't'")
    refused(src.replace("return: ${err}", "return: ${e}"),
            "variable 'e' exists only in the except block of step 't'")


def test_switch_and_nested_steps_make_no_scope() -> None:
    """reference/syntax/steps: variables of a steps block are the subworkflow's."""
    assert result_of(wf("""
    - s:
        switch:
          - condition: ${true}
            steps:
              - made:
                  assign:
                    - x: 1
    - n:
        steps:
          - also:
              assign:
                - y: 2
    - r:
        return: ${x + y}
    """)) == 3


# ---- reference/syntax/parallel-steps, "Shared variables" ---------------------------

PARALLEL = """
- init:
    assign:
      - user: {}
      - notify: ""
- fetch:
    parallel:
      shared: [user]
      branches:
        - get_name:
            steps:
              - name:
                  assign:
                    - mine: "Ada"
                    - user.name: ${mine}
        - get_mail:
            steps:
              - mail:
                  assign:
                    - mine: "ada@example.com"
                    - user.mail: ${mine}
- done:
    return: ${user}
"""


def test_branches_write_shared_variables_and_keep_their_own() -> None:
    assert errors(PARALLEL) == []
    assert result_of(wf(PARALLEL)) == {"name": "Ada", "mail": "ada@example.com"}


def test_a_branch_assigning_an_unshared_parent_variable_is_refused() -> None:
    src = PARALLEL.replace('- user.mail: ${mine}', '- notify: ${mine}')
    exc = refused(src, "assigns 'notify'")
    assert "shared" in str(exc) and exc.line == 20


def test_a_branch_reading_another_branchs_variable_is_refused() -> None:
    src = PARALLEL.replace('- mine: "ada@example.com"', '- other: ${mine}')
    refused(src, "variable 'mine' exists only in branch 'get_name' of parallel step 'fetch'")


def test_shared_names_must_exist_before_the_parallel_step() -> None:
    refused(PARALLEL.replace("shared: [user]", "shared: [user, later]"),
            "shared variable 'later' of parallel step 'fetch' is not assigned before")


def test_a_parallel_for_iteration_is_a_branch() -> None:
    src = """
    - init:
        assign:
          - total: 0
    - p:
        parallel:
          shared: [total]
          for:
            value: v
            in: [1, 2, 3]
            steps:
              - add:
                  assign:
                    - double: ${v * 2}
                    - total: ${total + double}
    - r:
        return: ${total}
    """
    assert result_of(wf(src)) == 12
    refused(src.replace("shared: [total]", "shared: []"), "assigns 'total'")
    refused(src.replace("return: ${total}", "return: ${double}"),
            "variable 'double' exists only in the parallel for loop of step 'p'")


# ---- reference/syntax/steps, "Step names" ------------------------------------------

def test_a_repeated_step_name_is_a_warning_and_an_error_when_jumped_to() -> None:
    src = """
    - init:
        assign:
          - a: 1
    - work:
        steps:
          - init:
              assign:
                - b: 2
    - r:
        return: ${a + b}
    """
    assert errors(src) == []
    (w,) = warnings(src)
    assert (w.line, w.column) == (6, 9) and "already used at line 1" in w.message
    refused(src.replace("        return: ${a + b}", "        next: init"),
            "next: init is ambiguous")


# ---- required arguments (reference/stdlib/text/substring) ---------------------------

def test_substring_needs_start_and_end_in_a_call_step() -> None:
    src = """
    - cut:
        call: text.substring
        args:
          source: "Workflows"
          start: 0
          end: 4
        result: s
    - r:
        return: ${s}
    """
    assert result_of(wf(src)) == "Work"
    exc = refused(src.replace("          end: 4\n", ""),
                  "text.substring needs the argument 'end'")
    assert (exc.line, exc.column) == (1, 3)


def test_substring_needs_start_and_end_in_an_expression() -> None:
    assert result_of(wf('- r:\n    return: ${text.substring("Workflows", 4, 9)}\n')) == "flows"
    exc = refused('- r:\n    return: ${text.substring("Workflows", 4)}\n',
                  "text.substring needs the argument 'end' (2 given, 3 required)")
    assert (exc.line, exc.column) == (2, 13)


def test_a_subworkflow_call_missing_a_parameter_is_a_warning() -> None:
    src = """
    main:
      steps:
        - named:
            call: add
            args: {a: 1}
            result: x
        - r:
            return: ${add(x)}
    add:
      params: [a, b]
      steps:
        - r:
            return: ${a + b}
    """
    assert errors(src) == []
    found = warnings(src)
    assert [f.line for f in found] == [3, 8]
    assert "no default for 'b'" in found[0].message
    assert "add needs the argument 'b' (1 given, 2 required)" in found[1].message
    assert "TypeError" in run(wf(src)).error.tags


def test_too_many_arguments_and_unknown_names_are_warnings() -> None:
    found = warnings("""
    - a:
        call: sys.now
        args:
          zone: utc
        result: t
    - r:
        return: ${len("ab", "c")}
    """)
    assert [f.line for f in found] == [1, 7]
    assert "no parameter 'zone'" in found[0].message
    assert "at most 1 arguments, 2 given" in found[1].message


# ---- blocking calls (reference/stdlib/overview, reference/syntax/expressions) -------

@pytest.mark.parametrize("call", ['http.get("https://example.com")', "sys.sleep(1)",
                                  'sys.log("x")', "events.create_callback_endpoint(\"POST\")"])
def test_blocking_functions_cannot_run_inside_an_expression(call: str) -> None:
    exc = refused(f"- a:\n    assign:\n      - r: ${{{call}}}\n", "cannot be called inside an "
                                                                 "expression")
    assert (exc.line, exc.column) == (3, 12)


def test_blocking_functions_run_from_a_call_step() -> None:
    res = run(wf("""
    - a:
        call: sys.sleep
        args:
          seconds: 1
    - b:
        call: sys.log
        args:
          text: slept
    """))
    assert res.state == "SUCCEEDED" and res.logs == [{"severity": "DEFAULT", "text": "slept"}]


# ---- positional args (reference/stdlib/sys/log, "argsList") -------------------------

def test_sys_log_with_a_positional_args_list() -> None:
    """`args: [${myVar}, "ERROR"]` written unquoted inside a flow list, as the
    page writes it (strict YAML would end the scalar at `{`)."""
    res = run(wf("""
    - assignStep:
        assign:
          - myVar: "Log my error message"
    - argsList:
        call: sys.log
        args: [${myVar}, "ERROR"]
    - textList:
        call: sys.log
        args: [${null}, "ERROR", ${myVar}]
    """))
    assert res.state == "SUCCEEDED", res.error
    assert res.logs == [{"severity": "ERROR", "data": "Log my error message"},
                        {"severity": "ERROR", "text": "Log my error message"}]


def test_positional_args_for_subworkflows_and_their_checks() -> None:
    src = """
    main:
      steps:
        - c:
            call: add
            args: [2, 3]
            result: s
        - cut:
            call: text.substring
            args: ["Workflows", 0, ${s - 1}]
            result: t
        - r:
            return: ${t}
    add:
      params: [a, b]
      steps:
        - r:
            return: ${a + b}
    """
    assert result_of(wf(src)) == "Work"
    refused(src.replace('["Workflows", 0, ${s - 1}]', '["Workflows", 0]'),
            "text.substring needs the argument 'end'")
    refused(src.replace("call: add\n", "call: googleapis.compute.v1.instances.get\n"),
            "takes named args (a map), not a list")


def test_many_flow_expressions_over_several_lines() -> None:
    src = "- init:\n    assign:\n      - v: 2\n" + "".join(
        f"- s{i}:\n    assign:\n      - r{i}: [${{v + {i}}}, {{k: ${{v * {i}}}}},\n"
        f"               ${{\"}}\" + string({i})}}]\n" for i in range(40))
    src += "- r:\n    return: ${[r0, r39]}\n"
    assert result_of(src) == [[2, {"k": 0}, "}0"], [41, {"k": 78}, "}39"]]


def test_flow_lists_keep_strict_yaml_elsewhere() -> None:
    """Only a `${...}` that starts a scalar is read as Google reads it; the rest
    of the YAML stays strict, with the line named."""
    with pytest.raises(WorkflowSyntaxError) as exc:
        load_workflow("- a:\n    return: [1, {x: }}]\n", "w.yaml")
    assert exc.value.line == 2
    assert result_of(wf("""
    - a:
        assign:
          - m: {k: ${1 + 1}, "q": "${'not' + ' read'}"}
          - l: ["text, ${x}", ${m.k * 2}]
    - r:
        return: ${[m.k, m.q, l]}
    """)) == [2, "not read", ["text, ${x}", 4]]


# ---- a switch condition carrying a step's body (workflows JSON Schema) ---------------

def test_a_condition_may_hold_call_and_args() -> None:
    res = run(wf("""
    - init:
        assign:
          - done: false
    - log_state:
        switch:
          - condition: ${done != true}
            call: sys.log
            args:
              text: in progress
          - condition: ${done == true}
            call: sys.log
            args:
              text: completed
            next: finish
    - after:
        return: not finished
    - finish:
        return: finished
    """))
    assert res.state == "SUCCEEDED" and res.result == "not finished"
    assert res.logs == [{"severity": "DEFAULT", "text": "in progress"}]


# ---- warnings: accepted by Google, probably mistakes --------------------------------

def test_next_beside_return_is_accepted_with_a_warning() -> None:
    src = """
    - noOp:
        return: "No files to import"
        next: end
    """
    assert errors(src) == []
    (w,) = warnings(src)
    assert "next: end beside return in step 'noOp' never runs" in w.message
    assert result_of(wf(src)) == "No files to import"


def test_a_variable_assigned_nowhere_is_a_warning_with_a_hint() -> None:
    found = warnings("- a:\n    switch:\n      - condition: ${x == y}\n        next: end\n")
    assert [f.message.split(";")[0] for f in found] == [
        "'x' is not assigned anywhere in 'main' (nor a parameter)",
        "'y' is not assigned anywhere in 'main' (nor a parameter)"]
    assert len(warnings("- a:\n    return: ${Null}\n")) == 1
    assert "did you mean null?" in warnings("- a:\n    return: ${Null}\n")[0].message
