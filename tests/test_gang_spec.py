"""Multi-node jobs in the job spec and the generated workflow: `nodes` and
`master_port` checked with located messages, `nodes` exclusive with `tasks`, the
step budget of N nodes, and the workflow: one insert per node with its rank,
node 0's zonal DNS name as the master, the single-VM path untouched."""

from __future__ import annotations

import json

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT
from tests.test_render import SCHEMA, steps_by_name
from wfgen.errors import SpecError
from wfgen.job import gang
from wfgen.job.render import render_workflow
from wfgen.job.schema import json_schema
from wfgen.job.spec import load_spec, load_spec_text

_yaml = YAML(typ="safe", pure=True)
BASE = "container:\n  image: alpine\ntimeout: 1h\nheartbeat: 1m\n"


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "job.yaml")
    return info.value


@pytest.mark.parametrize(("extra", "line", "field", "words"), [
    ("nodes: 65\n", 5, "nodes", "at most 64"),
    ("nodes: 0\n", 5, "nodes", "at least 1"),
    ("nodes: two\n", 5, "nodes", "expected an integer"),
    ("nodes: 4\nmaster_port: 80\n", 6, "master_port", "at least 1024"),
    ("nodes: 4\nmaster_port: 70000\n", 6, "master_port", "at most 65535"),
    ("nodes: 4\ntasks: {count: 3}\n", 5, "nodes", "cannot be combined"),
    ("nodes: 2\nzone: [us-central1-a, us-central1-b]\n", 6, "zone", "one zone"),
    ("nodes: 2\nmachine: {type: n1-standard-4, spot: true}\n"
     "fallback: [{provisioning: standard}]\n", 7, "fallback", "one machine choice"),
])
def test_node_fields_are_checked_with_their_line(extra, line, field, words):
    err = error_of(BASE + extra)
    assert err.location is not None
    assert (err.location.line, err.location.field) == (line, field), str(err)
    assert words in str(err)


def test_defaults_are_one_node_and_port_29500():
    spec = load_spec_text(BASE, "job.yaml")
    assert spec.data["nodes"] == 1 and spec.data["master_port"] == 29500
    properties = json_schema()["properties"]
    assert properties["nodes"]["maximum"] == 64 and properties["master_port"]["default"] == 29500


def test_too_many_heartbeats_for_64_nodes_is_refused_with_a_heartbeat_that_fits():
    err = error_of("container:\n  image: alpine\nnodes: 64\ntimeout: 7d\nheartbeat: 10m\n")
    assert err.location is not None and err.location.field == "heartbeat"
    assert "64 nodes" in str(err) and "use a heartbeat of at least" in str(err)
    shortest = str(err).rsplit("at least ", 1)[1]
    fixed = load_spec_text(f"container:\n  image: alpine\nnodes: 64\ntimeout: 7d\n"
                           f"heartbeat: {shortest}\n", "job.yaml")
    assert gang.worst_steps(64, 2, fixed.timeout_s, fixed.heartbeat_s) <= gang.STEP_BUDGET


def test_one_node_renders_exactly_the_single_vm_workflow():
    assert render_workflow(load_spec_text(BASE + "nodes: 1\n", "job.yaml")) == \
        render_workflow(load_spec_text(BASE, "job.yaml"))
    assert "run_gang" not in render_workflow(load_spec_text(BASE, "job.yaml"))


def gang_workflow(extra: str = "") -> dict:
    return _yaml.load(render_workflow(load_spec_text(
        "name: train\nproject: my-proj\ncontainer:\n  image: alpine\ntimeout: 1h\n"
        "heartbeat: 1m\nnodes: 4\nmaster_port: 29600\n" + extra, "job.yaml")))


def test_the_gang_workflow_matches_the_independent_schema_and_calls_run_gang():
    wf = gang_workflow()
    assert not list(jsonschema.Draft7Validator(SCHEMA).iter_errors(wf))
    assert "run_job" not in wf and {"run_gang", "delete_nodes", "delete_vm"} <= set(wf)
    assert steps_by_name(wf["main"]["steps"])["run"]["call"] == "run_gang"


def test_each_node_is_inserted_with_its_rank_and_node_0_is_the_master():
    wf = gang_workflow("labels: {team: ml}\n")
    create = steps_by_name(wf["run_gang"]["steps"])["create_vms"]["parallel"]
    assert create["for"]["range"] == [0, 3] and create["concurrency_limit"] == 4
    insert = create["for"]["steps"][0]["create_vm"]["args"]
    body = insert["body"]
    assert body["name"] == '${vm_base + "-" + string(attempt) + "-" + string(node)}'
    assert body["labels"]["wfgen-node"] == "${string(node)}"
    assert body["labels"]["team"] == "ml"
    meta = {item["key"]: item["value"] for item in body["metadata"]["items"]}
    assert meta["wfgen-num-nodes"] == "4" and meta["wfgen-master-port"] == "29600"
    assert meta["wfgen-node-rank"] == "${string(node)}"
    assert meta["wfgen-master-addr"] == ('${vm_base + "-" + string(attempt) + "-0" + '
                                         '".us-central1-a.c." + "my-proj" + ".internal"}')
    assert meta["startup-script"].startswith("#!/bin/bash")


def test_vm_names_of_a_long_job_name_fit_compute_engine_with_two_digit_ranks():
    wf = _yaml.load(render_workflow(load_spec_text(
        f"name: {'n' * 63}\ncontainer:\n  image: alpine\nnodes: 64\ntimeout: 1h\n"
        "heartbeat: 5m\n", "job.yaml")))
    prefix = json.loads(wf["main"]["steps"][1]["run"]["args"]["vm_base"][2:].split(" + ")[0])
    assert len(prefix) + 12 + len("-100-63") <= 63


def test_the_torchrun_example_is_a_two_node_gpu_job():
    spec = load_spec(ROOT / "examples" / "torchrun.yaml")
    assert spec.data["nodes"] == 2 and spec.data["machine"]["accelerator"]["count"] == 4
    wf = _yaml.load(render_workflow(spec))
    assert "--master_addr=\"$WFGEN_MASTER_ADDR\"" in spec.data["container"]["script"]
    body = steps_by_name(wf["run_gang"]["steps"])["create_vms"]["parallel"]["for"]["steps"][0][
        "create_vm"]["args"]["body"]
    assert body["guestAccelerators"][0]["acceleratorCount"] == 4


def test_a_node_is_inserted_like_a_single_jobs_vm_plus_its_part():
    """The gang's insert body (its own copy in templates/gang.yaml.j2) carries every
    field and metadata key of the single job's, whatever the spec uses."""
    from tests.test_render import insert_step

    every = ("project: my-proj\ncontainer:\n  image: alpine\n  env: {A: b}\n"
             "  secret_env: {TOKEN: my-token}\nmachine:\n  type: n1-standard-8\n  spot: true\n"
             "  accelerator: {type: nvidia-tesla-t4, count: 2}\nnetwork:\n  subnetwork: sub\n"
             "  tags: [ssh]\nservice_account: runner@my-proj.iam.gserviceaccount.com\n"
             "labels: {team: ml}\ntimeout: 1h\nheartbeat: 1m\n")
    single = insert_step(_yaml.load(render_workflow(load_spec_text(every, "job.yaml"))))
    node = insert_step(_yaml.load(render_workflow(load_spec_text(every + "nodes: 2\n",
                                                                 "job.yaml"))))
    one, many = single["args"]["body"], node["args"]["body"]
    assert set(one) == set(many)
    for key in ("machineType", "scheduling", "disks", "guestAccelerators", "networkInterfaces",
                "tags", "serviceAccounts"):
        assert one[key] == many[key], key
    assert set(many["labels"]) == set(one["labels"]) | {"wfgen-node"}
    keys = [item["key"] for item in one["metadata"]["items"]]
    node_keys = [item["key"] for item in many["metadata"]["items"]]
    assert node_keys == [*keys, "wfgen-node-rank", "wfgen-num-nodes", "wfgen-master-addr",
                         "wfgen-master-port"]
    assert "wfgen-secret-env" in keys


def test_a_report_delivered_twice_counts_once_and_the_job_waits_for_every_node():
    """The generated workflow on wfgen's engine with scripted callbacks: node 1's
    report arrives twice (a retry after a lost answer); the job still waits for
    node 2, and every node's VM is deleted once it reported."""
    import threading

    from tests.engine.enginetest import run

    text = render_workflow(load_spec_text(
        "name: dup\nproject: my-proj\ncontainer:\n  image: alpine\ntimeout: 1h\n"
        "heartbeat: 1m\nnodes: 3\n", "job.yaml"))
    inserted: list[str] = []
    deleted: list[str] = []
    reports: list[str] = []
    lock = threading.Lock()

    def insert(rt, connector_params=None, **args):
        with lock:
            inserted.append(args["body"]["name"])
        return {"status": "DONE"}

    def delete(rt, connector_params=None, **args):
        deleted.append(args["instance"])
        return {"status": "RUNNING"}

    def await_callback(rt, connector_params=None, **args):
        base = inserted[0].rsplit("-", 1)[0]
        rank = ["0", "1", "1", "2"][len(reports)]
        reports.append(rank)
        return {"http_request": {"body": {"status": "succeeded", "exit_code": 0,
                                          "instance": f"{base}-{rank}",
                                          "output_tail": f"node {rank}"}}}

    connectors = {
        "events.create_callback_endpoint": lambda rt, connector_params=None, **a: {"url": "u"},
        "events.await_callback": await_callback,
        "googleapis.compute.v1.instances.insert": insert,
        "googleapis.compute.v1.instances.delete": delete,
    }
    result = run(text, None, connectors=connectors)
    assert result.state == "SUCCEEDED", result.error
    assert reports == ["0", "1", "1", "2"]
    assert [node["status"] for node in result.result["nodes"]] == ["succeeded"] * 3
    assert result.result["output_tail"] == "node 0"
    assert sorted(set(deleted)) == sorted(inserted) and len(inserted) == 3
