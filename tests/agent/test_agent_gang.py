"""The startup script's part in a multi-node job (gang_env): the node metadata
becomes the container's WFGEN_NODE_* environment, exactly; a job without it
gets none; bad node metadata is reported, never run."""

from __future__ import annotations

import pytest

from tests.agent.agentbed import Bed, only_report

MASTER = "train-0d9fe4cedff6-2-0.us-central1-a.c.my-proj.internal"


def node(bed: Bed, rank: str = "2", count: str = "4", master: str = MASTER,
         port: str = "29500") -> None:
    for key, value in (("wfgen-node-rank", rank), ("wfgen-num-nodes", count),
                       ("wfgen-master-addr", master), ("wfgen-master-port", port)):
        bed.md.set_attribute(key, value)


IDENTITY = ("WFGEN_EXECUTION_ID", "WFGEN_ATTEMPT", "WFGEN_RESTARTS", "WFGEN_CHECKPOINT_DIR")


def env_of_run(bed: Bed) -> dict[str, str]:
    """The WFGEN_ variables of `docker run` but the run identity every job gets."""
    run = bed.calls("docker", "run")[0]
    pairs = [a.removeprefix("--env=") for a in run if a.startswith("--env=WFGEN_")]
    found = dict(pair.split("=", 1) for pair in pairs)
    return {k: v for k, v in found.items() if k not in IDENTITY}


def test_the_nodes_part_reaches_the_container(bed: Bed) -> None:
    node(bed)
    bed.job(["sh", "-c", "exit 0"], accelerators=2)
    proc = bed.run()
    assert only_report(bed)["status"] == "succeeded", proc.log
    hosts = "\n".join(f"train-0d9fe4cedff6-2-{r}.us-central1-a.c.my-proj.internal"
                      for r in range(4))
    assert env_of_run(bed) == {
        "WFGEN_NODE_RANK": "2", "WFGEN_NUM_NODES": "4", "WFGEN_MASTER_ADDR": MASTER,
        "WFGEN_MASTER_PORT": "29500", "WFGEN_NODE_HOSTS": hosts, "WFGEN_GPUS_PER_NODE": "2"}
    assert "node 2 of 4" in proc.log


def test_a_local_run_puts_every_node_on_one_address(bed: Bed) -> None:
    node(bed, rank="0", count="3")
    bed.run(WFGEN_NODE_ADDRESS="127.0.0.1")
    env = env_of_run(bed)
    assert env["WFGEN_MASTER_ADDR"] == "127.0.0.1"
    assert env["WFGEN_NODE_HOSTS"] == "127.0.0.1\n127.0.0.1\n127.0.0.1"


def test_a_single_job_gets_no_node_environment(bed: Bed) -> None:
    bed.run()
    assert only_report(bed)["status"] == "succeeded"
    assert env_of_run(bed) == {}


@pytest.mark.parametrize(("field", "value"), [
    ("rank", "4"), ("rank", "-1"), ("rank", "08"), ("count", "x"), ("port", "29500; id"),
    ("master", "$(id)-0.zone.internal"), ("master", "node-1.zone.internal"),
])
def test_bad_node_metadata_is_reported_not_run(bed: Bed, field: str, value: str) -> None:
    node(bed, **{field: value})
    bed.run()
    report = only_report(bed)
    assert report["status"] == "error" and report["exit_code"] == 125, report
    assert bed.calls("docker", "run") == []
