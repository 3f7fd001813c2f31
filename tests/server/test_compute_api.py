"""Compute Engine REST (wfgen.server.compute_api) driven by the real gcloud and
the Python InstancesClient, over VMs that run the real startup script."""

from __future__ import annotations

import json
import uuid

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from tests.server.localvms import GCLOUD, PROJECT, ZONE, Bed, eventually

pytestmark = pytest.mark.xdist_group("server_compute")
needs_gcloud = pytest.mark.skipif(GCLOUD is None, reason="gcloud is not on PATH")
BASE = f"/compute/v1/projects/{PROJECT}/zones/{ZONE}"


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    bed = Bed(tmp_path_factory.mktemp("compute"))
    yield bed
    bed.close()


def running(bed: Bed, name: str) -> bool:
    status, body = bed.call("GET", f"{BASE}/instances/{name}")
    return status == 200 and body["status"] == "RUNNING"


@needs_gcloud
def test_gcloud_list_describe_serial_and_batch_delete(bed):
    bed.boot("gc-a", "echo hello-from-a; sleep 120")
    bed.boot("gc-b", "echo hello-from-b; sleep 120")
    eventually(lambda: "hello-from-a" in bed.console("gc-a"), what="gc-a printed")

    listed = bed.gcloud("compute", "instances", "list", "--format=json")
    assert listed.returncode == 0, listed.stderr
    vms = {vm["name"]: vm for vm in json.loads(listed.stdout)}
    assert {"gc-a", "gc-b"} <= set(vms)
    assert vms["gc-a"]["labels"] == {"wfgen-job": "bed", "wfgen-execution": "exec-gc-a"}
    assert vms["gc-a"]["zone"].endswith(f"/zones/{ZONE}")

    table = bed.gcloud("compute", "instances", "list")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "ZONE", "MACHINE_TYPE"]
    row = next(r.split() for r in rows if r.startswith("gc-a "))
    assert row[1:3] == [ZONE, "e2-small"] and row[-1] == "RUNNING"

    described = bed.gcloud("compute", "instances", "describe", "gc-a", f"--zone={ZONE}",
                           "--format=json")
    assert described.returncode == 0, described.stderr
    vm = json.loads(described.stdout)
    assert vm["status"] == "RUNNING" and vm["id"] == vms["gc-a"]["id"]
    assert vm["machineType"].endswith(f"/zones/{ZONE}/machineTypes/e2-small")
    assert vm["selfLink"].endswith(f"{BASE}/instances/gc-a")

    serial = bed.gcloud("compute", "instances", "get-serial-port-output", "gc-a",
                        f"--zone={ZONE}")
    assert serial.returncode == 0, serial.stderr
    assert "hello-from-a" in serial.stdout and "hello-from-b" not in serial.stdout
    assert "--start=" in serial.stderr

    deleted = bed.gcloud("compute", "instances", "delete", "gc-a", "gc-b", f"--zone={ZONE}",
                         "--quiet")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stderr.count("Deleted [") == 2
    assert not {"gc-a", "gc-b"} & {vm["name"] for vm in bed.compute.list_instances(PROJECT)}
    # the shutdown script ran before the VM went away, and its console is kept
    assert "wfgen-shutdown" in bed.console("gc-a")
    eventually(lambda: bed.reports.received.get("gc-a"), what="the stop was reported")
    assert bed.reports.received["gc-a"][-1]["status"] == "stopped"


@needs_gcloud
def test_gcloud_missing_instance_errors(bed):
    described = bed.gcloud("compute", "instances", "describe", "nope", f"--zone={ZONE}")
    assert described.returncode == 1
    assert "Could not fetch resource:" in described.stderr
    assert f"projects/{PROJECT}/zones/{ZONE}/instances/nope' was not found" in described.stderr
    deleted = bed.gcloud("compute", "instances", "delete", "nope", f"--zone={ZONE}", "--quiet")
    assert deleted.returncode == 1 and "was not found" in deleted.stderr


@needs_gcloud
def test_gcloud_batch_delete_with_one_missing_deletes_the_other(bed):
    bed.boot("gc-c", "sleep 120")
    deleted = bed.gcloud("compute", "instances", "delete", "gc-c", "nope-2", f"--zone={ZONE}",
                         "--quiet")
    assert deleted.returncode == 1
    assert "nope-2' was not found" in deleted.stderr
    assert bed.call("GET", f"{BASE}/instances/gc-c")[0] == 404


def test_python_instances_client_with_operation_wait(bed):
    opts = {"api_endpoint": bed.url}
    creds = AnonymousCredentials()
    instances = compute_v1.InstancesClient(transport="rest", client_options=opts,
                                           credentials=creds)
    operations = compute_v1.ZoneOperationsClient(transport="rest", client_options=opts,
                                                 credentials=creds)
    body = bed.instance_body("py-vm-1", "echo from-python; sleep 120",
                             provisioningModel="SPOT", instanceTerminationAction="DELETE",
                             maxRunDuration={"seconds": "3600"})
    resource = compute_v1.Instance.from_json(json.dumps(body))
    op = instances.insert(project=PROJECT, zone=ZONE, instance_resource=resource)
    while operations.wait(project=PROJECT, zone=ZONE, operation=op.name).status != \
            compute_v1.Operation.Status.DONE:
        pass
    eventually(lambda: "from-python" in bed.console("py-vm-1"), what="the job printed")

    got = instances.get(project=PROJECT, zone=ZONE, instance="py-vm-1")
    assert got.status == "RUNNING" and got.labels["wfgen-job"] == "bed"
    assert got.scheduling.provisioning_model == "SPOT" and got.scheduling.preemptible
    assert got.scheduling.max_run_duration.seconds == 3600
    assert got.machine_type.endswith(f"/zones/{ZONE}/machineTypes/e2-small")

    listed = list(instances.list(request=compute_v1.ListInstancesRequest(
        project=PROJECT, zone=ZONE, filter='name = "py-vm-1"', max_results=10)))
    assert [vm.name for vm in listed] == ["py-vm-1"]
    scopes = dict(instances.aggregated_list(project=PROJECT))
    assert "py-vm-1" in [vm.name for vm in scopes[f"zones/{ZONE}"].instances]

    with pytest.raises(exceptions.Conflict):
        instances.insert(project=PROJECT, zone=ZONE, instance_resource=resource)
    with pytest.raises(exceptions.NotFound):
        instances.get(project=PROJECT, zone=ZONE, instance="py-missing")

    # op.result() works once the transport's operations client points here too
    instances._transport._extended_operations_services["zone_operations"] = operations
    instances.delete(project=PROJECT, zone=ZONE, instance="py-vm-1").result(timeout=120)
    with pytest.raises(exceptions.NotFound):
        instances.get(project=PROJECT, zone=ZONE, instance="py-vm-1")
    with pytest.raises(exceptions.NotFound):
        instances.delete(project=PROJECT, zone=ZONE, instance="py-vm-1")
    assert "from-python" in bed.console("py-vm-1")


def test_max_run_duration_deletes_the_vm_after_its_shutdown_script(bed):
    bed.boot("short-lived", "echo started; sleep 300", instanceTerminationAction="DELETE",
             maxRunDuration={"seconds": "2"})
    assert bed.call("GET", f"{BASE}/instances/short-lived")[0] == 200
    eventually(lambda: bed.call("GET", f"{BASE}/instances/short-lived")[0] == 404,
               timeout=60, what="maxRunDuration deleted the VM")
    eventually(lambda: "wfgen-shutdown" in bed.console("short-lived"), timeout=30,
               what="the shutdown script ran")


def test_max_run_duration_with_stop_action_stops_the_vm(bed):
    bed.boot("stops-itself", "sleep 300", instanceTerminationAction="STOP",
             maxRunDuration={"seconds": "1"})
    vm = eventually(lambda: (lambda r: r[1] if r[1]["status"] == "TERMINATED" else None)(
        bed.call("GET", f"{BASE}/instances/stops-itself")), timeout=60, what="stopped")
    assert "lastStopTimestamp" in vm and "natIP" not in json.dumps(vm)
    status, op = bed.call("DELETE", f"{BASE}/instances/stops-itself")
    assert status == 200 and op["operationType"] == "delete"


def test_errors_use_the_compute_legacy_shape(bed):
    status, body = bed.call("DELETE", f"{BASE}/instances/ghost")
    assert status == 404
    error = body["error"]
    assert error["code"] == 404
    assert error["message"] == (f"The resource 'projects/{PROJECT}/zones/{ZONE}/instances/"
                                "ghost' was not found")
    assert error["errors"] == [{"message": error["message"], "domain": "global",
                                "reason": "notFound"}]
    assert "status" not in error  # the legacy shape, not google.rpc.Status
    status, body = bed.call("GET", f"{BASE}/operations/operation-ghost")
    assert status == 404 and body["error"]["errors"][0]["reason"] == "notFound"
    status, body = bed.call("POST", f"{BASE}/instances", {"name": "Bad_Name"})
    assert status == 400 and body["error"]["errors"][0]["reason"] == "invalid"
    status, body = bed.call("GET", f"{BASE}/instances?filter=name%20%3D")
    assert status == 400 and "filter" in body["error"]["message"]


def test_operations_get_and_wait_report_a_delete_until_done(bed):
    bed.boot("op-vm", "sleep 120")
    status, op = bed.call("DELETE", f"{BASE}/instances/op-vm")
    assert status == 200 and op["status"] in ("RUNNING", "DONE")
    assert op["targetLink"].endswith(f"{BASE}/instances/op-vm")
    status, done = bed.call("POST", f"{BASE}/operations/{op['name']}/wait")
    assert status == 200 and done["status"] == "DONE" and done["progress"] == 100
    status, again = bed.call("GET", f"{BASE}/operations/{op['name']}")
    assert status == 200 and again["status"] == "DONE" and again["endTime"]


def test_stop_and_start_rerun_the_startup_script(bed):
    bed.boot("restartable", "echo run-$RANDOM; sleep 120")
    eventually(lambda: "run-" in bed.console("restartable"), what="first run")
    status, op = bed.call("POST", f"{BASE}/instances/restartable/stop")
    assert status == 200 and op["operationType"] == "stop"
    assert bed.call("POST", f"{BASE}/operations/{op['name']}/wait")[1]["status"] == "DONE"
    assert bed.call("GET", f"{BASE}/instances/restartable")[1]["status"] == "TERMINATED"
    status, op = bed.call("POST", f"{BASE}/instances/restartable/start")
    assert status == 200
    assert bed.call("GET", f"{BASE}/instances/restartable")[1]["status"] == "RUNNING"
    bed.call("DELETE", f"{BASE}/instances/restartable")


def test_serial_port_offsets(bed):
    bed.boot("serial", "printf 'line-%s\\n' 1 2 3; sleep 120")
    eventually(lambda: "line-3" in bed.console("serial"), what="three lines")
    path = f"{BASE}/instances/serial/serialPort"
    status, whole = bed.call("GET", f"{path}?port=1")
    assert status == 200 and whole["kind"] == "compute#serialPortOutput"
    assert whole["start"] == "0" and int(whole["next"]) == len(whole["contents"].encode())
    at = whole["contents"].index("line-2")
    status, tail = bed.call("GET", f"{path}?start={at}")
    assert tail["contents"].startswith("line-2\nline-3\n") and tail["start"] == str(at)
    status, last = bed.call("GET", f"{path}?start=-7")
    assert last["contents"] == "line-3\n" and int(last["start"]) == int(last["next"]) - 7
    status, empty = bed.call("GET", f"{path}?start={whole['next']}")
    assert empty["contents"] == "" or not empty["contents"].startswith("line")
    bed.call("DELETE", f"{BASE}/instances/serial")


def test_batch_answers_each_part(bed):
    bed.boot("batch-a", "sleep 120")
    boundary = "===============7330845974216740156=="
    parts = []
    for index, name in enumerate(("batch-a", "batch-missing"), start=1):
        parts.append(f"--{boundary}\r\nContent-Type: application/http\r\n"
                     f"Content-Transfer-Encoding: binary\r\nContent-ID: <{uuid.uuid4()}+{index}>"
                     f"\r\n\r\nDELETE {BASE}/instances/{name}?alt=json HTTP/1.1\r\n"
                     "Content-Type: application/json\r\n\r\n")
    raw = ("".join(parts) + f"--{boundary}--").encode()
    status, (kind, payload) = bed.call(
        "POST", "/batch/compute/v1", raw=raw,
        headers={"Content-Type": f'multipart/mixed; boundary="{boundary}"'})
    assert status == 200 and kind.startswith("multipart/mixed; boundary=")
    text = payload.decode()
    assert text.count("Content-ID: <response-") == 2
    first, second = text.split("HTTP/1.1 ")[1:]
    assert first.startswith("200 ") and '"operationType": "delete"' in first
    assert second.startswith("404 ") and '"reason": "notFound"' in second


def test_images_from_family_and_unknown_paths(bed):
    status, image = bed.call("GET", "/compute/v1/projects/cos-cloud/global/images/family/"
                                    "cos-stable")
    assert status == 200 and image["family"] == "cos-stable" and image["status"] == "READY"
    assert image["selfLink"].endswith("/projects/cos-cloud/global/images/" + image["name"])
    status, body = bed.call("GET", f"/compute/v1/projects/{PROJECT}/global/networks")
    assert status == 404 and body["error"]["errors"][0]["reason"] == "notFound"


def test_resource_policies_with_the_python_clients_as_compute_engine_answers(bed):
    """Compact placement policies (resourcePolicies, region operations) through the
    real ResourcePoliciesClient: an instance may name only one that exists in its
    region, and a policy in use cannot be deleted until its instance is gone."""
    opts = {"api_endpoint": bed.url}
    creds = AnonymousCredentials()
    policies = compute_v1.ResourcePoliciesClient(transport="rest", client_options=opts,
                                                 credentials=creds)
    region_ops = compute_v1.RegionOperationsClient(transport="rest", client_options=opts,
                                                   credentials=creds)
    instances = compute_v1.InstancesClient(transport="rest", client_options=opts,
                                           credentials=creds)
    instances._transport._extended_operations_services["zone_operations"] = \
        compute_v1.ZoneOperationsClient(transport="rest", client_options=opts, credentials=creds)
    region = ZONE.rpartition("-")[0]
    policy = compute_v1.ResourcePolicy(
        name="near-1", description="wfgen: a test",
        group_placement_policy=compute_v1.ResourcePolicyGroupPlacementPolicy(
            collocation="COLLOCATED", vm_count=2))
    op = policies.insert(project=PROJECT, region=region, resource_policy_resource=policy)
    while region_ops.wait(project=PROJECT, region=region, operation=op.name).status != \
            compute_v1.Operation.Status.DONE:
        pass
    got = policies.get(project=PROJECT, region=region, resource_policy="near-1")
    assert got.status == "READY" and got.region.endswith(f"/regions/{region}")
    assert got.group_placement_policy.collocation == "COLLOCATED"
    assert got.group_placement_policy.vm_count == 2
    assert [p.name for p in policies.list(project=PROJECT, region=region)] == ["near-1"]
    with pytest.raises(exceptions.Conflict):
        policies.insert(project=PROJECT, region=region, resource_policy_resource=policy)

    def insert(name: str, policy_path: str) -> None:
        body = bed.instance_body(name, "echo placed; sleep 120")
        body["resourcePolicies"] = [policy_path]
        instances.insert(project=PROJECT, zone=ZONE,
                         instance_resource=compute_v1.Instance.from_json(json.dumps(body)))

    with pytest.raises(exceptions.NotFound, match="resourcePolicies/missing"):
        insert("pol-vm-x", f"projects/{PROJECT}/regions/{region}/resourcePolicies/missing")
    with pytest.raises(exceptions.BadRequest, match="same region"):
        insert("pol-vm-y", f"projects/{PROJECT}/regions/europe-west4/resourcePolicies/near-1")
    insert("pol-vm-1", f"projects/{PROJECT}/regions/{region}/resourcePolicies/near-1")
    vm = instances.get(project=PROJECT, zone=ZONE, instance="pol-vm-1")
    assert [p.rsplit("/", 1)[-1] for p in vm.resource_policies] == ["near-1"]
    with pytest.raises(exceptions.BadRequest, match="already being used by"):
        policies.delete(project=PROJECT, region=region, resource_policy="near-1")
    instances.delete(project=PROJECT, zone=ZONE, instance="pol-vm-1").result(timeout=120)
    op = policies.delete(project=PROJECT, region=region, resource_policy="near-1")
    assert region_ops.get(project=PROJECT, region=region, operation=op.name).status == \
        compute_v1.Operation.Status.DONE
    with pytest.raises(exceptions.NotFound):
        policies.get(project=PROJECT, region=region, resource_policy="near-1")
    assert list(policies.list(project=PROJECT, region=region)) == []
