"""Conformance: parallel branches and loops, shared variables, exception policies."""

from __future__ import annotations

import textwrap
import time

from tests.engine.enginetest import error_of, result_of, run
from wfgen.engine import RealClock, Services


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
    for name in ("local_result", "temp"):
        err = error_of(src.replace("return: ${my_result}", f"return: ${{{name}}}"))
        assert "KeyError" in err.tags


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
    err = error_of(src.replace("return: ${total}", "return: ${v}"))
    assert "KeyError" in err.tags


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


def test_unhandled_branch_error_cancels_the_others() -> None:
    src = PARALLEL_FAIL.replace("      POLICY\n", "").replace("seconds: 0.2", "seconds: 30")
    start = time.monotonic()
    res = run(src, services=Services(clock=RealClock()))
    assert time.monotonic() - start < 3  # the sibling's 30 s sleep was cut short
    assert res.state == "FAILED"
    assert res.error.value["tags"] == ["MyError"] and res.error.step == "boom"
    # the slow branch was stopped before its 200-iteration loop finished
    assert res.steps_internal < 150


def test_continue_all_lets_others_finish_then_raises() -> None:
    src = PARALLEL_FAIL.replace("POLICY", "exception_policy: continueAll")
    res = run(src, services=Services(clock=RealClock()))
    assert res.state == "FAILED" and res.error.value["tags"] == ["MyError"]
    assert res.steps_internal > 200  # the slow branch ran to the end


def test_parallel_errors_are_catchable() -> None:
    """Docs sample: try/except around a parallel step."""
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
    assert result_of(src) == "how odd!"


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
    assert err.step == "p3" and "ParallelNestingError" in err.tags


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
