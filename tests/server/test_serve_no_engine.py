"""`wfgen serve` without a container engine and without --on-host: it starts, says
which mode it is in, runs workflows without VMs through gcloud, and refuses a job's
VM (which would run the job's command on the host) with a FAILED execution whose
error names --on-host. A `docker` client without a daemon stands in for this
machine's engine check (wfgen's own probe)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.serve_process import GCLOUD, Serve

pytestmark = [pytest.mark.xdist_group("serve_no_engine"),
              pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")]


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-no-engine")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 1\n")  # a client, no daemon
    (bin_dir / "docker").chmod(0o755)
    server = Serve(tmp, data_dir=":memory:", on_host=False,
                   env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}).start()
    yield server
    assert server.stop() == 0, server.log()


def test_it_starts_and_says_which_mode_it_is_in(serve):
    assert "no container engine works here and no --on-host" in serve.log()


def test_a_workflow_without_vms_runs_through_gcloud(serve, tmp_path):
    source = tmp_path / "plain.yaml"
    source.write_text("main:\n  params: [a]\n  steps:\n    - r:\n        return: ${a.x * 2}\n")
    deployed = serve.gcloud("workflows", "deploy", "plain", f"--source={source}")
    assert deployed.returncode == 0, deployed.stderr
    run = serve.gcloud("workflows", "run", "plain", '--data={"x": 21}', "--format=json")
    assert run.returncode == 0, run.stderr
    execution = json.loads(run.stdout)
    assert execution["state"] == "SUCCEEDED" and json.loads(execution["result"]) == 42


def test_a_jobs_vm_is_refused_with_a_failed_execution_naming_on_host(serve, tmp_path):
    mark = tmp_path / "ran-on-host"
    spec = {"name": "needs-host", "container": {"image": "alpine:3.20",
                                                "script": f"touch {shlex.quote(str(mark))}"},
            "timeout": "5m", "heartbeat": "2s", "retries": 0}
    (tmp_path / "job.yaml").write_text(json.dumps(spec))
    out = tmp_path / "wf.yaml"
    gen = subprocess.run([sys.executable, "-m", "wfgen", "generate", str(tmp_path / "job.yaml"),
                          "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert gen.returncode == 0, gen.stderr
    deployed = serve.gcloud("workflows", "deploy", "needs-host", f"--source={out}")
    assert deployed.returncode == 0, deployed.stderr
    run = serve.gcloud("workflows", "run", "needs-host", "--format=json")
    assert run.returncode == 0, run.stderr
    execution = json.loads(run.stdout)
    assert execution["state"] == "FAILED", execution
    assert "--on-host" in execution["error"]["payload"]
    assert "as a host process" in execution["error"]["payload"]
    listed = serve.gcloud("compute", "instances", "list", "--format=json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
    assert not Path(mark).exists() and not list(serve.scratch.glob("wfgen-vm-*"))
