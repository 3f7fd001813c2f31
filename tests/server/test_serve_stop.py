"""`wfgen serve` stops within 2 s with VMs running: their shutdown scripts run
in parallel and are cut short at a stated deadline (1 s), then serve exits 0."""

from __future__ import annotations

import signal
import time

import pytest

from tests.cloud.serve_cli import PROJECT, Serve, job

pytestmark = pytest.mark.xdist_group("serve_stop")
WORKFLOW = f"projects/{PROJECT}/locations/us-central1/workflows/long"


def test_serve_stops_in_under_2s_with_two_running_vms(tmp_path):
    serve = Serve(tmp_path).start()
    try:
        spec = job(tmp_path / "job.yaml", "long", "echo started; sleep 600")
        assert serve.wfgen("deploy", spec).returncode == 0
        for _ in range(2):
            serve.rest("POST", f"/v1/{WORKFLOW}/executions", {})
        serve.wait_for(lambda: len([vm for vm in serve.vms() if vm["status"] == "RUNNING"]) == 2,
                       "two RUNNING VMs")
        assert serve.proc is not None
        began = time.monotonic()
        serve.proc.send_signal(signal.SIGTERM)
        status = serve.proc.wait(30)
        took = time.monotonic() - began
    finally:
        serve.stop()
    time.sleep(0.2)  # the last lines of stderr reach the pump
    log = "\n".join(serve.lines)
    assert status == 0, log
    assert took < 2.0, f"serve took {took:.2f} s to stop\n{log}"
    assert "their shutdown scripts get 1 s" in log
    assert "2 shutdown script(s) ran" in log, log
