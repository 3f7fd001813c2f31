"""Following a job through `wfgen serve` ends only after the last line its VM
wrote, in order: `wfgen logs --follow` (with the job's exit status, as `run`)
and `wfgen run` (the VM's last lines before "VM ... deleted"). A job's last
line is written just before it exits, and the VM is deleted right after: the
race a console read alone loses."""

from __future__ import annotations

import json
import time

import pytest

from tests.cloud.serve_cli import PROJECT, Serve, job

pytestmark = pytest.mark.xdist_group("follow_to_the_end")
WORKFLOW = f"projects/{PROJECT}/locations/us-central1/workflows/oom"
LAST = "RuntimeError: CUDA out of memory"
SCRIPT = f"echo training; echo '{LAST}'; exit 3"


def logged(serve: Serve, execution: str) -> list[str]:
    """Every line the execution's VMs wrote, from serve's Cloud Logging."""
    tag = execution.rsplit("/", 1)[-1].replace("-", "")[:12]
    body = {"resourceNames": [f"projects/{PROJECT}"], "orderBy": "timestamp asc",
            "pageSize": 1000, "filter": f'resource.type="gce_instance" AND '
                                        f'labels."compute.googleapis.com/resource_name":"-{tag}-"'}
    return [e["textPayload"] for e in serve.rest("POST", "/v2/entries:list", body)["entries"]]


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("follow-serve")).start()
    yield server
    assert server.stop() == 0, "\n".join(server.lines[-40:])


@pytest.fixture(scope="module")
def deployed(serve, tmp_path_factory):
    spec = job(tmp_path_factory.mktemp("follow-job") / "job.yaml", "oom", SCRIPT)
    done = serve.wfgen("deploy", spec)
    assert done.returncode == 0, done.stderr
    return spec


def test_logs_follow_ends_with_the_last_line_and_the_exit_code_20_times(serve, deployed):
    for attempt in range(20):
        started = serve.rest("POST", f"/v1/{WORKFLOW}/executions", {})
        done = serve.wfgen("logs", "--follow", started["name"], timeout=120)
        lines = done.stdout.splitlines()
        where = f"try {attempt + 1}:\n{done.stdout}\n{done.stderr}"
        assert done.returncode == 3, where
        assert lines[lines.index("training") + 1] == LAST, where
        assert lines == logged(serve, started["name"]), where  # to the VM's last byte
        assert "execution FAILED: container exited 3" in done.stderr, where


def test_logs_follow_of_a_succeeded_job_exits_0(serve, tmp_path):
    spec = job(tmp_path / "job.yaml", "fine", "echo one; echo two")
    started = serve.wfgen("run", spec, "--detach")
    assert started.returncode == 0, started.stderr
    done = serve.wfgen("logs", "--follow", started.stdout.strip(), timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[lines.index("one") + 1] == "two", done.stdout
    assert lines == logged(serve, started.stdout.strip()), done.stdout


def test_logs_follow_of_an_ended_execution_prints_it_all(serve, deployed):
    started = serve.rest("POST", f"/v1/{WORKFLOW}/executions", {})
    serve.wait_for(lambda: serve.rest("GET", f"/v1/{started['name']}")["state"] != "ACTIVE",
                   "the execution's end")
    time.sleep(0.5)
    done = serve.wfgen("logs", "--follow", started["name"], timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines() == logged(serve, started["name"])
    assert LAST in done.stdout.splitlines()


def test_run_prints_the_vms_last_lines_before_its_deletion(serve, deployed):
    done = serve.wfgen("run", "oom", timeout=120)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.splitlines()
    deleted = next(i for i, line in enumerate(lines) if " deleted" in line and "VM " in line)
    output = [i for i, line in enumerate(lines) if " | " in line]
    assert output and max(output) < deleted, done.stderr
    vm_lines = [lines[i].split(" | ", 1)[1] for i in output]
    assert vm_lines == logged(serve, json.loads(done.stdout)["instance"].split("-")[1]), done.stderr
    assert json.loads(done.stdout)["exit_code"] == 3


def test_status_of_a_failed_execution_exits_as_run_does(serve, deployed):
    started = serve.rest("POST", f"/v1/{WORKFLOW}/executions", {})
    running = serve.wfgen("status", started["name"])
    active = "ACTIVE" in running.stdout  # (a fast job may have ended already)
    assert running.returncode == (0 if active else 3), running.stderr  # ACTIVE: 0
    serve.wait_for(lambda: serve.rest("GET", f"/v1/{started['name']}")["state"] != "ACTIVE",
                   "the execution's end")
    done = serve.wfgen("status", started["name"])
    assert done.returncode == 3, done.stderr  # FAILED with the container's exit code 3
    assert "FAILED" in done.stdout and "execution FAILED" in done.stderr
