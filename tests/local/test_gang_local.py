"""Multi-node jobs (`nodes: N`) end to end through `wfgen run --local`: N local
VMs whose containers really meet over TCP at WFGEN_MASTER_ADDR:WFGEN_MASTER_PORT,
gang semantics (the first failure ends every node; a preempted node restarts
all of them; an insert failure of node k deletes nodes 0..k-1) and the billed
steps of the success path. Every run also checks that no process of a local VM
survives it (run_local)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.local.test_run_local import FAST, ON_HOST, _billed, result_of, run_local, vm_processes

pytestmark = pytest.mark.xdist_group("run_local")

# Each rank sends its rank to rank 0, which answers every node with the sum:
# with 4 nodes, every node prints "sum 6".
RENDEZVOUS = r"""
import os, socket, time
rank = int(os.environ["WFGEN_NODE_RANK"])
n = int(os.environ["WFGEN_NUM_NODES"])
addr, port = os.environ["WFGEN_MASTER_ADDR"], int(os.environ["WFGEN_MASTER_PORT"])
hosts = os.environ["WFGEN_NODE_HOSTS"].split("\n")
print(f"rank {rank} of {n}, {len(hosts)} hosts, gpus {os.environ['WFGEN_GPUS_PER_NODE']}")
if rank == 0:
    server = socket.create_server((addr, port))
    server.settimeout(60)
    total, peers = 0, []
    for _ in range(n - 1):
        peer, _ = server.accept()
        total += int(peer.recv(16))
        peers.append(peer)
    for peer in peers:
        peer.sendall(str(total).encode())
        peer.close()
    print("sum", total, flush=True)
else:
    deadline = time.time() + 60
    while True:
        try:
            conn = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    conn.sendall(str(rank).encode())
    print("sum", conn.recv(16).decode(), flush=True)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gang_job(tmp_path: Path, container: dict, nodes: int = 4, **extra) -> Path:
    spec = {"name": "gang", "container": {"image": "alpine:3.20", **container},
            "nodes": nodes, "master_port": free_port(), "timeout": "5m", "heartbeat": "1s",
            "retries": 0, **extra}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def created(stderr: str) -> list[str]:
    return re.findall(r"VM (\S+) created", stderr)


def deleted(stderr: str) -> list[str]:
    return re.findall(r"VM (\S+) deleted", stderr)


def test_four_nodes_rendezvous_over_tcp_and_every_node_prints_the_sum(tmp_path):
    job = gang_job(tmp_path, {"command": ["python3", "-c", RENDEZVOUS]}, heartbeat="1m")
    run = run_local(tmp_path, job, "--stats")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["status"] == "succeeded" and result["exit_code"] == 0
    assert result["attempts"] == 1 and result["rank"] is None
    names = [node["instance"] for node in result["nodes"]]
    assert [node["rank"] for node in result["nodes"]] == [0, 1, 2, 3]
    assert all(node["status"] == "succeeded" and node["exit_code"] == 0
               for node in result["nodes"])
    assert names == [f"{names[0][:-2]}-{rank}" for rank in range(4)]
    assert names[0].endswith("-1-0") and result["instance"] == names[0]
    for name in names:  # every node printed the sum, on its own console
        assert f"{name} | sum 6" in run.stderr
        assert f"{name} | rank {name[-1]} of 4, 4 hosts, gpus 0" in run.stderr
    assert "sum 6" in result["output_tail"] and "rank 0 of 4" in result["output_tail"]
    assert sorted(created(run.stderr)) == sorted(deleted(run.stderr)) == sorted(names)
    # 11 for one VM, 4 more per further node (no heartbeat within 1m)
    assert _billed(run.stderr) <= 11 + 4 * 3, run.stderr


@pytest.mark.parametrize("nodes", [2, 3])
def test_billed_steps_of_the_success_path(tmp_path, nodes):
    run = run_local(tmp_path, gang_job(tmp_path, {"script": "true"}, nodes=nodes,
                                       heartbeat="1m"), "--stats")
    assert run.returncode == 0, run.stderr
    assert _billed(run.stderr) == 11 + 4 * (nodes - 1), run.stderr


def test_node_2_exiting_3_fails_the_job_naming_rank_2_and_deletes_every_node(tmp_path):
    script = ('if [ "$WFGEN_NODE_RANK" = 2 ]; then echo node-two-gives-up; exit 3; fi; '
              'echo "waiting $WFGEN_NODE_RANK"; sleep 60')
    run = run_local(tmp_path, gang_job(tmp_path, {"script": script}, retries=1))
    assert run.returncode == 3, run.stderr
    result = result_of(run)
    assert result["status"] == "failed" and result["exit_code"] == 3
    assert result["rank"] == 2 and result["instance"].endswith("-1-2")
    assert result["attempts"] == 1  # a failure is not retried
    assert "node 2" in result["message"] and "node-two-gives-up" in result["output_tail"]
    statuses = {node["rank"]: node["status"] for node in result["nodes"]}
    assert statuses == {0: "stopped", 1: "stopped", 2: "failed", 3: "stopped"}
    assert len(created(run.stderr)) == 4
    assert sorted(deleted(run.stderr)) == sorted(created(run.stderr))
    # the others were stopped, not waited for (they sleep 60 s)
    assert "sleep" not in result["message"]


def test_preempting_node_1_restarts_all_four_with_attempt_2(tmp_path):
    script = 'echo "node $WFGEN_NODE_RANK"; sleep 4'
    job = gang_job(tmp_path, {"script": script}, retries=1, machine={"spot": True})
    run = run_local(tmp_path, job, "--fault", "preempt@1500ms,node=1")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["status"] == "succeeded" and result["attempts"] == 2
    assert "preempted (fault injection)" in run.stderr
    first = [name for name in created(run.stderr) if "-1-" in name[-4:]]
    second = [name for name in created(run.stderr) if "-2-" in name[-4:]]
    assert len(first) == 4 and len(second) == 4
    assert run.stderr.count("created (attempt 2)") == 4
    assert sorted(node["instance"] for node in result["nodes"]) == sorted(second)
    assert sorted(deleted(run.stderr)) == sorted(first + second)


def test_an_insert_failure_of_node_3_deletes_nodes_0_to_2(tmp_path):
    run = run_local(tmp_path, gang_job(tmp_path, {"script": "echo up; sleep 60"}),
                    "--fault", "insert-fail,node=3")
    assert run.returncode == 125, run.stderr
    assert "QUOTA_EXCEEDED" in run.stderr
    made = created(run.stderr)
    assert sorted(name[-1] for name in made) == ["0", "1", "2"]
    assert sorted(deleted(run.stderr)) == sorted(made)


def test_a_lost_node_ends_the_attempt_for_all_and_a_new_one_starts(tmp_path):
    job = gang_job(tmp_path, {"script": "sleep 5; echo ok"}, nodes=3, retries=1)
    run = run_local(tmp_path, job, "--fault", "vanish@1s,node=2")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["attempts"] == 2 and result["status"] == "succeeded"
    assert '"status": "lost"' in run.stderr and "node 2" in run.stderr
    assert len(created(run.stderr)) == 6


def test_ctrl_c_deletes_all_four_nodes(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    job = gang_job(tmp_path, {"script": "echo started-$WFGEN_NODE_RANK; sleep 60"}, retries=2)
    proc = subprocess.Popen([*ON_HOST, str(job)], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **FAST, "TMPDIR": str(scratch)})
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if sum("| started-" in x for x in seen) == 4:
            break
    assert len(vm_processes(scratch)) > 0
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=30)
    assert proc.returncode == 130, "".join(seen) + rest
    stderr = "".join(seen) + rest
    assert sorted(deleted(stderr)) == sorted(created(stderr)) and len(created(stderr)) == 4
    assert json.loads(out)["status"] == "cancelled"
    assert vm_processes(scratch) == [] and list(scratch.iterdir()) == []


def test_the_whole_job_timeout_deletes_every_node(tmp_path):
    job = gang_job(tmp_path, {"script": "echo working; sleep 60"}, nodes=3, timeout="4s")
    run = run_local(tmp_path, job)
    assert run.returncode == 125, run.stderr
    result = result_of(run)
    assert result["status"] == "timeout" and result["rank"] is None
    assert [node["status"] for node in result["nodes"]] == ["stopped"] * 3
    assert len(created(run.stderr)) == 3
    assert sorted(deleted(run.stderr)) == sorted(created(run.stderr))


def test_each_heartbeat_costs_4_plus_2_steps_per_node(tmp_path):
    run = run_local(tmp_path, gang_job(tmp_path, {"script": "sleep 3"}, nodes=2), "--stats")
    assert run.returncode == 0, run.stderr
    extra = _billed(run.stderr) - (11 + 4)
    assert extra > 0 and extra % (4 + 2 * 2) == 0, run.stderr


def test_refused_callbacks_still_deliver_every_nodes_report(tmp_path):
    run = run_local(tmp_path, gang_job(tmp_path, {"script": "echo fine"}, nodes=3),
                    "--fault", "refuse-callbacks=4")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert [node["status"] for node in result["nodes"]] == ["succeeded"] * 3
