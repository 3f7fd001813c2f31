"""serve under a crowd, through Google's Python clients: executions started
from many threads at once each end with their own result, create answers
ACTIVE even when the execution is over before it answers (it gives each new
execution a head start), and the HTTP answers are well-formed with keep-alive
(headers and body go out in one write)."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import grpc
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud.workflows import executions_v1
from google.cloud.workflows.executions_v1.services.executions.transports import (
    ExecutionsGrpcTransport,
)
from google.cloud.workflows_v1 import WorkflowsClient
from google.cloud.workflows_v1.types import Workflow

from tests.server.serve_process import PARENT, Serve

pytestmark = pytest.mark.xdist_group("serve_many")

ECHO = """main:
  params: [args]
  steps:
    - done:
        return: ${args.n * 2}
"""


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("serve-many"), data_dir=":memory:").start()
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def executions(serve):
    workflows = WorkflowsClient(transport="rest", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": serve.url})
    workflows.create_workflow(parent=PARENT, workflow_id="echo",
                              workflow=Workflow(source_contents=ECHO)).result(timeout=60)
    channel = grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}")
    yield executions_v1.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel))
    channel.close()


def test_create_answers_active_and_the_execution_then_succeeds(executions) -> None:
    created = executions.create_execution(
        parent=f"{PARENT}/workflows/echo",
        execution=executions_v1.Execution(argument=json.dumps({"n": 1})))
    assert created.state == executions_v1.Execution.State.ACTIVE
    assert created.start_time and not created.end_time
    done = executions.get_execution(name=created.name)
    for _ in range(600):
        if done.state != executions_v1.Execution.State.ACTIVE:
            break
        done = executions.get_execution(name=created.name)
    assert done.state == executions_v1.Execution.State.SUCCEEDED
    assert json.loads(done.result) == 2


def test_executions_started_from_many_threads_each_end_with_their_own_result(
        serve, executions) -> None:
    def one(n: int) -> tuple[int, str]:
        created = executions.create_execution(
            parent=f"{PARENT}/workflows/echo",
            execution=executions_v1.Execution(argument=json.dumps({"n": n})))
        return n, created.name

    with ThreadPoolExecutor(20) as pool:
        started = list(pool.map(one, range(200)))
    assert len({name for _, name in started}) == 200
    for n, name in started:
        execution = serve.wait_execution(name)
        assert execution["state"] == "SUCCEEDED", execution
        assert json.loads(execution["result"]) == 2 * n


def test_answers_on_one_keep_alive_connection_are_whole(serve, executions) -> None:
    del executions  # deploys "echo": this test must not lean on the order tests run in
    path = f"/v1/{PARENT}/workflows/echo".encode()
    host = f"127.0.0.1:{serve.port}".encode()
    request = b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    bodies = []
    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as conn:
        reader = conn.makefile("rb")
        for _ in range(3):
            conn.sendall(request)
            status = reader.readline()
            headers = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            bodies.append(json.loads(reader.read(int(headers["content-length"]))))
            assert status.startswith(b"HTTP/1.1 200")
            assert parsedate_to_datetime(headers["date"]).tzinfo is not None
    assert [b["name"] for b in bodies] == [f"{PARENT}/workflows/echo"] * 3
