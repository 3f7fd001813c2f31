"""The local backend behind the one interface: deploy (a new revision only
when the source changed), executions on threads, logs of the job's own output
(kept after its VM is deleted), VMs found by their wfgen labels, cancel, and
nothing left running after shutdown()."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from wfgen.backends.base import CANCELLED, FAILED, SUCCEEDED
from wfgen.backends.local import LocalBackend, split_execution_name
from wfgen.errors import UsageError
from wfgen.job.render import render_workflow
from wfgen.job.spec import load_spec_text

WORKFLOW = "projects/p/locations/us-central1/workflows/w"


def _job(script: str, **extra: object) -> str:
    spec = {"name": "w", "container": {"image": "alpine", "script": script},
            "heartbeat": "2s", "timeout": "5m", "retries": 0, **extra}
    return render_workflow(load_spec_text(json.dumps(spec), "job.yaml"))


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    b = LocalBackend(project="p", use_container_engine=False, on_host=True)
    try:
        yield b
    finally:
        b.shutdown()
    assert b.compute.records == {}


def test_deploy_makes_a_revision_only_when_the_source_changes(backend: LocalBackend) -> None:
    first = backend.deploy(WORKFLOW, "- r:\n    return: 1\n")
    again = backend.deploy(WORKFLOW, "- r:\n    return: 1\n")
    changed = backend.deploy(WORKFLOW, "- r:\n    return: 2\n")
    assert first.changed and not again.changed and changed.changed
    assert again.revision_id == first.revision_id != changed.revision_id
    assert first.revision_id.startswith("000001-") and changed.revision_id.startswith("000002-")


def test_a_bad_source_is_refused_with_its_line(backend: LocalBackend) -> None:
    with pytest.raises(UsageError, match=r":3:"):
        backend.deploy(WORKFLOW, "- a:\n    assign:\n      - x: ${1 +}\n")


def test_start_runs_the_current_revision_with_the_builtin_env(backend: LocalBackend) -> None:
    backend.deploy(WORKFLOW, "- r:\n    return: ${sys.get_env(\"GOOGLE_CLOUD_WORKFLOW_ID\")}\n")
    started = backend.start(WORKFLOW)
    done = backend.wait(started.name, 30)
    assert done.state == SUCCEEDED and done.result == "w"
    assert done.workflow == WORKFLOW and split_execution_name(done.name)[3] == done.id
    assert [e.name for e in backend.list(WORKFLOW)] == [done.name]


def test_a_failure_carries_the_raised_value_as_json(backend: LocalBackend) -> None:
    backend.deploy(WORKFLOW, "- boom:\n    raise: {code: 7}\n")
    done = backend.wait(backend.start(WORKFLOW).name, 30)
    assert done.state == FAILED and done.error is not None
    assert json.loads(done.error.payload) == {"code": 7} and done.error.step == "boom"


def test_a_job_logs_and_vms(backend: LocalBackend) -> None:
    notes: list[str] = []
    backend.notify = notes.append
    backend.deploy(WORKFLOW, _job("echo first line; sleep 3; echo 'second $(x)'"))
    started = backend.start(WORKFLOW)
    deadline = time.monotonic() + 30
    while not backend.list_vms(started.name) and time.monotonic() < deadline:
        time.sleep(0.1)
    vms = backend.list_vms(started.name)
    assert len(vms) == 1 and vms[0].labels["wfgen-execution"] == started.id
    followed = list(backend.logs(started.name, follow=True))
    assert backend.get(started.name).state == SUCCEEDED
    texts = [line.split(" | ", 1)[1] for line in followed]
    assert "first line" in texts and "second $(x)" in texts
    assert backend.list_vms(started.name) == []  # the workflow deleted its VM
    assert list(backend.logs(started.name)) == followed  # kept after the delete
    assert f"report received from {vms[0].name}: status succeeded, exit code 0" in notes


def test_cancel_leaves_the_vm_as_the_service_does(backend: LocalBackend) -> None:
    backend.deploy(WORKFLOW, _job("sleep 60"))
    started = backend.start(WORKFLOW)
    deadline = time.monotonic() + 30
    while not backend.list_vms(started.name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend.cancel(started.name).state == CANCELLED
    left = backend.list_vms(started.name)
    assert len(left) == 1
    assert backend.delete_vms(left) == [left[0].name]
    assert backend.list_vms(started.name) == []


def test_unknown_names_are_usage_errors(backend: LocalBackend) -> None:
    with pytest.raises(UsageError, match="not deployed"):
        backend.start(WORKFLOW + "-nope")
    with pytest.raises(UsageError, match="not an execution name"):
        backend.get("nope")
    with pytest.raises(UsageError, match="no execution"):
        backend.get(WORKFLOW + "/executions/x")


def test_a_wait_that_fails_otherwise_than_by_timeout_ends_the_attempt(
        backend: LocalBackend) -> None:
    """Only a TimeoutError of events.await_callback is a heartbeat: any other error
    ends the attempt (VM deleted) instead of looping until the 100,000-step limit."""
    from wfgen.engine.errors import make_error

    def broken(callback: object, timeout: float, cancel: object = None) -> object:
        raise make_error("ConnectionError", "the callback service is unreachable")

    backend.callbacks.await_request = broken  # type: ignore[method-assign]
    backend.deploy(WORKFLOW, _job("sleep 30"))
    done = backend.wait(backend.start(WORKFLOW).name, 60)
    assert done.state == FAILED and done.error is not None
    assert "unreachable" in done.error.payload
    assert sum(done.steps) < 100, done.steps
    assert backend.list_vms() == []


def test_ended_vms_leave_the_token_check(backend: LocalBackend) -> None:
    """A long-running serve does not keep every VM it ever made: a deleted VM
    leaves all_vms (the list the callback token check scans)."""
    backend.deploy(WORKFLOW, _job("echo done"))
    done = backend.wait(backend.start(WORKFLOW).name, 60)
    assert done.state == SUCCEEDED
    deadline = time.monotonic() + 30
    while backend.compute.all_vms and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend.compute.all_vms == []
    assert len(backend.compute.known_instances()) == 1  # its console is kept for logs


def test_an_active_execution_says_where_it_waits(backend: LocalBackend) -> None:
    """The current step of an ACTIVE execution: the call it is in (here the wait
    for the VM's report inside run_job), not the start of main."""
    backend.deploy(WORKFLOW, _job("sleep 5"))
    started = backend.start(WORKFLOW)
    deadline = time.monotonic() + 30
    while (backend.get(started.name).current_step != "wait_for_report (run_job)"
           and time.monotonic() < deadline):
        time.sleep(0.1)
    assert backend.get(started.name).current_step == "wait_for_report (run_job)"
    assert backend.position(started.name) == ("run_job", "wait_for_report")
    assert backend.wait(started.name, 60).state == SUCCEEDED
    assert backend.position(started.name) is None
