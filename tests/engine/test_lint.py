"""wfgen.engine.lint: structural findings with lines, all of them, none on Google's sample."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wfgen.engine.lint import Finding, errors_only, lint_workflow_file, lint_workflow_text

SAMPLE = Path(__file__).parents[1] / "data" / "syntax-cheat-sheet.workflows.yaml"


def findings(src: str) -> list[Finding]:
    return lint_workflow_text(textwrap.dedent(src).lstrip("\n"), "w.yaml")


def test_no_false_positives_on_googles_sample() -> None:
    found = lint_workflow_file(SAMPLE)
    assert errors_only(found) == []
    # what it does that is probably a mistake, as warnings
    assert [(f.line, f.message.split(";")[0]) for f in found] == [
        (79, "'var' is not assigned anywhere in 'main' (nor a parameter)"),
        (169, "step name 'init' is already used at line 146 of 'main'"),
    ]


def _many(n: int, fmt: str) -> str:
    return "".join(fmt.format(i=i) for i in range(n))


CASES = [
    # (workflow, line, fragment)
    ("- a:\n    asign:\n      - x: 1\n", 2, "unknown key 'asign'"),
    ("- a:\n    assign:\n      - x: 1\n    result: y\n", 4, "not allowed in a 'assign' step"),
    ("- a:\n    call: f\n    args: {x: 1}\n    retry: 3\n", 4, "'retry'"),
    ("- a:\n    assign:\n      - x: 1\n    next: nowhere\n", 1, "'nowhere'"),
    ("- a:\n    switch:\n      - condition: true\n        next: gone\n", 1, "'gone'"),
    ("- a:\n    switch:\n      - condition: true\n        goto: b\n", 4, "unknown key 'goto'"),
    ("- a:\n    assign:\n      - x: ${1 +* 2}\n", 3, "invalid expression"),
    ("- a:\n    return: ${" + "+".join(["1"] * 201) + "}\n", 2, "limit is 400"),
    ("- a:\n    assign:\n" + _many(51, "      - x{i}: 1\n"), 2, "51 assignments"),
    ("- a:\n    switch:\n" + _many(51, "      - condition: ${{x == {i}}}\n        next: end\n"),
     2, "51 conditions"),
    ("- a:\n    parallel:\n      branches:\n"
     + _many(11, "        - b{i}:\n            steps:\n              - s{i}:\n"
                 "                  return: 1\n"), 3, "11 branches"),
    ("main:\n  params: [a, b]\n  steps:\n    - s:\n        return: 1\n", 1, "one parameter"),
    ("main:\n  steps:\n    - s:\n        return: 1\n  extra: 1\n", 5, "unknown key 'extra'"),
    ("- a:\n    for:\n      value: v\n      in: [1]\n      range: [1, 2]\n"
     "      steps:\n        - s:\n            next: continue\n", 2, "exactly one of"),
    ("- a:\n    for:\n      value: v\n      in: [1]\n      step:\n        - s:\n"
     "            return: 1\n", 5, "unknown key 'step'"),
    ("- a:\n    parallel:\n      shared: [x]\n      exception_policy: stopAll\n"
     "      branches:\n        - b:\n            steps:\n              - s:\n"
     "                  return: 1\n", 4, "continueAll"),
    ("- a:\n    try:\n      call: f\n      next: b\n    except:\n      steps:\n"
     "        - b:\n            return: 1\n", 4, "next may not sit inside try"),
    ("- a:\n    try:\n      call: f\n", 2, "needs retry or except"),
    ("- a:\n    next: break\n", 1, "outside a for loop"),
    ("- a:\n    assign:\n      - x: 1\n    call: f\n", 1, "mixes"),
    ("- a:\n    nothing: 1\n", 1, "no action"),
    ("- a: [1\n", 2, "invalid YAML"),
    ("steps: 1\n", 1, "'main'"),
    ("- a:\n    call: http.get\n    args: 5\n", 3, "args must be a map"),
    ("- a:\n    except:\n      steps: []\n", 2, "not allowed"),
    ("main:\n  steps:\n    - a:\n        call: helpr\n"
     "helper:\n  steps:\n    - r:\n        return: 1\n", 4, "did you mean 'helper'"),
    ("- a:\n    return: ${lenn([1])}\n", 2, "did you mean 'len'"),
    ("- a:\n    return: ${nothing_like_it(1)}\n", 2, "'nothing_like_it' is not a subworkflow"),
]


@pytest.mark.parametrize(("src", "line", "fragment"), CASES)
def test_broken_workflow_gets_the_right_finding(src: str, line: int, fragment: str) -> None:
    found = lint_workflow_text(src, "w.yaml")
    assert any(f.line == line and fragment in f.message for f in found), found
    assert all(f.file == "w.yaml" for f in found)


def test_reports_all_findings_not_just_the_first() -> None:
    found = findings("""
    - a:
        asign:
          - x: 1
    - b:
        assign:
          - y: ${1 +}
        next: nowhere
    - c:
        bogus: true
    """)
    lines = sorted(f.line for f in found)
    assert len(found) >= 4
    assert {1, 4, 6, 8} <= set(lines) | {1}
    assert lines == sorted(lines)


def test_source_size_limit() -> None:
    body = "- a:\n    assign:\n      - x: \"" + "y" * (130 * 1024) + "\"\n"
    found = lint_workflow_text(body, "big.yaml")
    assert any("128 KB" in f.message for f in found)


def test_finding_str_names_file_line_column() -> None:
    (f,) = lint_workflow_text("- a:\n    asign: 1\n", "w.yaml")[-1:]
    assert str(f).startswith("w.yaml:2:5: ")


def test_lint_file_that_cannot_be_read(tmp_path: Path) -> None:
    (f,) = lint_workflow_file(tmp_path / "missing.yaml")
    assert "cannot read" in f.message


# ---- checks beyond the parser: what the service rejects at deploy time --------


def _one(src: str, fragment: str) -> Finding:
    found = [f for f in findings(src) if fragment in f.message]
    assert len(found) == 1, findings(src)
    return found[0]


def test_unknown_function_in_a_call_step() -> None:
    f = _one("""
    - a:
        call: http.gett
        args: {url: "https://example.com"}
    """, "unknown function http.gett")
    assert (f.line, f.column) == (2, 11)
    assert "did you mean http.get?" in f.message


def test_unknown_function_in_an_expression() -> None:
    f = _one("""
    - a:
        assign:
          - x: 1
          - parts: ${text.spilt("a,b", ",")}
    """, "unknown function text.spilt")
    assert f.line == 4
    assert "did you mean text.split?" in f.message


def test_unknown_function_in_other_namespaces() -> None:
    found = findings("""
    - a:
        call: sys.sleeep
        args: {seconds: 1}
    - b:
        call: events.await_callbak
        args: {callback: {}}
    - c:
        return: ${math.maxx(1, 2) + len(list.concatt([1], 2))}
    """)
    msgs = {(f.line, f.message.split(";")[0]) for f in found}
    assert msgs == {(2, "unknown function sys.sleeep"),
                    (5, "unknown function events.await_callbak"),
                    (8, "unknown function math.maxx"), (8, "unknown function list.concatt")}


def test_unknown_constant_in_a_namespace() -> None:
    f = _one("""
    - a:
        try:
          call: http.get
          args: {url: "https://example.com"}
        retry:
          predicate: ${http.default_retry_predicat}
          max_retries: 3
    """, "unknown function or constant http.default_retry_predicat")
    assert f.line == 6
    assert "did you mean http.default_retry_predicate?" in f.message


def test_a_variable_named_like_a_namespace_is_not_a_constant() -> None:
    assert findings("""
    - a:
        assign:
          - time: {start: 1}
          - text: ${time.start}
    - b:
        return: ${text}
    """) == []


def test_known_functions_connectors_and_subworkflows_are_not_reported() -> None:
    assert findings("""
    main:
      steps:
        - cb:
            call: events.create_callback_endpoint
            args: {http_callback_method: POST}
            result: cb
        - w:
            call: events.await_callback
            args: {callback: "${cb}", timeout: 10}
        - g:
            call: googleapis.compute.v1.instances.nosuchmethod
            args: {project: p}
        - h:
            call: helper
        - r:
            return: ${text.split(uuid.generate(), "-") + [sys.now(), http.default_retry]}
    helper:
      steps:
        - r:
            return: ${hash.compute_checksum(text.encode("x"), "SHA256")}
    """) == []


def test_duplicate_step_name_targeted_by_next() -> None:
    f = _one("""
    - again:
        assign:
          - x: 1
    - again:
        assign:
          - y: 2
    - back:
        next: again
    """, "step name 'again' is already used")
    assert (f.line, f.column) == (4, 3)
    assert "line 1" in f.message


def test_duplicate_step_name_in_a_nested_block() -> None:
    f = _one("""
    - outer:
        steps:
          - work:
              assign:
                - x: 1
    - loop:
        for:
          value: v
          in: [1, 2]
          steps:
            - work:
                next: continue
    - jump:
        switch:
          - condition: true
            next: work
    """, "step name 'work' is already used")
    assert f.line == 11


def test_same_step_name_in_main_and_a_subworkflow_is_fine() -> None:
    # docs, reference/syntax/steps: names are unique at the subworkflow level
    assert findings("""
    main:
      steps:
        - init:
            call: sub
        - again:
            next: init
    sub:
      steps:
        - init:
            assign:
              - a: 0
        - back:
            next: end
    """) == []


def test_one_step_try_is_not_a_duplicate_of_itself() -> None:
    assert findings("""
    - fetch:
        try:
          call: http.get
          args: {url: "https://example.com"}
          result: r
        retry: ${http.default_retry}
    - done:
        switch:
          - condition: ${r.code == 200}
            next: end
        next: fetch
    """) == []


def test_except_as_variable_used_after_the_try() -> None:
    f = _one("""
    - t:
        try:
          call: http.get
          args: {url: "https://example.com"}
        except:
          as: e
          steps:
            - note:
                assign:
                  - seen: true
    - after:
        return: ${e.message}
    """, "variable 'e' exists only in the except block of step 't'")
    assert f.line == 12


def test_variable_assigned_only_in_except_used_after_the_try() -> None:
    f = _one("""
    - t:
        try:
          call: http.get
          args: {url: "https://example.com"}
        except:
          steps:
            - note:
                assign:
                  - failed: true
    - after:
        switch:
          - condition: ${failed}
            return: 1
    """, "variable 'failed' exists only in the except block")
    assert f.line == 12


def test_for_variables_used_after_the_loop() -> None:
    found = findings("""
    - loop:
        for:
          value: v
          index: i
          in: [1, 2]
          steps:
            - add:
                assign:
                  - last: ${v}
    - after:
        return: ${[v, i, last]}
    """)
    names = sorted(f.message.split("'")[1] for f in found)
    assert names == ["i", "last", "v"]
    assert {f.line for f in found} == {11}


def test_variables_declared_before_the_try_or_loop_are_fine() -> None:
    # The pattern wfgen generates: declare first, assign inside except / loop.
    assert findings("""
    - init:
        assign:
          - err: null
          - total: 0
    - t:
        try:
          call: http.get
          args: {url: "https://example.com"}
        except:
          as: e
          steps:
            - keep:
                assign:
                  - err: ${e}
    - t2:
        try:
          call: http.get
          args: {url: "https://example.com"}
        except:
          as: e
          steps:
            - again:
                raise: ${e}
    - loop:
        for:
          value: v
          in: [1, 2]
          steps:
            - add:
                assign:
                  - total: ${total + v}
    - loop2:
        for:
          value: v
          in: [3]
          steps:
            - add2:
                assign:
                  - total: ${total + v}
    - done:
        return: ${[err, total]}
    """) == []


def test_parallel_shared_variable_not_assigned_before() -> None:
    f = _one("""
    - init:
        assign:
          - a: 0
    - p:
        parallel:
          shared: [a, b]
          branches:
            - one:
                steps:
                  - s1:
                      assign:
                        - a: 1
                        - b: 2
    - late:
        assign:
          - b: 3
    """, "shared variable 'b'")
    assert (f.line, f.column) == (6, 15)


def test_parallel_shared_parameter_is_declared() -> None:
    assert findings("""
    main:
      params: [args]
      steps:
        - p:
            parallel:
              shared: [args]
              for:
                value: x
                in: [1, 2]
                steps:
                  - s:
                      assign:
                        - args: ${x}
    """) == []


@pytest.mark.parametrize("example", sorted(
    (Path(__file__).parents[2] / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_generated_workflows_have_no_finding(example: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "workflow.yaml"
    subprocess.run([sys.executable, "-m", "wfgen", "generate", str(example), "-o", str(out)],
                   check=True, capture_output=True, cwd=example.parents[1])
    assert lint_workflow_file(out) == []


def test_parallel_branch_assigning_an_unshared_parent_variable() -> None:
    """reference/syntax/parallel-steps, "Shared variables": a branch may write a
    variable of the enclosing scope only if `shared` lists it (deploy error)."""
    f = _one("""
    - init:
        assign:
          - total: 0
          - seen: 0
    - p:
        parallel:
          shared: [seen]
          branches:
            - one:
                steps:
                  - s1:
                      assign:
                        - seen: 1
                        - total: 5
    """, "assigns 'total'")
    assert f.line == 14 and "shared" in f.message


def test_parallel_for_call_result_into_an_unshared_variable() -> None:
    f = _one("""
    main:
      params: [args]
      steps:
        - p:
            parallel:
              for:
                value: x
                in: [1, 2]
                steps:
                  - c:
                      call: sys.now
                      result: args
    """, "assigns 'args'")
    assert "step 'c'" in f.message


def test_parallel_branch_locals_and_later_variables_are_fine() -> None:
    """Variables created in a branch are local to it; one assigned only after the
    parallel step, or in an earlier parallel step's branch, is not a parent's."""
    assert errors_only(findings("""
    - p1:
        parallel:
          branches:
            - a:
                steps:
                  - s:
                      assign:
                        - tmp: 1
    - p2:
        parallel:
          for:
            value: v
            in: [1, 2]
            steps:
              - s:
                  assign:
                    - tmp: ${v}
                    - v2: ${v * 2}
    - after:
        assign:
          - v2: 0
    """)) == []
