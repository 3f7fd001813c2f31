"""The Workflow Executions connector on the local backend: `run` waits and
returns the child's result, a failed child raises OperationError holding the
child's error, `create` returns at once, a missing workflow is HttpError 404,
an argument past 32 KB is refused, cancelling the parent leaves the child
running (as on Google), `get` with view BASIC answers the basic fields, and an
execution may cancel itself."""

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


def test_cancelling_the_parent_leaves_the_child_running_as_on_google(
        backend: LocalBackend) -> None:
    backend.deploy(ROOT + "parent", _parent("${r}"))
    parent = backend.start(ROOT + "parent", {"workflow": "child", "argument": {"n": 0}})
    for _ in range(100):
        children = backend.list(ROOT + "child")
        if children:
            break
        time.sleep(0.05)
    assert backend.cancel(parent.name).state == CANCELLED
    time.sleep(0.5)
    assert backend.get(children[0].name).state == "ACTIVE"
    assert backend.cancel(children[0].name).state == CANCELLED


GET = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.get"
CANCEL = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.cancel"


def test_get_with_view_basic_answers_the_basic_fields_only(backend: LocalBackend) -> None:
    backend.deploy(ROOT + "parent", f"""
main:
  params: [args]
  steps:
    - go:
        call: {GET}
        args:
          name: ${{args.name}}
          view: ${{args.view}}
        result: r
    - done:
        return: ${{r}}
""")
    child = backend.wait(backend.start(ROOT + "child", {"n": 4}).name, 30)
    assert child.state == SUCCEEDED
    full = backend.wait(backend.start(ROOT + "parent", {"name": child.name, "view": "FULL"})
                        .name, 30)
    assert full.result["result"] == "8" and full.result["argument"] == '{"n": 4}'
    basic = backend.wait(backend.start(ROOT + "parent", {"name": child.name, "view": "BASIC"})
                         .name, 30)
    assert basic.result["state"] == SUCCEEDED and basic.result["name"] == child.name
    assert set(basic.result) <= {"name", "startTime", "endTime", "duration", "state",
                                 "workflowRevisionId"}
    bad = backend.wait(backend.start(ROOT + "parent", {"name": child.name, "view": "ALL"})
                       .name, 30)
    assert bad.state == FAILED and json.loads(bad.error.payload)["code"] == 400


OWN_NAME = " + ".join(['"projects/"', 'sys.get_env("GOOGLE_CLOUD_PROJECT_ID")', '"/locations/"',
                       'sys.get_env("GOOGLE_CLOUD_LOCATION")', '"/workflows/"',
                       'sys.get_env("GOOGLE_CLOUD_WORKFLOW_ID")', '"/executions/"',
                       'sys.get_env("GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID")'])


def test_an_execution_cancelling_itself_ends_cancelled_at_once(backend: LocalBackend) -> None:
    backend.deploy(ROOT + "quitter", f"""
main:
  steps:
    - me:
        assign:
          - name: '${{{OWN_NAME}}}'
    - quit:
        call: {CANCEL}
        args:
          name: ${{name}}
    - wait:
        call: sys.sleep
        args: {{seconds: 120}}
    - not_reached:
        return: "still running"
""")
    started = time.monotonic()
    done = backend.wait(backend.start(ROOT + "quitter").name, 30)
    assert done.state == CANCELLED and time.monotonic() - started < 10


def test_polling_is_billed_as_the_default_policy_polls() -> None:
    assert polls_for(0) == 1
    assert polls_for(1) == 2
    assert polls_for(3600) > polls_for(60) > polls_for(5)
