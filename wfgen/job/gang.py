"""A multi-node job (`nodes: N`): one container on N VMs that start, run and end
together (a "gang"), as distributed training needs (torchrun, JAX).

The generated workflow (templates/gang.yaml.j2) runs every attempt on N VMs
named NAME-EXECUTION-ATTEMPT-RANK, all reporting to one callback endpoint; the
names are known before any VM exists, so node 0's address is too: its zonal
internal DNS name `VM.ZONE.c.PROJECT.internal`. This module holds the step
figures of that workflow (what fits in one execution) and the values the
template needs; the figures are counted from the template, and
tests/local/test_gang_local.py runs it and checks them."""

from __future__ import annotations

import math
from typing import Any

from wfgen.job.model import JobSpec
from wfgen.limits import MAX_CONCURRENT_BRANCHES, MAX_STEPS

# Billed steps of a successful N-node run: main's 3, then per attempt the try, the
# callback, the parallel insert and the return (4), and per node its insert, its
# report's wait, its delete and the check of its report (4): 7 + 4N, which is the
# single job's 11 plus 4 per further node.
STEPS_FIXED = 7
STEPS_PER_NODE = 4
# A heartbeat wake: the wait, the timeout check, the loop, the all-alive switch,
# and per node a get and a switch.
STEPS_PER_BEAT = 4
STEPS_PER_BEAT_NODE = 2
# A failed or retried attempt beyond the success path: its end, every node's
# delete through delete_vm, the names of the nodes, the decision and the retry.
STEPS_PER_RETRY = 12
STEPS_PER_RETRY_NODE = 8
STEP_BUDGET = int(0.9 * MAX_STEPS)
# The rank of the node that sent a report: the end of its VM's name (the report
# carries the name; a name of another attempt or job fails the int, an error).
RANK_EXPR = ('int(text.substring(event.http_request.body.instance, len(vm_base + "-" + '
             'string(attempt) + "-"), len(event.http_request.body.instance)))')


def success_steps(nodes: int) -> int:
    """Billed steps of a run whose every node exits 0 at once (no heartbeat)."""
    return STEPS_FIXED + STEPS_PER_NODE * nodes


def worst_steps(nodes: int, retries: int, timeout_s: int, heartbeat_s: int) -> int:
    """Every attempt used, every heartbeat over the whole timeout checking N nodes."""
    beats = math.ceil(timeout_s / heartbeat_s)
    return (success_steps(nodes) + beats * (STEPS_PER_BEAT + STEPS_PER_BEAT_NODE * nodes)
            + (retries + 1) * (STEPS_PER_RETRY + STEPS_PER_RETRY_NODE * nodes))


def gang_steps_problem(spec: JobSpec) -> str | None:
    """Why a multi-node job's worst case would pass the step limit (with the
    numbers and the shortest heartbeat that fits), or None."""
    nodes = spec.data["nodes"]
    if nodes <= 1:
        return None
    retries = spec.data["retries"]
    steps = worst_steps(nodes, retries, spec.timeout_s, spec.heartbeat_s)
    if steps <= STEP_BUDGET:
        return None
    from wfgen.job.rules import format_duration

    per_beat = STEPS_PER_BEAT + STEPS_PER_BEAT_NODE * nodes
    room = STEP_BUDGET - worst_steps(nodes, retries, 0, 1)
    beats = room // per_beat if room > 0 else 0
    shortest = math.ceil(spec.timeout_s / beats) if beats else 0
    fix = (f"use a heartbeat of at least {format_duration(shortest)}" if shortest
           else "use fewer retries")
    return (f"{nodes} nodes checked every {format_duration(spec.heartbeat_s)} for "
            f"{format_duration(spec.timeout_s)} need about {steps:,} workflow steps in the "
            f"worst case, over the {STEP_BUDGET:,} wfgen allows of the {MAX_STEPS:,} an "
            f"execution may run; {fix}")


def internal_domain(zone: str, project_expr: str) -> str:
    """The Workflows expression of the zonal internal DNS suffix of the VMs,
    `.ZONE.c.PROJECT.internal`."""
    return f'".{zone}.c." + {project_expr} + ".internal"'


def gang_values(spec: JobSpec, project_expr: str) -> dict[str, Any]:
    """What templates/gang.yaml.j2 needs; `nodes` is 0 for any other job."""
    nodes = spec.data["nodes"]
    if nodes <= 1:
        return {"nodes": 0}
    zone = spec.data["zone"]
    return {
        "nodes": nodes,
        "master_port": spec.data["master_port"],
        "node_domain_expr": internal_domain(zone, project_expr),
        # every node's entry in the result until its report replaces it
        "nodes_init": [{"rank": rank, "instance": None, "zone": zone, "exit_code": None,
                        "status": "stopped"} for rank in range(nodes)],
        "insert_parallelism": min(nodes, MAX_CONCURRENT_BRANCHES),
        "rank_expr": RANK_EXPR,
        "node_entry_expr": ('{"rank": rank, "instance": vm_base + "-" + string(attempt) + "-" + '
                            f'string(rank), "zone": "{zone}", "exit_code": '
                            'map.get(event.http_request.body, "exit_code"), '
                            '"status": event.http_request.body.status}'),
    }
