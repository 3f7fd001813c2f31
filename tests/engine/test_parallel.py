"""Conformance: parallel branches and loops, shared variables, exception policies."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

from tests.engine.enginetest import error_of, result_of, run
from wfgen.engine import RealClock, Services, WorkflowSyntaxError, load_workflow


def wf(text: str) -> str:
    return textwrap.dedent(text)


def test_branches_shared_and_local_variables() -> None:
    """Docs sample: shared variables are writable; others stay local to the branch."""
    src = wf("""
    - assignStep:
        assign:
          - input: ["apples", "oranges"]
          - my_result: {}
    - parallelStep:
        parallel:
          shared: [my_result]
          branches:
            - getStock:
                steps:
                  - s1:
                      assign:
                        - local_result: ${"stock of " + input[0]}
                        - my_result["getStock"]: ${local_result}
                        - temp: 1
            - orderStock:
                steps:
                  - s2:
                      assign:
                        - local_result: ${"order of " + input[1]}
                        - my_result["orderStock"]: ${local_result}
    - r:
        return: ${my_result}
    """)
    assert result_of(src) == {"getStock": "stock of apples", "orderStock": "order of oranges"}
    # reading a branch's variable after the step is a deploy error
    for name in ("local_result", "temp"):
        with pytest.raises(WorkflowSyntaxError, match=f"variable '{name}' exists only in "
                                                      "branch"):
            load_workflow(src.replace("return: ${my_result}", f"return: ${{{name}}}"), "t.yaml")


def test_parallel_for_sums_into_shared_variable() -> None:
    src = wf("""
    - init:
        assign:
          - total: 0
    - p:
        parallel:
          shared: [total]
          for:
            value: v
            range: [1, 100]
            steps:
              - add:
                  assign:
                    - total: ${total + v}
    - r:
        return: ${total}
    """)
    assert result_of(src) == 5050
    with pytest.raises(WorkflowSyntaxError, match="variable 'v' exists only in the parallel "
                                                  "for loop of step 'p'"):
        load_workflow(src.replace("return: ${total}", "return: ${v}"), "t.yaml")


def test_branches_really_run_concurrently() -> None:
    src = wf("""
    - p:
        parallel:
          branches:
            - a:
                steps:
                  - s:
                      call: sys.sleep
                      args:
                        seconds: 0.3
            - b:
                steps:
                  - s:
                      call: sys.sleep
                      args:
                        seconds: 0.3
            - c:
                steps:
                  - s:
                      call: sys.sleep
                      args:
                        seconds: 0.3
    """)
    t = time.monotonic()
    res = run(src, services=Services(clock=RealClock()))
    elapsed = time.monotonic() - t
    assert res.state == "SUCCEEDED", res.error
    assert elapsed < 0.7, elapsed


def test_concurrency_limit_one_serializes() -> None:
    src = wf("""
    - init:
        assign:
          - order: []
    - p:
        parallel:
          shared: [order]
          concurrency_limit: 1
          for:
            value: v
            in: [1, 2, 3, 4]
            steps:
              - add:
                  assign:
                    - order: ${order + [v]}
    - r:
        return: ${order}
    """)
    assert result_of(src) == [1, 2, 3, 4]


PARALLEL_FAIL = wf("""
- init:
    assign:
      - done: []
- p:
    parallel:
      shared: [done]
      POLICY
      branches:
        - failing:
            steps:
              - boom:
                  raise: {"message": "branch failed", "tags": ["MyError"]}
        - slow:
            steps:
              - wait:
                  call: sys.sleep
                  args:
                    seconds: 0.2
              - spin:
                  for:
                    value: i
                    range: [1, 200]
                    steps:
                      - nothing:
                          assign:
                            - x: ${i}
              - mark:
                  assign:
                    - done: ${done + ["slow"]}
- r:
    return: ${done}
""")


UNHANDLED = ("UnhandledBranchError: One or more branches or iterations encountered an "
             "unhandled runtime error")


def test_unhandled_branch_error_does_not_cancel_the_others() -> None:
    """syntax/parallel-steps: continueAll is the default (and only) policy; an
    unhandled error in one branch leaves the others running to their end, then
    the step raises UnhandledBranchError, which a surrounding try catches."""
    src = wf("""
    - init:
        assign:
          - done: []
          - caught: null
    - t:
        try:
          steps:
            - p:
                parallel:
                  shared: [done]
                  branches:
                    - failing:
                        steps:
                          - boom:
                              raise: {"message": "branch failed", "tags": ["MyError"]}
                    - slow:
                        steps:
                          - wait:
                              call: sys.sleep
                              args:
                                seconds: 0.2
                          - mark:
                              assign:
                                - done: ${done + ["slow"]}
        except:
          as: e
          steps:
            - keep:
                assign:
                  - caught: ${e}
    - r:
        return: {done: "${done}", e: "${caught}"}
    """)
    res = run(src, services=Services(clock=RealClock()))
    assert res.state == "SUCCEEDED", res.error
    assert res.result["done"] == ["slow"]  # the sibling ran to its end
    e = res.result["e"]
    assert e["tags"] == ["UnhandledBranchError"] and e["message"] == UNHANDLED
    assert [b["id"] for b in e["branches"]] == ["failing"]


def test_continue_all_lets_others_finish_then_raises() -> None:
    """syntax/parallel-steps: `exception_policy: continueAll` written out is the same."""
    src = PARALLEL_FAIL.replace("POLICY", "exception_policy: continueAll")
    res = run(src, services=Services(clock=RealClock()))
    assert res.state == "FAILED" and res.error.value["tags"] == ["UnhandledBranchError"]
    assert res.error.step == "p"
    assert res.steps_internal > 200  # the slow branch ran to the end
    branch = res.error.value["branches"][0]
    assert branch["id"] == "failing"
    assert json.loads(branch["error"]["payload"]) == {"message": "branch failed",
                                                      "tags": ["MyError"]}


def test_parallel_errors_are_catchable() -> None:
    """Docs sample (syntax/parallel-steps, error handling): try/except around a
    parallel for; every failed iteration is listed in the UnhandledBranchError
    (error-types page), by iteration index, after all iterations ran."""
    src = wf("""
    - catchErrors:
        try:
          steps:
            - failOdd:
                parallel:
                  for:
                    value: num
                    range: [0, 5]
                    steps:
                      - checkEven:
                          switch:
                            - condition: ${num % 2 != 0}
                              raise: "how odd!"
        except:
          as: e
          steps:
            - returnError:
                return: ${e}
    """)
    e = result_of(src)
    assert e["tags"] == ["UnhandledBranchError"] and e["message"] == UNHANDLED
    assert [b["id"] for b in e["branches"]] == ["1", "3", "5"]
    assert all(json.loads(b["error"]["payload"]) == "how odd!" for b in e["branches"])
    assert all("how odd!" in b["error"]["context"] for b in e["branches"])


def test_unhandled_branch_error_payload_decodes_in_the_workflow() -> None:
    """error-types page: errors serialised as strings are restored with
    json.decode(text.encode(...)); the branch's own tags are reachable."""
    src = wf("""
    - t:
        try:
          parallel:
            branches:
              - ok:
                  steps:
                    - a:
                        assign:
                          - x: 1
              - bad:
                  steps:
                    - b:
                        assign:
                          - y: ${1 / 0}
        except:
          as: e
          steps:
            - r:
                return: ${json.decode(text.encode(e.branches[0].error.payload)).tags}
    """)
    assert result_of(src) == ["ZeroDivisionError"]


def test_nesting_depth_limit() -> None:
    inner = wf("""
    - p1:
        parallel:
          branches:
            - b1:
                steps:
                  - p2:
                      parallel:
                        branches:
                          - b2:
                              steps:
                                - p3:
                                    parallel:
                                      branches:
                                        - b3:
                                            steps:
                                              - s:
                                                  assign:
                                                    - x: 1
    """)
    err = error_of(inner)
    # raised at p3 inside b2, it reaches p1 wrapped in two UnhandledBranchErrors
    assert err.step == "p1" and err.tags == ["UnhandledBranchError"]
    inner_err = json.loads(err.value["branches"][0]["error"]["payload"])
    assert inner_err["tags"] == ["UnhandledBranchError"]
    assert "ParallelNestingError" in inner_err["branches"][0]["error"]["payload"]


def test_shared_assign_calling_a_parallel_subworkflow_does_not_deadlock() -> None:
    src = wf("""
    main:
      steps:
        - init:
            assign:
              - results: []
        - p:
            parallel:
              shared: [results]
              for:
                value: v
                in: [1, 2, 3]
                steps:
                  - add:
                      assign:
                        - results: ${list.concat(results, inner(v))}
        - r:
            return: ${len(results)}
    inner:
      params: [n]
      steps:
        - init:
            assign:
              - acc: 0
        - q:
            parallel:
              shared: [acc]
              for:
                value: k
                range: [1, 3]
                steps:
                  - s:
                      assign:
                        - acc: ${acc + k * n}
        - r:
            return: ${acc}
    """)
    assert result_of(src) == 3


def test_cancel_stops_sleeping_and_looping_threads() -> None:
    import threading

    from wfgen.engine import load_workflow, prepare

    src = wf("""
    - p:
        parallel:
          branches:
            - sleeper:
                steps:
                  - s:
                      call: sys.sleep
                      args:
                        seconds: 30
            - spinner:
                steps:
                  - spin:
                      for:
                        value: i
                        range: [1, 1000]
                        steps:
                          - nap:
                              call: sys.sleep
                              args:
                                seconds: 0.01
    """)
    exe = prepare(load_workflow(src, "c.yaml"), services=Services(clock=RealClock()))
    out: list = []
    t = threading.Thread(target=lambda: out.append(exe.run(None)))
    start = time.monotonic()
    t.start()
    time.sleep(0.1)
    exe.cancel()
    t.join(5)
    assert not t.is_alive()
    assert time.monotonic() - start < 2
    assert out[0].state == "CANCELLED"


def test_step_limit_counts_the_whole_execution_across_threads() -> None:
    """Quotas page: 100,000 steps per *execution*. Ten iterations of 15,000
    steps each fit one thread's count but not the execution's."""
    src = wf("""
    - p:
        parallel:
          for:
            value: i
            range: [1, 10]
            steps:
              - spin:
                  for:
                    value: j
                    range: [1, 15000]
                    steps:
                      - s:
                          assign:
                            - x: ${j}
    """)
    res = run(src)
    assert res.state == "FAILED"
    assert res.error.value["tags"] == ["UnhandledBranchError"]
    payloads = [json.loads(b["error"]["payload"]) for b in res.error.value["branches"]]
    assert payloads and all(p["tags"] == ["ResourceLimitError"] for p in payloads)
    assert 99_900 <= res.steps_internal <= 100_000 + 20  # one over-step per thread at most


def test_steps_left_by_branches_return_to_the_main_thread() -> None:
    """The quota is shared, not lost: after a parallel step the main flow can
    use every step the branches did not."""
    src = wf("""
    - p:
        parallel:
          branches:
            - a:
                steps:
                  - s:
                      assign:
                        - x: 1
            - b:
                steps:
                  - s:
                      assign:
                        - x: 2
    - spin:
        for:
          value: j
          range: [1, 99900]
          steps:
            - s:
                assign:
                  - x: ${j}
    - r:
        return: ok
    """)
    res = run(src)
    assert res.state == "SUCCEEDED", res.error
    assert res.steps_internal > 98_000
