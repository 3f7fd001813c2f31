"""Local capacity (wfgen.local.capacity): stockout rules per zone and model, and
the operation error a refused insert carries, in the shape of the compute v1
Discovery document's Operation (checked against it)."""

from __future__ import annotations

import pytest

from tests.discovery import problems
from wfgen.errors import UsageError
from wfgen.local.capacity import Capacity, Stockout
from wfgen.local.faults import Faults

BODY = {"name": "job-1", "machineType": "zones/us-central1-a/machineTypes/n1-standard-8",
        "scheduling": {"provisioningModel": "SPOT"},
        "guestAccelerators": [{"acceleratorType":
                               "zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4",
                               "acceleratorCount": 1}]}


def test_rules_match_zone_and_model():
    cap = Capacity.parse(["us-central1-a", "*/spot", "us-central1-b/flex-start"])
    assert cap.out("us-central1-a", "STANDARD")
    assert cap.out("europe-west1-b", "SPOT")
    assert not cap.out("us-central1-c", "STANDARD")
    assert not cap.grants_flex("us-central1-b") and cap.grants_flex("us-central1-c")
    # flex-start waits in the queue: never refused at insert time
    flex = {**BODY, "scheduling": {"provisioningModel": "FLEX_START"}}
    assert cap.refusal("p", "us-central1-b", flex) is None


def test_a_refused_insert_fails_like_compute_engine():
    cap = Capacity.parse(["us-central1-a/spot", "us-central1-c/spot"])
    refusal = cap.refusal("demo", "us-central1-a", BODY)
    assert refusal.status == 503
    operation = {"kind": "compute#operation", "name": "operation-1", "status": "DONE",
                 "httpErrorStatusCode": refusal.status,
                 "httpErrorMessage": "SERVICE UNAVAILABLE",
                 "error": {"errors": refusal.errors()}}
    assert problems(operation, "Operation") == []
    error = refusal.errors()[0]
    assert error["code"] == "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
    assert error["message"].startswith(
        "The zone 'projects/demo/zones/us-central1-a' does not have enough resources")
    info = error["errorDetails"][0]["errorInfo"]
    assert info["reason"] == "RESOURCE_AVAILABILITY"
    assert info["metadatas"] == {"zone": "us-central1-a", "vmType": "n1-standard-8",
                                 "attachment": "nvidia-tesla-t4=1",
                                 "zonesWithCapacity": "us-central1-b,us-central1-f"}
    assert cap.refusal("demo", "us-central1-b", BODY) is None
    standard = {**BODY, "scheduling": {"provisioningModel": "STANDARD"}}
    assert cap.refusal("demo", "us-central1-a", standard) is None


@pytest.mark.parametrize("bad", ["", "nowhere", "us-central1-a/cheap", "/spot"])
def test_bad_rules_are_usage_errors(bad):
    with pytest.raises(UsageError):
        Stockout.parse(bad)


def test_faults_carry_stockouts_and_the_flex_wait():
    faults = Faults.parse(["stockout=us-central1-a/spot", "stockout=*", "flex-wait=500ms"])
    cap = faults.capacity()
    assert cap.flex_wait_s == 0.5
    assert cap.stockouts == [Stockout("us-central1-a", "SPOT"), Stockout("*", None)]
    with pytest.raises(UsageError, match="no task=N"):
        Faults.parse(["stockout=us-central1-a,task=1"])
    with pytest.raises(UsageError):
        Faults.parse(["stockout=us-central1-a/bogus"])


@pytest.mark.parametrize(("args", "words"), [
    (["--stockout", "us-central1-a/cheap"], "--stockout 'us-central1-a/cheap': 'cheap' is not"),
    (["--flex-wait", "5x"], "--flex-wait: '5x' is not a delay"),
])
def test_serve_refuses_bad_capacity_options_before_starting(args, words):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "wfgen", "serve", "--on-host", "--port", "0",
                          "--data-dir", ":memory:", *args],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert words in run.stderr and "Traceback" not in run.stderr
