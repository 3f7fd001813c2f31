"""The capacity rules (wfgen.job.capacity): zones a job may use, the insert body
blocks of every provisioning model (checked against Google's compute v1
Discovery document: unknown fields and enum values are refused), the ordered
fallback and the plan the workflow walks."""

from __future__ import annotations

import pytest

from tests.discovery import problems
from wfgen.job import capacity, machines

T4 = {"type": "nvidia-tesla-t4", "count": 1}


def _plan(**kw):
    args = {"zone": None, "location": "us-central1", "regions": None,
            "machine": {"type": "n1-standard-8", "accelerator": T4},
            "fallback": None, "timeout_s": 86400}
    args.update(kw)
    return capacity.plan_for(**args)


def _insert_body(choice: capacity.Choice, zone: str = "us-central1-a") -> dict:
    """An instances.insert body with this choice's blocks, as the workflow sends it."""
    body = {
        "name": "job-1", "machineType": f"zones/{zone}/machineTypes/{choice.type}",
        "scheduling": {**capacity.scheduling(choice), "maxRunDuration": {"seconds": 3600}},
        "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
            "sourceImage": "projects/cos-cloud/global/images/family/cos-stable",
            "diskSizeGb": "50"}}],
        "networkInterfaces": [{"network": "global/networks/default"}],
    }
    if choice.attach_gpus:
        body["guestAccelerators"] = [{"acceleratorType": f"zones/{zone}/acceleratorTypes/"
                                      f"{choice.gpu}", "acceleratorCount": choice.gpu_count}]
    affinity = capacity.reservation_affinity(choice)
    if affinity:
        body["reservationAffinity"] = affinity
    params = capacity.instance_params(choice, 86400)
    if params:
        body["params"] = params
    return body


@pytest.mark.parametrize(("machine", "model", "maintenance", "restart", "affinity"), [
    ({"type": "n1-standard-4"}, "STANDARD", "MIGRATE", False, None),
    ({"type": "n1-standard-8", "accelerator": T4}, "STANDARD", "TERMINATE", False, None),
    ({"type": "n1-standard-8", "accelerator": T4, "spot": True}, "SPOT", "TERMINATE", False,
     None),
    ({"type": "g2-standard-8", "provisioning": "flex-start"}, "FLEX_START", "TERMINATE", False,
     "NO_RESERVATION"),
    ({"type": "a3-highgpu-8g", "provisioning": "reservation", "reservation": "h100-pool"},
     "RESERVATION_BOUND", "TERMINATE", True, "SPECIFIC_RESERVATION"),
    ({"type": "n1-standard-8", "accelerator": T4, "reservation": "any"}, "STANDARD",
     "TERMINATE", False, "ANY_RESERVATION"),
    ({"type": "n1-standard-8", "accelerator": T4, "reservation": "t4-pool"}, "STANDARD",
     "TERMINATE", False, "SPECIFIC_RESERVATION"),
])
def test_each_provisioning_model_gives_the_blocks_google_describes(
        machine, model, maintenance, restart, affinity):
    choice = capacity.choices_of(machine, None)[0]
    assert capacity.choice_problem(choice, 86400) is None
    body = _insert_body(choice)
    assert problems(body) == []  # fits the compute v1 Discovery document
    sched = body["scheduling"]
    assert (sched["provisioningModel"], sched["onHostMaintenance"],
            sched["automaticRestart"], sched["instanceTerminationAction"]) == (
        model, maintenance, restart, "DELETE")
    assert body.get("reservationAffinity", {}).get("consumeReservationType") == affinity
    if affinity == "SPECIFIC_RESERVATION":
        assert body["reservationAffinity"]["key"] == "compute.googleapis.com/reservation-name"
        assert body["reservationAffinity"]["values"] == [machine["reservation"]]
    if model == "FLEX_START":
        # the queue wait is Instance.params in v1 (not a scheduling field)
        assert body["params"] == {"requestValidForDuration": {"seconds": "7200"}}
        assert capacity.run_cap_s(choice) == 7 * 86400
    else:
        assert "params" not in body


def test_the_discovery_check_refuses_what_google_would():
    choice = capacity.choices_of({"type": "g2-standard-8", "provisioning": "flex-start"},
                                 None)[0]
    body = _insert_body(choice)
    body["scheduling"]["requestValidForDuration"] = {"seconds": "90"}  # not a v1 field
    body["reservationAffinity"]["consumeReservationType"] = "NONE"
    found = problems(body)
    assert any("requestValidForDuration" in p for p in found)
    assert any("'NONE' is not one of" in p for p in found)


@pytest.mark.parametrize(("machine", "field", "words"), [
    ({"type": "n1-standard-8", "accelerator": T4, "provisioning": "flex-start"},
     "machine.provisioning", "accelerator-optimized"),
    ({"type": "g2-standard-8", "provisioning": "flex-start", "reservation": "r"},
     "machine.reservation", "consume no reservation"),
    ({"type": "a2-highgpu-1g", "provisioning": "reservation"}, "machine.reservation",
     "needs the reservation"),
    ({"type": "a2-highgpu-1g", "provisioning": "reservation", "reservation": "any"},
     "machine.reservation", "one named"),
    ({"type": "n1-standard-8", "spot": True, "reservation": "r"}, "machine.reservation",
     "Spot VMs do not consume"),
    ({"type": "n1-standard-8", "provisioning": "cheap"}, "machine.provisioning",
     "not a provisioning model"),
])
def test_impossible_combinations_name_the_field_and_the_rule(machine, field, words):
    choice = capacity.choices_of(machine, None)[0]
    where, message = capacity.choice_problem(choice, 86400)
    assert (where, words in message) == (field, True), message


def test_flex_start_refuses_a_timeout_over_seven_days():
    choice = capacity.choices_of({"type": "g2-standard-8", "provisioning": "flex-start"},
                                 None)[0]
    assert capacity.choice_problem(choice, 7 * 86400) is None
    where, message = capacity.choice_problem(choice, 8 * 86400)
    assert where == "machine.provisioning" and "7 days" in message


def test_spot_true_and_another_model_conflict():
    with pytest.raises(capacity.CapacityProblem) as info:
        capacity.choices_of({"type": "n1-standard-4", "spot": True,
                             "provisioning": "standard"}, None)
    assert info.value.field == "machine.spot"


def test_zone_any_expands_to_exactly_the_zones_that_offer_the_gpu():
    l4 = _plan(zone="any", machine={"type": "g2-standard-8"})
    assert l4.zones == [["us-central1-a", "us-central1-b", "us-central1-c"]]
    assert "us-central1-f" in machines.zones_of("us-central1")  # the region has four
    t4 = _plan(zone="any")
    assert t4.zones == [["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]]
    cpu = _plan(zone="any", location="europe-west1", machine={"type": "n1-standard-4"})
    assert cpu.zones == [["europe-west1-b", "europe-west1-c", "europe-west1-d"]]


def test_regions_widen_zone_any_in_order():
    plan = _plan(zone="any", machine={"type": "g2-standard-8"}, regions=["europe-west4"])
    assert plan.zones[0] == ["us-central1-a", "us-central1-b", "us-central1-c",
                             "europe-west4-a", "europe-west4-b", "europe-west4-c"]


@pytest.mark.parametrize(("zone", "regions", "words"), [
    (["us-central1-a", "us-east1-b"], None, "not in the allowed regions (us-central1); add "
     "us-east1 to regions"),
    (["us-central1-a", "us-central1-f"], None, "zone us-central1-f does not offer nvidia-l4; "
     "in us-central1 it is offered in us-central1-a, us-central1-b, us-central1-c"),
    (["us-central1-z"], None, "does not exist"),
])
def test_listed_zones_are_checked(zone, regions, words):
    with pytest.raises(capacity.CapacityProblem) as info:
        _plan(zone=zone, regions=regions, machine={"type": "g2-standard-8"})
    assert info.value.field == "zone"
    assert words in info.value.message


def test_zone_any_where_wfgen_does_not_know_the_gpu_asks_for_a_list():
    with pytest.raises(capacity.CapacityProblem) as info:
        _plan(zone="any", location="me-west1", machine={"type": "g2-standard-8"})
    assert "list the zones" in info.value.message


def test_fallback_merges_over_machine_and_orders_the_plan():
    plan = _plan(zone=["us-central1-a", "us-central1-f"],
                 machine={"type": "n1-standard-8", "accelerator": T4, "spot": True},
                 fallback=[{"provisioning": "standard"},
                           {"type": "g2-standard-8", "accelerator": None}])
    labels = [c.label for c in plan.choices]
    assert labels == ["n1-standard-8 + 1 x nvidia-tesla-t4 (spot)",
                      "n1-standard-8 + 1 x nvidia-tesla-t4 (standard)",
                      "g2-standard-8 (spot)"]  # merged over machine, not the one before
    # g2 (L4) is not offered in us-central1-f: that fallback skips it
    assert plan.entries == [("us-central1-a", 0), ("us-central1-f", 0),
                            ("us-central1-a", 1), ("us-central1-f", 1), ("us-central1-a", 2)]
    assert plan.failover
    assert capacity.next_zone(plan) == [1, 0, 3, 2, 4]
    assert capacity.slot_of(plan)["us-central1-f/1"] == 3
    assert "1. n1-standard-8 + 1 x nvidia-tesla-t4 (spot): us-central1-a, us-central1-f" in (
        plan.order_text())


def test_a_single_zone_and_choice_has_nowhere_to_fail_over():
    assert not _plan().failover
    assert _plan().entries == [("us-central1-a", 0)]


def test_workflow_plan_carries_the_zone_dependent_parts():
    plan = _plan(zone=["us-central1-a", "us-central1-b"])
    entries = capacity.workflow_plan(plan)
    assert entries[1] == {
        "zone": "us-central1-b", "choice": 0, "region": "us-central1",
        "machineType": "zones/us-central1-b/machineTypes/n1-standard-8",
        "guestAccelerators": [{"acceleratorType":
                               "zones/us-central1-b/acceleratorTypes/nvidia-tesla-t4",
                               "acceleratorCount": 1}]}
    choice = capacity.workflow_choices(plan, 3600)[0]
    assert choice["label"] == "n1-standard-8 + 1 x nvidia-tesla-t4 (standard)"
    assert choice["params"] == {}


# ---------------------------------------------------------------------------
# Through the job spec: errors name file, line and field; the rendered insert
# fits Google's API description; validate prints the order of tries.

def _spec_error(text: str):
    from wfgen.errors import SpecError
    from wfgen.job.spec import load_spec_text

    with pytest.raises(SpecError) as info:
        load_spec_text("container: {image: a}\n" + text, "job.yaml")
    return info.value


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("machine:\n  type: n1-standard-8\n  provisioning: flex-start\n", 4, "machine.provisioning",
     "accelerator-optimized"),
    ("machine: {type: g2-standard-8}\nzone: [us-central1-a, us-central1-f]\n", 3, "zone",
     "does not offer nvidia-l4"),
    ("zone: [us-central1-a, europe-west1-b]\n", 2, "zone", "add europe-west1 to regions"),
    ("machine: {type: g2-standard-8, spot: true}\nfallback:\n  - {provisioning: reservation}\n",
     4, "fallback[0].reservation", "needs the reservation"),
    ("fallback:\n  - {provisioning: cheap}\n", 3, "fallback[0].provisioning",
     "not a provisioning model"),
    ("fallback:\n  - {typo: 1}\n", 3, "fallback[0].typo", "did you mean 'type'"),
    ("zone: [mars, us-central1-a]\n", 2, "zone", "'mars' must be a zone"),
])
def test_spec_mistakes_are_located(text, line, field, words):
    error = _spec_error(text)
    assert (error.location.line, error.location.field) == (line, field), str(error)
    assert words in str(error)


def _create_vm(spec_text: str) -> dict:
    from ruamel.yaml import YAML

    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec_text

    tree = YAML(typ="safe").load(render_workflow(load_spec_text(spec_text, "job.yaml")))
    return tree["run_job"]["steps"][0]["run_attempt"]["try"]["steps"][1]["create_vm"]["args"]


@pytest.mark.parametrize(("machine", "model"), [
    ("{type: n1-standard-8, accelerator: {type: nvidia-tesla-t4}}", "STANDARD"),
    ("{type: n1-standard-8, spot: true}", "SPOT"),
    ("{type: a2-highgpu-1g, provisioning: flex-start}", "FLEX_START"),
    ("{type: a3-highgpu-8g, provisioning: reservation, reservation: pool}", "RESERVATION_BOUND"),
    ("{type: g2-standard-8, reservation: any}", "STANDARD"),
])
def test_a_single_zone_insert_fits_the_discovery_document(machine, model):
    args = _create_vm(f"container: {{image: a}}\ntimeout: 1d\nmachine: {machine}\n")
    body = args["body"]
    assert body["scheduling"]["provisioningModel"] == model
    assert problems(body) == []  # expressions are strings: int64 and string fields take them


def test_a_failover_insert_reads_the_plan_and_each_entry_fits():
    spec = ("container: {image: a}\nmachine: {type: g2-standard-8, spot: true}\nzone: any\n"
            "fallback: [{provisioning: flex-start}]\n")
    args = _create_vm(spec)
    assert args["zone"] == "${failover.at.zone}"
    from wfgen.job.spec import load_spec_text

    loaded = load_spec_text(spec, "job.yaml")
    plan = capacity.workflow_plan(loaded.plan)
    choices = capacity.workflow_choices(loaded.plan, loaded.timeout_s)
    body = {k: v for k, v in args["body"].items() if not str(v).startswith("${")}
    for entry in plan:  # the body each try sends, as the workflow builds it
        choice = choices[entry["choice"]]
        sent = {**body, "machineType": entry["machineType"],
                "guestAccelerators": entry["guestAccelerators"],
                "scheduling": {**choice["scheduling"], "maxRunDuration": {"seconds": "600"}},
                "reservationAffinity": choice["reservationAffinity"],
                "params": choice["params"]}
        assert problems(sent) == [], entry


def test_validate_prints_the_order_of_tries(tmp_path):
    import subprocess
    import sys

    job = tmp_path / "job.yaml"
    job.write_text("container: {image: a}\nmachine: {type: g2-standard-8, spot: true}\n"
                   "zone: any\nfallback: [{provisioning: flex-start}]\n")
    run = subprocess.run([sys.executable, "-m", "wfgen", "validate", str(job)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert ("  1. g2-standard-8 (spot): us-central1-a, us-central1-b, us-central1-c\n"
            "  2. g2-standard-8 (flex-start): us-central1-a, us-central1-b, us-central1-c"
            ) in run.stdout  # all of validate's output goes to stdout


def test_a_long_plan_pauses_longer_between_rounds_to_fit_the_step_limit():
    short = _plan(zone=["us-central1-a", "us-central1-b"])
    assert capacity.round_pause_s(short, 86400, 600) == 600  # a heartbeat is enough
    long = _plan(zone="any", regions=["us-east1", "us-east4", "us-west1"],
                 fallback=[{"provisioning": "standard"}])
    pause = capacity.round_pause_s(long, 7 * 86400, 600)
    assert pause > 600
    per_round = capacity.STEPS_PER_FAILOVER * len(long.entries) + 1
    assert (7 * 86400 // pause + 1) * per_round <= capacity.FAILOVER_STEP_BUDGET + per_round


def test_each_running_task_counts_its_failover_state_against_the_memory_limit():
    from wfgen.job import budget
    from wfgen.job.spec import load_spec_text

    base = "container: {image: a}\nmachine: {type: g2-standard-8}\ntasks: {count: 20}\n"
    plain = load_spec_text(base, "job.yaml")
    failover = load_spec_text(base + "zone: any\nfallback: [{provisioning: flex-start}]\n",
                              "job.yaml")
    extra = budget.plan(failover).memory - budget.plan(plain).memory
    assert extra >= 20 * capacity.state_bytes(failover.plan)
    assert capacity.state_bytes(plain.plan) == 0


def test_a_failover_try_names_its_reservation_affinity():
    plan = _plan(zone=["us-central1-a", "us-central1-b"],
                 machine={"type": "n1-standard-8", "accelerator": T4, "spot": True},
                 fallback=[{"provisioning": "standard"},
                           {"type": "g2-standard-8", "provisioning": "flex-start"}])
    kinds = [c["reservationAffinity"]["consumeReservationType"]
             for c in capacity.workflow_choices(plan, 3600)]
    assert kinds == ["NO_RESERVATION", "ANY_RESERVATION", "NO_RESERVATION"]
