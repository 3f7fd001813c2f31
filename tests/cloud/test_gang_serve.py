"""A multi-node job through `wfgen serve`, driven as a user would: `wfgen run`
against serve (the real Google clients), the real `gcloud` listing the job's N
instances, and `wfgen cancel` deleting every one of them."""

from __future__ import annotations

import json
import re
import signal

import pytest

from tests.cloud.serve_cli import GCLOUD, PROJECT, Serve
from tests.local.test_gang_local import RENDEZVOUS, free_port

pytestmark = pytest.mark.xdist_group("gang_serve")
WORKFLOWS = f"projects/{PROJECT}/locations/us-central1/workflows"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("gang-serve")).start()
    yield server
    assert server.stop() == 0, "\n".join(server.lines[-40:])


def gang_spec(path, name: str, container: dict, nodes: int = 4) -> str:
    spec = {"name": name, "container": {"image": "alpine:3.20", **container}, "nodes": nodes,
            "master_port": free_port(), "timeout": "10m", "heartbeat": "1m", "retries": 0}
    path.write_text(json.dumps(spec), encoding="utf-8")
    return str(path)


def test_four_nodes_rendezvous_through_serve(serve: Serve, tmp_path):
    spec = gang_spec(tmp_path / "ring.yaml", "ring", {"command": ["python3", "-c", RENDEZVOUS]})
    done = serve.wfgen("run", spec)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    assert [n["status"] for n in result["nodes"]] == ["succeeded"] * 4
    assert "sum 6" in result["output_tail"]
    assert done.stderr.count("| sum 6") == 4, done.stderr  # every node's console


def test_node_2_exiting_3_makes_run_exit_3_and_leaves_no_vm(serve: Serve, tmp_path):
    script = 'if [ "$WFGEN_NODE_RANK" = 2 ]; then exit 3; fi; sleep 120'
    done = serve.wfgen("run", gang_spec(tmp_path / "fail.yaml", "fail", {"script": script}))
    assert done.returncode == 3, done.stderr
    result = json.loads(done.stdout)
    assert result["rank"] == 2 and result["exit_code"] == 3
    assert all(vm["labels"].get("wfgen-job") != "fail" for vm in serve.vms())


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_gcloud_lists_the_four_nodes_and_cancel_deletes_them_all(serve: Serve, tmp_path):
    spec = gang_spec(tmp_path / "long.yaml", "long", {"script": "echo up; sleep 300"})
    started = serve.wfgen("run", spec, "--detach")
    assert started.returncode == 0, started.stderr
    name = started.stdout.strip()
    assert re.fullmatch(rf"{WORKFLOWS}/long/executions/[0-9a-f-]{{36}}", name), name
    execution_id = name.rsplit("/", 1)[-1]
    serve.wait_for(lambda: len([vm for vm in serve.vms(execution_id)
                                if vm["status"] == "RUNNING"]) == 4, "4 RUNNING nodes")
    listed = serve.gcloud("compute", "instances", "list", "--format=json",
                          f"--filter=labels.wfgen-execution={execution_id}")
    assert listed.returncode == 0, listed.stderr
    instances = json.loads(listed.stdout)
    names = sorted(vm["name"] for vm in instances)
    assert len(names) == 4 and [n.rsplit("-", 1)[1] for n in names] == ["0", "1", "2", "3"]
    assert all(n.startswith("long-") and "-1-" in n[-4:] for n in names)
    assert sorted(vm["labels"]["wfgen-node"] for vm in instances) == ["0", "1", "2", "3"]
    cancelled = serve.wfgen("cancel", name)
    assert cancelled.returncode == 0, cancelled.stderr
    deleted = next(line for line in cancelled.stderr.splitlines() if "deleted " in line)
    assert sorted(deleted.split("deleted ", 1)[1].split(", ")) == names
    assert serve.vms(execution_id) == []
    after = serve.gcloud("compute", "instances", "list", "--format=json",
                         f"--filter=labels.wfgen-execution={execution_id}")
    assert after.returncode == 0 and json.loads(after.stdout) == []


def placement_spec(path, name: str, container: dict, nodes: int = 4) -> str:
    spec = {"name": name, "container": {"image": "alpine:3.20", **container}, "nodes": nodes,
            "master_port": free_port(), "timeout": "10m", "heartbeat": "1m", "retries": 0,
            "placement": "compact", "machine": {"type": "n2-standard-4"}}
    path.write_text(json.dumps(spec), encoding="utf-8")
    return str(path)


def policies(serve: Serve, execution_id: str) -> list[dict]:
    """The execution's placement policies, as `gcloud compute resource-policies list`."""
    listed = serve.gcloud("compute", "resource-policies", "list", "--regions=us-central1",
                          "--format=json")
    assert listed.returncode == 0, listed.stderr
    tag = execution_id.replace("-", "")[:12]
    return [p for p in json.loads(listed.stdout) if f"-{tag}-" in p["name"]]


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_gcloud_lists_the_placement_policy_while_the_nodes_run_and_cancel_deletes_it(
        serve: Serve, tmp_path):
    spec = placement_spec(tmp_path / "near.yaml", "near", {"script": "echo up; sleep 300"})
    started = serve.wfgen("run", spec, "--detach")
    assert started.returncode == 0, started.stderr
    name = started.stdout.strip()
    execution_id = name.rsplit("/", 1)[-1]
    serve.wait_for(lambda: len([vm for vm in serve.vms(execution_id)
                                if vm["status"] == "RUNNING"]) == 4, "4 RUNNING nodes")
    [policy] = policies(serve, execution_id)
    assert policy["groupPlacementPolicy"] == {"collocation": "COLLOCATED", "vmCount": 4}
    assert policy["status"] == "READY" and policy["name"].endswith("-1")
    node = serve.vms(execution_id)[0]
    described = serve.gcloud("compute", "instances", "describe", node["name"],
                             "--zone=us-central1-a", "--format=json")
    assert described.returncode == 0, described.stderr
    assert [p.rsplit("/", 1)[-1] for p in json.loads(described.stdout)["resourcePolicies"]] \
        == [policy["name"]]
    cancelled = serve.wfgen("cancel", name)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"deleted the placement policies {policy['name']}" in cancelled.stderr
    assert serve.vms(execution_id) == [] and policies(serve, execution_id) == []


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_no_placement_policy_is_left_after_a_run_ends(serve: Serve, tmp_path):
    done = serve.wfgen("run", placement_spec(tmp_path / "ok.yaml", "fine", {"script": "echo ok"},
                                             nodes=2))
    assert done.returncode == 0, done.stderr
    failed = serve.wfgen("run", placement_spec(
        tmp_path / "bad.yaml", "broken",
        {"script": 'if [ "$WFGEN_NODE_RANK" = 1 ]; then exit 3; fi; sleep 120'}, nodes=3))
    assert failed.returncode == 3, failed.stderr
    for run in (done, failed):
        nodes = json.loads(run.stdout)["nodes"]
        execution = nodes[0]["instance"].rsplit("-", 3)[1]
        assert len(execution) == 12
        listed = serve.gcloud("compute", "resource-policies", "list",
                              "--regions=us-central1", "--format=json")
        assert listed.returncode == 0, listed.stderr
        assert [p for p in json.loads(listed.stdout) if execution in p["name"]] == []


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
def test_ctrl_c_during_a_placement_run_deletes_the_nodes_and_the_policy(serve: Serve, tmp_path):
    proc = serve.popen("run", placement_spec(tmp_path / "ctrl.yaml", "ctrlc", {
        "script": "echo started-$WFGEN_NODE_RANK; sleep 300"}, nodes=2))
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if sum("| started-" in x for x in seen) == 2:
            break
    name = re.search(r"\((projects/\S+)\)", "".join(seen)).group(1)
    execution_id = name.rsplit("/", 1)[-1]
    [policy] = policies(serve, execution_id)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    code = proc.wait(120)
    stderr = "".join(seen) + rest
    assert code == 128 + signal.SIGINT, stderr
    deleted = next(line for line in rest.splitlines() if "deleted " in line)
    assert policy["name"] in deleted.split("deleted ", 1)[1].split(", ")
    assert serve.vms(execution_id) == [] and policies(serve, execution_id) == []
