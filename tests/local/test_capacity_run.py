"""GPU capacity end to end on the local runtime (`wfgen run --local`): zones out of
capacity (`--fault stockout=ZONE[/MODEL]`), the flex-start queue, the ordered
fallback, quota errors, and a preempted Spot attempt moving zone. The local
compute answers as Compute Engine does (wfgen.local.capacity)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.local.test_run_local import result_of, run_local

pytestmark = pytest.mark.xdist_group("run_local")

T4 = {"type": "nvidia-tesla-t4", "count": 1}
# a callback, the refused insert, the stockout check, the failover's assign, its
# log line, the start-over check and the jump back: README "Getting GPUs"
STEPS_PER_FAILOVER = 7


def gpu_job(tmp_path: Path, *, script: str = "echo trained", **extra) -> Path:
    spec = {"name": "gpu", "container": {"image": "alpine:3.20", "script": script},
            "machine": {"type": "n1-standard-8", "accelerator": T4, "spot": True},
            "timeout": "5m", "heartbeat": "1s", "retries": 1, **extra}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def billed_steps(stderr: str) -> int:
    match = re.search(r"billed steps: .* = (\d+)", stderr)
    assert match, stderr
    return int(match.group(1))


def test_two_stocked_out_zones_then_success_in_the_third(tmp_path):
    # every zone of us-central1 is out, so no error names a zone with capacity:
    # the plan's order is walked, into the next region
    job = gpu_job(tmp_path, zone=["us-central1-a", "us-central1-b", "us-east1-c"],
                  regions=["us-east1"], heartbeat="1m")  # no heartbeat: exact step counts
    run = run_local(tmp_path, job, "--stats", "--fault", "stockout=us-central1-a",
                    "--fault", "stockout=us-central1-b", "--fault", "stockout=us-central1-c",
                    "--fault", "stockout=us-central1-f")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert (result["status"], result["zone"], result["attempts"]) == (
        "succeeded", "us-east1-c", 1)
    assert result["choice"] == "n1-standard-8 + 1 x nvidia-tesla-t4 (spot)"
    assert [(d["zone"], d["result"]) for d in result["attempts_detail"]] == [
        ("us-central1-a", "no capacity"), ("us-central1-b", "no capacity")]
    assert ("us-central1-a: no capacity for n1-standard-8 + 1 x nvidia-tesla-t4 (spot); "
            "trying us-central1-b") in run.stderr
    assert "us-central1-b: no capacity for n1-standard-8 + 1 x nvidia-tesla-t4 (spot); " \
           "trying us-east1-c" in run.stderr
    # the success path bills 11 steps as a plain job does; each zone failed over, 7
    assert billed_steps(run.stderr) == 11 + 2 * STEPS_PER_FAILOVER


def test_an_error_naming_zones_with_capacity_is_followed(tmp_path):
    job = gpu_job(tmp_path, zone=["us-central1-a", "us-central1-b", "us-central1-c"])
    run = run_local(tmp_path, job, "--fault", "stockout=us-central1-a",
                    "--fault", "stockout=us-central1-b")
    result = result_of(run)
    # us-central1-a's error names us-central1-c and us-central1-f: b is skipped
    assert result["zone"] == "us-central1-c"
    assert [d["zone"] for d in result["attempts_detail"]] == ["us-central1-a"]


def test_spot_out_everywhere_then_flex_start_granted_after_a_wait(tmp_path):
    job = gpu_job(tmp_path, machine={"type": "g2-standard-8", "spot": True},
                  fallback=[{"provisioning": "flex-start"}], zone="any")
    run = run_local(tmp_path, job, "--fault", "stockout=*/spot", "--fault", "flex-wait=2s")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["status"] == "succeeded"
    assert result["choice"] == "g2-standard-8 (flex-start)"
    assert result["zone"] == "us-central1-a"
    # zone: any for an L4 machine: exactly the zones that offer L4 (not us-central1-f)
    assert [d["zone"] for d in result["attempts_detail"]] == [
        "us-central1-a", "us-central1-b", "us-central1-c"]
    assert "trying us-central1-a with g2-standard-8 (flex-start)" in run.stderr
    assert "waiting for capacity (flex-start) since" in run.stderr
    assert "flex-start capacity granted" in run.stderr


def test_a_flex_start_request_given_up_is_a_stockout(tmp_path):
    job = gpu_job(tmp_path, machine={"type": "g2-standard-8", "provisioning": "flex-start"},
                  zone=["us-central1-a", "us-central1-b"])
    run = run_local(tmp_path, job, "--fault", "stockout=us-central1-a/flex-start",
                    "--fault", "flex-wait=1s")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["zone"] == "us-central1-b"
    assert result["attempts_detail"] == [{"zone": "us-central1-a", "result": "no capacity",
                                          "choice": "g2-standard-8 (flex-start)"}]
    assert "given up" in run.stderr


def test_every_choice_out_until_the_timeout_exits_125_naming_them(tmp_path):
    job = gpu_job(tmp_path, zone=["us-central1-a", "us-central1-b"],
                  fallback=[{"provisioning": "standard"}], timeout="4s")
    run = run_local(tmp_path, job, "--fault", "stockout=*")
    assert run.returncode == 125, run.stderr
    result = result_of(run)
    assert result["status"] == "unavailable"
    message = result["message"]
    assert message.startswith("no capacity until the timeout (4s)")
    for words in ("n1-standard-8 + 1 x nvidia-tesla-t4 (spot) in us-central1-a, us-central1-b",
                  "n1-standard-8 + 1 x nvidia-tesla-t4 (standard) in us-central1-a, "
                  "us-central1-b"):
        assert words in message
    assert "no zone has capacity for any choice" in run.stderr
    assert len(result["attempts_detail"]) <= 20  # kept small


def test_a_quota_error_ends_at_once(tmp_path):
    job = gpu_job(tmp_path, zone=["us-central1-a", "us-central1-b"])
    run = run_local(tmp_path, job, "--fault", "insert-fail")
    assert run.returncode == 125
    result = result_of(run)
    assert result["status"] == "error" and "QUOTA_EXCEEDED" in result["message"]
    assert "trying us-central1-b" not in run.stderr
    assert run.stderr.count("fails (fault injection") == 1


def test_a_preempted_spot_attempt_moves_zone(tmp_path):
    job = gpu_job(tmp_path, script="sleep 3; echo done",
                  zone=["us-central1-a", "us-central1-b"])
    run = run_local(tmp_path, job, "--fault", "preempt@1s")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert (result["attempts"], result["zone"]) == (2, "us-central1-b")
    assert result["attempts_detail"] == [{"zone": "us-central1-a", "result": "preempted",
                                          "choice": "n1-standard-8 + 1 x nvidia-tesla-t4 (spot)"}]


def test_fan_out_tasks_fail_over_each_on_their_own(tmp_path):
    job = gpu_job(tmp_path, script='echo "task $WFGEN_TASK_INDEX"',
                  zone=["us-central1-a", "us-central1-b"], tasks={"count": 3})
    run = run_local(tmp_path, job, "--fault", "stockout=us-central1-a")
    assert run.returncode == 0, run.stderr
    tasks = result_of(run)["tasks"]
    assert [(t["status"], t["zone"]) for t in tasks] == [("succeeded", "us-central1-b")] * 3
    assert run.stderr.count("us-central1-a: no capacity for") == 3


def test_a_single_zone_flex_start_request_given_up_says_so(tmp_path):
    job = gpu_job(tmp_path, machine={"type": "a2-highgpu-1g", "provisioning": "flex-start"},
                  retries=0)
    run = run_local(tmp_path, job, "--fault", "stockout=us-central1-a/flex-start",
                    "--fault", "flex-wait=1s")
    assert run.returncode == 125
    result = result_of(run)
    assert result["status"] == "unavailable"
    assert result["message"].startswith("no capacity: the flex-start request for the VM")
    assert "waiting for capacity (flex-start) since" in run.stderr
