"""GPU capacity through `wfgen serve --stockout ZONE[/MODEL] --flex-wait DELAY` and
the real gcloud: a deployed job fails over to a zone with capacity, a flex-start
VM waits PENDING (as `gcloud compute instances list` shows it) until the queue
grants capacity, and the result says where and how the job ran."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.server.serve_process import GCLOUD, PARENT, Serve

pytestmark = [pytest.mark.xdist_group("serve_capacity"),
              pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")]


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-capacity")
    server = Serve(tmp, "--stockout", "us-central1-a", "--stockout", "us-central1-b/spot",
                   "--flex-wait", "10s").start()
    yield server
    assert server.stop() == 0, server.log()


def deploy(serve: Serve, tmp: Path, name: str, script: str = "echo ran; sleep 1",
           **spec: object) -> None:
    import subprocess

    body = {"name": name, "container": {"image": "alpine:3.20", "script": script},
            "timeout": "5m", "heartbeat": "1s", "retries": 0, **spec}
    source = tmp / f"{name}.job.yaml"
    source.write_text(json.dumps(body))
    out = tmp / f"{name}.yaml"
    gen = subprocess.run([sys.executable, "-m", "wfgen", "generate", str(source), "-o", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert gen.returncode == 0, gen.stderr
    run = serve.gcloud("workflows", "deploy", name, f"--source={out}")
    assert run.returncode == 0, run.stderr


def held(release: Path) -> str:
    """A job that runs until the test releases it (VMs here are host processes), so
    that gcloud, however slow, sees it RUNNING."""
    return f"echo ran; while [ ! -e '{release}' ]; do sleep 0.2; done"


def start(serve: Serve, name: str) -> str:
    run = serve.gcloud("workflows", "execute", name, "--format=value(name)")
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def instances(serve: Serve) -> list[dict]:
    listed = serve.gcloud("compute", "instances", "list", "--format=json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_a_spot_job_fails_over_to_the_zone_with_capacity(serve, tmp_path):
    release = tmp_path / "release"
    deploy(serve, tmp_path, "spot-t4", held(release),
           zone=["us-central1-a", "us-central1-b", "us-central1-c"],
           machine={"type": "n1-standard-8", "spot": True,
                    "accelerator": {"type": "nvidia-tesla-t4"}})
    name = start(serve, "spot-t4")
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not seen:
        seen = {vm["zone"].rpartition("/")[2] for vm in instances(serve)
                if vm["labels"].get("wfgen-job") == "spot-t4"}
        time.sleep(0.3)
    release.touch()
    assert seen == {"us-central1-c"}  # gcloud sees the VM only where it could be made
    execution = serve.wait_execution(name)
    assert execution["state"] == "SUCCEEDED", execution
    result = json.loads(execution["result"])
    assert result["zone"] == "us-central1-c"
    assert result["choice"] == "n1-standard-8 + 1 x nvidia-tesla-t4 (spot)"
    assert result["attempts_detail"] == [{"zone": "us-central1-a", "result": "no capacity",
                                          "choice": result["choice"]}]
    assert name.startswith(f"{PARENT}/workflows/spot-t4/executions/")


def test_a_flex_start_vm_is_pending_then_runs(serve, tmp_path):
    release = tmp_path / "release"
    deploy(serve, tmp_path, "flex-l4", held(release), zone=["us-central1-a", "us-central1-b"],
           machine={"type": "g2-standard-8", "spot": True},
           fallback=[{"provisioning": "flex-start"}])
    name = start(serve, "flex-l4")
    seen: list[tuple[str, str]] = []  # (zone, status) as gcloud lists the VM
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and ("us-central1-b", "RUNNING") not in seen:
        for vm in instances(serve):
            if vm["labels"].get("wfgen-job") == "flex-l4":
                assert vm["scheduling"]["provisioningModel"] == "FLEX_START"
                assert vm["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
                seen.append((vm["zone"].rpartition("/")[2], vm["status"]))
        time.sleep(0.3)
    release.touch()
    # queued (in us-central1-a, out of capacity: given up; then in b), then running in b
    order = list(dict.fromkeys(seen))
    assert order[0][1] == "PENDING", seen
    assert order[-1] == ("us-central1-b", "RUNNING"), seen
    execution = serve.wait_execution(name)
    assert execution["state"] == "SUCCEEDED", execution
    result = json.loads(execution["result"])
    assert (result["zone"], result["choice"]) == ("us-central1-b", "g2-standard-8 (flex-start)")
    # spot refused in a (out) and b (out for spot); flex-start out in a, granted in b
    assert [(d["zone"], d["choice"]) for d in result["attempts_detail"]] == [
        ("us-central1-a", "g2-standard-8 (spot)"), ("us-central1-b", "g2-standard-8 (spot)"),
        ("us-central1-a", "g2-standard-8 (flex-start)")]
