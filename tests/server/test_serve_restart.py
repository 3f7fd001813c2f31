"""What `wfgen serve` keeps and cleans up: a restart on the same --data-dir
keeps workflows and executions; an execution that was running when serve died
is FAILED, saying so; SIGTERM cancels running executions and deletes every
local VM, exit 0; --workflows-dir deploys at start and redeploys on change."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.server.serve_process import PARENT, Serve

pytestmark = pytest.mark.xdist_group("serve_restart")

SLEEPY = "- nap:\n    call: sys.sleep\n    args:\n      seconds: 600\n"
QUICK = "- done:\n    return: ${sys.get_env(\"GOOGLE_CLOUD_WORKFLOW_REVISION_ID\")}\n"


def until(predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def deploy(serve: Serve, workflow_id: str, source: str) -> None:
    status, op = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId={workflow_id}",
                            {"sourceContents": source})
    assert status == 200 and op["done"] and "response" in op, op


def test_restart_keeps_workflows_and_executions(tmp_path):
    serve = Serve(tmp_path).start()
    try:
        deploy(serve, "quick", QUICK)
        deploy(serve, "sleepy", SLEEPY)
        status, created = serve.call("POST", f"/v1/{PARENT}/workflows/quick/executions", {})
        finished = serve.wait_execution(created["name"])
        assert finished["state"] == "SUCCEEDED"
        assert json.loads(finished["result"]) == finished["workflowRevisionId"]
        status, running = serve.call("POST", f"/v1/{PARENT}/workflows/sleepy/executions", {})
        assert running["state"] == "ACTIVE"
    finally:
        serve.stop(signal.SIGKILL)  # serve dies: no chance to end the execution
    again = Serve(tmp_path).start()
    try:
        assert "left running by an earlier serve" in again.log()
        status, workflow = again.call("GET", f"/v1/{PARENT}/workflows/quick")
        assert status == 200 and workflow["sourceContents"] == QUICK
        status, kept = again.call("GET", f"/v1/{finished['name']}")
        assert kept == finished
        status, dead = again.call("GET", f"/v1/{running['name']}")
        assert dead["state"] == "FAILED" and "endTime" in dead
        assert "serve stopped while this execution was running" in dead["error"]["payload"]
        status, listed = again.call("GET", f"/v1/{PARENT}/workflows/sleepy/executions")
        assert [e["name"] for e in listed["executions"]] == [running["name"]]
        # the new serve runs executions too
        status, created = again.call("POST", f"/v1/{PARENT}/workflows/quick/executions", {})
        assert again.wait_execution(created["name"])["state"] == "SUCCEEDED"
    finally:
        assert again.stop() == 0


def test_sigterm_cancels_executions_and_deletes_vms(tmp_path):
    job = tmp_path / "jobs"
    job.mkdir()
    (job / "longjob.yaml").write_text(json.dumps({
        "name": "longjob", "container": {"image": "alpine:3.20", "script": "sleep 600"},
        "timeout": "5m", "heartbeat": "2s", "retries": 0}))
    serve = Serve(tmp_path, "--workflows-dir", str(job), "--project", "demo").start()
    try:
        assert "deployed longjob.yaml" in serve.log()
        status, created = serve.call("POST", f"/v1/{PARENT}/workflows/longjob/executions", {})
        assert status == 200, created
        until(lambda: any(serve.scratch.iterdir()))  # the VM's scratch directory: it booted
    finally:
        assert serve.stop(signal.SIGTERM) == 0
    assert "stopped" in serve.log()
    until(lambda: not any(serve.scratch.iterdir()), timeout=15)  # every VM deleted
    again = Serve(tmp_path).start()
    try:
        status, ended = again.call("GET", f"/v1/{created['name']}")
        assert ended["state"] == "CANCELLED", ended
    finally:
        again.stop()


def test_workflows_dir_deploys_and_redeploys(tmp_path):
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "plain.yaml").write_text("- one:\n    return: 1\n")
    (folder / "broken.yaml").write_text("- one:\n    next: nowhere\n")
    serve = Serve(tmp_path, "--workflows-dir", str(folder), data_dir=":memory:").start()
    try:
        status, first = serve.call("GET", f"/v1/{PARENT.replace('demo', 'local-project')}"
                                          "/workflows/plain")
        assert status == 200 and first["revisionId"].startswith("000001-")
        assert "broken.yaml" in serve.log() and "line 1" in serve.log()
        (folder / "plain.yaml").write_text("- one:\n    return: 2\n")
        name = "/v1/projects/local-project/locations/us-central1/workflows/plain"
        changed = until(lambda: (w := serve.call("GET", name)[1])["revisionId"].startswith(
            "000002-") and w)
        assert "return: 2" in changed["sourceContents"]
    finally:
        serve.stop()


def test_start_errors_are_one_clear_line(tmp_path):
    import socket
    import subprocess
    import sys

    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wfgen", "serve", "--on-host", *args],
                              capture_output=True, text=True, timeout=60)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for flags in (["--port", port], ["--port", "0", "--grpc-port", port]):
            run = serve("--data-dir", ":memory:", *flags)
            assert run.returncode == 2 and f"127.0.0.1:{port}" in run.stderr, run.stderr
            assert "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 1
    (tmp_path / "serve.sqlite3").write_text("not a database")
    run = serve("--data-dir", str(tmp_path), "--port", "0")
    assert run.returncode == 2 and str(tmp_path) in run.stderr and "Traceback" not in run.stderr

