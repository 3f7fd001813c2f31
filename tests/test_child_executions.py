"""The Workflow Executions connector on the local backend: `run` waits and
returns the child's result, a failed child raises OperationError holding the
child's error, `create` returns at once, a missing workflow is HttpError 404,
an argument past 32 KB is refused, and cancelling the parent cancels the child."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from wfgen.backends.base import CANCELLED, FAILED, SUCCEEDED
from wfgen.backends.child_executions import polls_for
from wfgen.backends.local import LocalBackend

ROOT = "projects/p/locations/us-central1/workflows/"
RUN = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run"
CREATE = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.create"
CHILD = """
main:
  params: [args]
  steps:
    - check:
        switch:
          - condition: ${args.n < 0}
            raise: {message: "negative", code: 7}
          - condition: ${args.n == 0}
            next: sleep
    - done:
        return: ${args.n * 2}
    - sleep:
        call: sys.sleep
        args: {seconds: 60}
"""


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    b = LocalBackend(project="p", use_container_engine=False, on_host=True)
    b.deploy(ROOT + "child", CHILD)
    try:
        yield b
    finally:
        b.shutdown()


def _parent(call: str) -> str:
    return f"""
main:
  params: [args]
  steps:
    - go:
        try:
          call: {RUN}
          args:
            workflow_id: ${{args.workflow}}
            argument: ${{args.argument}}
          result: r
        except:
          as: e
          steps:
            - fail:
                return: {{error: '${{e}}'}}
    - done:
        return: {call}
"""


def _run(backend: LocalBackend, argument: object) -> object:
    backend.deploy(ROOT + "parent", _parent("${r}"))
    done = backend.wait(backend.start(ROOT + "parent", argument).name, 30)
    assert done.state == SUCCEEDED, done.error
    return done.result


def test_run_waits_and_returns_the_childs_result(backend: LocalBackend) -> None:
    assert _run(backend, {"workflow": "child", "argument": {"n": 21}}) == 42
    children = backend.list(ROOT + "child")
    assert len(children) == 1 and children[0].state == SUCCEEDED
    assert children[0].argument == {"n": 21}


def test_a_failed_child_raises_operation_error_with_its_error(backend: LocalBackend) -> None:
    out = _run(backend, {"workflow": "child", "argument": {"n": -1}})
    error = out["error"]
    assert error["tags"] == ["OperationError"]
    assert error["message"] == "Execution failed or cancelled."
    assert error["operation"]["state"] == FAILED
    assert json.loads(error["operation"]["error"]["payload"]) == {"message": "negative",
                                                                  "code": 7}


def test_a_missing_workflow_is_http_404(backend: LocalBackend) -> None:
    error = _run(backend, {"workflow": "nope", "argument": {"n": 1}})["error"]
    assert error["tags"] == ["HttpError"] and error["code"] == 404


def test_an_argument_past_32_kb_is_refused(backend: LocalBackend) -> None:
    error = _run(backend, {"workflow": "child", "argument": {"n": 1, "pad": "x" * 33000}})
    assert error["error"]["code"] == 400 and "32 KB" in error["error"]["message"]
    assert backend.list(ROOT + "child") == []


def test_create_returns_at_once_with_the_execution(backend: LocalBackend) -> None:
    backend.deploy(ROOT + "parent", f"""
- go:
    call: {CREATE}
    args:
      parent: {ROOT}child
      body:
        argument: '{{"n": 0}}'
    result: r
- done:
    return: ${{r}}
""")
    started = time.monotonic()
    done = backend.wait(backend.start(ROOT + "parent").name, 30)
    assert done.state == SUCCEEDED and time.monotonic() - started < 10
    child = done.result
    assert child["state"] == "ACTIVE" and child["name"].startswith(ROOT + "child/executions/")
    assert backend.get(child["name"]).state == "ACTIVE"
    backend.cancel(child["name"])


def test_cancelling_the_parent_cancels_the_child(backend: LocalBackend) -> None:
    backend.deploy(ROOT + "parent", _parent("${r}"))
    parent = backend.start(ROOT + "parent", {"workflow": "child", "argument": {"n": 0}})
    for _ in range(100):
        children = backend.list(ROOT + "child")
        if children:
            break
        time.sleep(0.05)
    assert backend.cancel(parent.name).state == CANCELLED
    assert backend.wait(children[0].name, 10).state == CANCELLED


def test_polling_is_billed_as_the_default_policy_polls() -> None:
    assert polls_for(0) == 1
    assert polls_for(1) == 2
    assert polls_for(3600) > polls_for(60) > polls_for(5)
