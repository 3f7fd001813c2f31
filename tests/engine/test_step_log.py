"""The engine's step log: every call step, with the wall time it started, the
latest STEP_LOG kept (serve's dashboard shows them)."""

from __future__ import annotations

import time

from wfgen.engine import Services, VirtualClock, load_workflow, prepare
from wfgen.engine.runtime import STEP_LOG

FLOW = """main:
  steps:
    - first:
        call: sys.sleep
        args:
          seconds: 5
    - helper:
        call: sub
    - last:
        call: sys.log
        args:
          text: done
sub:
  steps:
    - inner:
        call: sys.sleep
        args:
          seconds: 2
"""
LOOP = """main:
  steps:
    - many:
        for:
          value: i
          range: [1, %d]
          steps:
            - tick:
                call: sys.log
                args:
                  text: ${i}
"""


def test_call_steps_are_logged_in_order_with_their_times():
    before = time.time()
    execution = prepare(load_workflow(FLOW, "flow.yaml"),
                        services=Services(clock=VirtualClock()))
    assert execution.run(None).state == "SUCCEEDED"
    log = list(execution.step_log)
    assert [(routine, step) for _t, routine, step in log] == [
        ("main", "first"), ("main", "helper"), ("sub", "inner"), ("main", "last")]
    times = [t for t, _routine, _step in log]
    assert before <= times[0] and times == sorted(times) and times[-1] <= time.time()
    assert execution.calls == 4 and execution.position == ("main", "last")


def test_only_the_latest_call_steps_are_kept():
    count = STEP_LOG + 50
    execution = prepare(load_workflow(LOOP % count, "loop.yaml"),
                        services=Services(clock=VirtualClock()))
    assert execution.run(None).state == "SUCCEEDED"
    assert execution.calls == count and len(execution.step_log) == STEP_LOG
    assert execution.step_log[0][1:] == ("main", "tick")
