"""A multi-node job through `wfgen serve`, driven as a user would: `wfgen run`
against serve (the real Google clients), the real `gcloud` listing the job's N
instances, and `wfgen cancel` deleting every one of them."""

from __future__ import annotations

import json
import re

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
