"""What Compute Engine would refuse is refused by `validate`: maintenance policy,
zones that do not exist or lie outside the location's region, machine/GPU pairs."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from tests.conftest import EXAMPLES
from wfgen.errors import SpecError
from wfgen.job.render import render_workflow
from wfgen.job.spec import load_spec, load_spec_text


def _body(spec_text: str) -> dict:
    from tests.test_render import insert_step

    tree = YAML(typ="safe").load(render_workflow(load_spec_text(spec_text, "job.yaml")))
    return insert_step(tree)["args"]["body"]


def _metadata(body: dict) -> dict:
    return {i["key"]: i["value"] for i in body["metadata"]["items"]}


def _error(spec_text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(spec_text, "job.yaml")
    return info.value


def test_standard_vms_migrate_and_gpu_or_spot_vms_terminate():
    # e2 refuses TERMINATE unless preemptible: the batch example must deploy as written
    batch = next(p for p in EXAMPLES if p.name == "batch-script.yaml")
    tree = YAML(typ="safe").load(render_workflow(load_spec(batch)))
    body = tree["run_job"]["steps"][0]["run_attempt"]["try"]["steps"][1]["create_vm"]["args"]
    assert body["body"]["scheduling"]["onHostMaintenance"] == "MIGRATE"
    assert _body("container: {image: a}\nmachine: {spot: true}\n")["scheduling"][
        "onHostMaintenance"] == "TERMINATE"
    gpu = "container: {image: a}\nmachine: {accelerator: {type: nvidia-tesla-t4}}\n"
    assert _body(gpu)["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert _body("container: {image: a}\nmachine: {type: g2-standard-8}\n")["scheduling"][
        "onHostMaintenance"] == "TERMINATE"


@pytest.mark.parametrize(("region", "zone"), [("europe-west1", "europe-west1-b"),
                                              ("us-east1", "us-east1-b"),
                                              ("us-central1", "us-central1-a")])
def test_the_default_zone_exists_in_the_region(region, zone):
    assert load_spec_text(f"container: {{image: a}}\nlocation: {region}\n").data["zone"] == zone


@pytest.mark.parametrize(("text", "field", "words"), [
    ("location: europe-west1\nzone: europe-west1-a\n", "zone", "does not exist"),
    ("location: europe-west1\nzone: us-central1-a\n", "zone", "not in the location's region"),
    ("location: us-centrl1\n", "location", "did you mean 'us-central1'"),
    ("machine: {type: e2-standard-4, accelerator: {type: nvidia-tesla-t4}}\n",
     "machine.accelerator", "n1-standard"),
    ("machine: {type: n1-standard-8, accelerator: {type: nvidia-tesla-a100}}\n",
     "machine.accelerator.type", "a2-highgpu-1g"),
    ("machine: {type: n1-standard-8, accelerator: {type: nvidia-tesla-t4, count: 3}}\n",
     "machine.accelerator.count", "1 or 2 or 4"),
    ("machine: {type: n1-standard-8, accelerator: {type: nvidia-tesla-t4, count: 8}}\n",
     "machine.accelerator.count", "1 or 2 or 4"),
    ("machine: {type: a2-highgpu-2g, accelerator: {type: nvidia-tesla-a100, count: 1}}\n",
     "machine.accelerator", "2x nvidia-tesla-a100 built in"),
    ("machine: {type: n1-standard-8, accelerator: {type: nvidia-tesla-k80}}\n",
     "machine.accelerator.type", "nvidia-tesla-t4"),
    ("machine: {type: m2-ultramem-208, spot: true}\n", "machine.spot", "Spot"),
])
def test_pairs_compute_engine_refuses_are_named_with_a_valid_one(text, field, words):
    err = _error("container: {image: a}\n" + text)
    assert err.location.field == field and words in str(err), str(err)
    assert err.location.line >= 2


def test_accepted_pairs_and_built_in_gpus():
    body = _body("container: {image: a}\nmachine: {type: a2-highgpu-2g}\n")
    assert "guestAccelerators" not in body
    assert _metadata(body)["wfgen-accelerator-count"] == "2"
    body = _body("container: {image: a}\n"
                 "machine: {type: n1-highmem-8, accelerator: {type: nvidia-tesla-v100, "
                 "count: 8}, spot: true}\n")
    assert body["guestAccelerators"][0]["acceleratorCount"] == 8
    assert _metadata(body)["wfgen-accelerator-count"] == "8"
    body = _body("container: {image: a}\nmachine: {type: g2-standard-48, "
                 "accelerator: {type: nvidia-l4, count: 4}}\n")
    assert "guestAccelerators" not in body and _metadata(body)["wfgen-accelerator-count"] == "4"


def test_the_examples_deploy_as_written():
    """Every example passes the placement checks and boots from its image family."""
    for path in EXAMPLES:
        body = _body(path.read_text())
        assert body["disks"][0]["initializeParams"]["sourceImage"] == (
            "projects/cos-cloud/global/images/family/cos-stable")


@pytest.mark.parametrize("mtype", ["n1-superfast-9", "x9-standard-4", "n1-standard", "e2-"])
def test_machine_types_compute_engine_does_not_have_are_refused(mtype: str) -> None:
    from wfgen.job.machines import type_problem

    assert type_problem(mtype) is not None


@pytest.mark.parametrize("mtype", ["e2-micro", "e2-standard-4", "n1-custom-4-5120",
                                   "a2-highgpu-1g", "a3-megagpu-8g", "g2-standard-8",
                                   "c3-standard-4-lssd", "m1-ultramem-40", "c4a-highcpu-8",
                                   "e2-custom-medium-4096", "n2d-highcpu-224"])
def test_real_machine_types_pass(mtype: str) -> None:
    from wfgen.job.machines import type_problem

    assert type_problem(mtype) is None
