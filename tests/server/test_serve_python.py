"""Google's Python clients against `wfgen serve`, unchanged: WorkflowsClient
over REST (long-running operations polled at .../operations/*), and
ExecutionsClient over an insecure gRPC channel (it has no REST transport).
Also the error bodies of both APIs: 404, 409 and 400, over REST and gRPC."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud.workflows import executions_v1
from google.cloud.workflows.executions_v1.services.executions.transports import (
    ExecutionsGrpcTransport,
)
from google.cloud.workflows_v1 import WorkflowsClient
from google.cloud.workflows_v1.types import Workflow

from tests.server.serve_process import PARENT, Serve

pytestmark = pytest.mark.xdist_group("serve_python")

GREET = """main:
  params: [args]
  steps:
    - build:
        assign:
          - greeting: ${"hello " + args.who}
    - done:
        return: ${greeting}
"""
FAIL = """main:
  steps:
    - boom:
        raise:
          message: boom
          code: 42
"""
SLOW = """- nap:
    call: sys.sleep
    args:
      seconds: 600
"""


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("serve-python"), data_dir=":memory:").start()
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def workflows(serve):
    return WorkflowsClient(transport="rest", credentials=AnonymousCredentials(),
                           client_options={"api_endpoint": serve.url})


@pytest.fixture(scope="module")
def executions(serve):
    channel = grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}")
    yield executions_v1.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel))
    channel.close()


def deploy(workflows: WorkflowsClient, workflow_id: str, source: str) -> Workflow:
    op = workflows.create_workflow(parent=PARENT, workflow_id=workflow_id,
                                   workflow=Workflow(source_contents=source,
                                                     labels={"team": "ml"},
                                                     call_log_level=2))
    return op.result(timeout=60)


def wait(executions, name: str) -> executions_v1.Execution:
    deadline = time.monotonic() + 60
    while True:
        execution = executions.get_execution(name=name)
        if execution.state != executions_v1.Execution.State.ACTIVE or \
                time.monotonic() > deadline:
            return execution
        time.sleep(0.05)


def test_workflows_client_rest_lifecycle(workflows):
    created = deploy(workflows, "pyflow", GREET)
    assert created.name == f"{PARENT}/workflows/pyflow"
    assert created.state == Workflow.State.ACTIVE
    assert created.call_log_level == Workflow.CallLogLevel.LOG_ERRORS_ONLY
    first_revision = created.revision_id
    got = workflows.get_workflow(name=created.name)
    assert got.source_contents == GREET and got.labels == {"team": "ml"}
    # update sends the whole Workflow, output-only fields too; only the mask applies
    got.source_contents = GREET.replace("hello", "hi")
    got.description = "not in the mask"
    updated = workflows.update_workflow(workflow=got,
                                        update_mask={"paths": ["source_contents"]}).result()
    assert updated.revision_id != first_revision and updated.revision_id.startswith("000002-")
    assert updated.description == ""
    old = workflows.get_workflow(request={"name": created.name, "revision_id": first_revision})
    assert old.source_contents == GREET
    for n in range(3):
        deploy(workflows, f"pyflow-page-{n}", GREET)
    names = [w.name for w in workflows.list_workflows(
        request={"parent": PARENT, "page_size": 2})]
    assert f"{PARENT}/workflows/pyflow" in names and len(names) == len(set(names)) >= 4
    workflows.delete_workflow(name=f"{PARENT}/workflows/pyflow-page-0").result()
    with pytest.raises(exceptions.NotFound):
        workflows.get_workflow(name=f"{PARENT}/workflows/pyflow-page-0")


def test_workflows_client_errors(workflows):
    deploy(workflows, "dup", GREET)
    with pytest.raises(exceptions.Conflict):  # 409: REST maps by HTTP status
        deploy(workflows, "dup", GREET)
    with pytest.raises(exceptions.InvalidArgument) as refused:  # through the LRO, code 3
        deploy(workflows, "refused", "main:\n  steps:\n    - a:\n        bogus: 1\n")
    assert "line 4" in str(refused.value)
    with pytest.raises(exceptions.NotFound):
        workflows.delete_workflow(name=f"{PARENT}/workflows/never").result()


def test_executions_client_grpc(workflows, executions):
    workflow = deploy(workflows, "grpcflow", GREET).name
    execution = executions.create_execution(
        parent=workflow, execution=executions_v1.Execution(argument=json.dumps({"who": "ü"})))
    assert execution.name.startswith(f"{workflow}/executions/")
    done = wait(executions, execution.name)
    assert done.state == executions_v1.Execution.State.SUCCEEDED
    assert json.loads(done.result) == "hello ü"
    assert done.labels == {"team": "ml"}  # inherited from the workflow
    assert done.duration.total_seconds() >= 0

    failing = deploy(workflows, "grpcfail", FAIL).name
    failed = wait(executions, executions.create_execution(
        parent=failing, execution=executions_v1.Execution()).name)
    assert failed.state == executions_v1.Execution.State.FAILED
    assert json.loads(failed.error.payload) == {"message": "boom", "code": 42}
    assert 'in step "boom"' in failed.error.context and "line: 3" in failed.error.context
    assert failed.error.stack_trace.elements[0].position.line == 3

    slow = deploy(workflows, "grpcslow", SLOW).name
    running = executions.create_execution(parent=slow, execution=executions_v1.Execution())
    cancelled = executions.cancel_execution(name=running.name)
    assert cancelled.state == executions_v1.Execution.State.CANCELLED

    listed = list(executions.list_executions(parent=workflow))
    assert [e.name for e in listed] == [execution.name]
    basic = listed[0]
    assert basic.state == executions_v1.Execution.State.SUCCEEDED and basic.result == ""
    for n in range(3):
        executions.create_execution(parent=workflow, execution=executions_v1.Execution(
            argument=json.dumps({"who": str(n)})))
    paged = list(executions.list_executions(request={"parent": workflow, "page_size": 2}))
    assert len(paged) == 4 and paged[-1].name == execution.name  # newest first


def test_grpc_errors(executions):
    with pytest.raises(exceptions.NotFound):
        executions.get_execution(name=f"{PARENT}/workflows/none/executions/none")
    with pytest.raises(exceptions.NotFound):
        executions.create_execution(parent=f"{PARENT}/workflows/none",
                                    execution=executions_v1.Execution())


def test_rest_error_bodies(serve, workflows):
    status, body = serve.call("GET", f"/v1/{PARENT}/workflows/nope")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
    assert body["error"]["details"][0]["resourceName"] == f"{PARENT}/workflows/nope"
    deploy(workflows, "rest-errors", GREET)
    status, body = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId=rest-errors",
                              {"sourceContents": GREET})
    assert status == 409 and body["error"]["status"] == "ALREADY_EXISTS"
    status, body = serve.call("POST", f"/v1/{PARENT}/workflows/rest-errors/executions",
                              {"argument": "not json"})
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    status, body = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId=x", {"bogus": 1})
    assert status == 400 and "bogus" in body["error"]["message"]
    status, body = serve.call("GET", f"/v1/{PARENT}/workflows/rest-errors/executions/none")
    assert status == 404 and body["error"]["code"] == 404


def test_callback_endpoints_need_a_vm_token(serve, workflows):
    source = """main:
  steps:
    - make:
        call: events.create_callback_endpoint
        args:
          http_callback_method: POST
        result: cb
    - wait:
        call: events.await_callback
        args:
          callback: ${cb}
          timeout: 600
"""
    workflow = deploy(workflows, "callbacks", source).name
    status, created = serve.call("POST", f"/v1/{workflow}/executions", {})
    assert status == 200
    deadline = time.monotonic() + 30
    while True:
        status, listed = serve.call("GET", f"/v1/{created['name']}/callbacks")
        if listed.get("callbacks") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    callback = listed["callbacks"][0]
    assert callback["name"].startswith(created["name"] + "/callbacks/")
    assert callback["method"] == "POST"
    status, _ = serve.call("POST", f"/v1/{callback['name']}", {"status": "x"})
    assert status == 401  # no token from a local VM's metadata server
    status, cancelled = serve.call("POST", f"/v1/{created['name']}:cancel", {})
    assert cancelled["state"] == "CANCELLED"


def test_workflows_client_grpc(serve, executions):
    from google.cloud.workflows_v1.services.workflows.transports import WorkflowsGrpcTransport

    channel = grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}")
    try:
        client = WorkflowsClient(transport=WorkflowsGrpcTransport(channel=channel))
        created = client.create_workflow(parent=PARENT, workflow_id="over-grpc",
                                         workflow=Workflow(source_contents=GREET)).result(60)
        assert created.name == f"{PARENT}/workflows/over-grpc"
        assert created.revision_id.startswith("000001-")
        assert client.get_workflow(name=created.name).source_contents == GREET
        with pytest.raises(exceptions.AlreadyExists):
            client.create_workflow(parent=PARENT, workflow_id="over-grpc",
                                   workflow=Workflow(source_contents=GREET))
        with pytest.raises(exceptions.InvalidArgument):
            client.create_workflow(parent=PARENT, workflow_id="bad-grpc", workflow=Workflow(
                source_contents="- a:\n    next: nowhere\n")).result(60)
        done = wait(executions, executions.create_execution(
            parent=created.name, execution=executions_v1.Execution(
                argument='{"who": "grpc"}')).name)
        assert done.result == '"hello grpc"'
        with pytest.raises(exceptions.FailedPrecondition):  # it is not active any more
            executions.cancel_execution(name=done.name)
        client.delete_workflow(name=created.name).result(60)
        with pytest.raises(exceptions.NotFound):
            client.get_workflow(name=created.name)
    finally:
        channel.close()


def test_the_printed_exports_alone_point_wfgen_at_serve(serve):
    """Pasting the lines serve prints is enough for wfgen's cloud commands, even
    when the gRPC port is not the REST port + 1 (here both ports are chosen freely)."""
    import os
    import subprocess
    import sys

    exports = dict(line[len("export "):].split("=", 1) for line in serve.lines
                   if line.startswith("export "))
    assert exports["WORKFLOWS_EMULATOR_GRPC_HOST"] == f"127.0.0.1:{serve.grpc_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOWS_EMULATOR")}
    done = subprocess.run([sys.executable, "-m", "wfgen", "list", "nothing-here",
                           "--project", "p", "--location", "us-central1"],
                          env={**env, **exports}, capture_output=True, text=True, timeout=120)
    # serve answered over gRPC (not "cannot reach wfgen serve"): no such workflow
    assert done.returncode == 2 and "was not found" in done.stderr, done.stderr
    assert "cannot reach" not in done.stderr
