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
from wfgen.job.quoting import expression_literal, quote
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
# A compact placement policy (placement: compact) on the success path: its insert,
# the call that deletes it and the delete (plus one per retry of a delete refused
# while a node is still being deleted); at worst every retry of the delete.
PLACEMENT_STEPS = 3
PLACEMENT_STEPS_WORST = 3 + 10
# A zone the group fails over (no capacity for one of its nodes): the try, the
# callback, the parallel inserts, the cleanup's try, call and parallel deletes, the
# stockout check, the failover's assign, its log line and the start-over check;
# per node its insert, its delete and delete_vm's step. Measured (2, 3 and 4 nodes)
# by tests/local/test_gang_local.py.
FAILOVER_STEPS_FIXED = 11
FAILOVER_STEPS_PER_NODE = 3
# The rank of the node that sent a report: the end of its VM's name (the report
# carries the name; a name of another attempt or job fails the int, an error).
RANK_EXPR = ('int(text.substring(event.http_request.body.instance, len(vm_base + "-" + '
             'string(attempt) + "-"), len(event.http_request.body.instance)))')


def success_steps(nodes: int) -> int:
    """Billed steps of a run whose every node exits 0 at once (no heartbeat)."""
    return STEPS_FIXED + STEPS_PER_NODE * nodes


def worst_steps(nodes: int, retries: int, timeout_s: int, heartbeat_s: int,
                placement: bool = False) -> int:
    """Every attempt used, every heartbeat over the whole timeout checking N nodes
    (with placement, every attempt's policy deleted after all its retries)."""
    beats = math.ceil(timeout_s / heartbeat_s)
    per_retry = STEPS_PER_RETRY + STEPS_PER_RETRY_NODE * nodes + (
        PLACEMENT_STEPS_WORST if placement else 0)
    return (success_steps(nodes) + beats * (STEPS_PER_BEAT + STEPS_PER_BEAT_NODE * nodes)
            + (retries + 1) * per_retry)


def gang_steps_problem(spec: JobSpec) -> str | None:
    """Why a multi-node job's worst case would pass the step limit (with the
    numbers and the shortest heartbeat that fits), or None."""
    nodes = spec.data["nodes"]
    if nodes <= 1:
        return None
    retries = spec.data["retries"]
    placement = spec.data["placement"] == "compact"
    steps = worst_steps(nodes, retries, spec.timeout_s, spec.heartbeat_s, placement)
    if steps <= STEP_BUDGET:
        return None
    from wfgen.job.rules import format_duration

    per_beat = STEPS_PER_BEAT + STEPS_PER_BEAT_NODE * nodes
    room = STEP_BUDGET - worst_steps(nodes, retries, 0, 1, placement)
    beats = room // per_beat if room > 0 else 0
    shortest = math.ceil(spec.timeout_s / beats) if beats else 0
    fix = (f"use a heartbeat of at least {format_duration(shortest)}" if shortest
           else "use fewer retries")
    return (f"{nodes} nodes checked every {format_duration(spec.heartbeat_s)} for "
            f"{format_duration(spec.timeout_s)} need about {steps:,} workflow steps in the "
            f"worst case, over the {STEP_BUDGET:,} wfgen allows of the {MAX_STEPS:,} an "
            f"execution may run; {fix}")


def dns_project(project: str) -> str:
    """The project's part of an internal DNS name: a domain-scoped project id
    `example.com:my-proj` reads `my-proj.example.com` (Compute Engine's internal
    DNS page: VM.ZONE.c.PROJECT_ID.internal, the domain after the project)."""
    domain, colon, name = project.rpartition(":")
    return f"{name}.{domain}" if colon else name


def internal_dns_name(instance: str, zone: str, project: str) -> str:
    """A VM's zonal internal DNS name: `VM.ZONE.c.PROJECT.internal`."""
    return f"{instance}.{zone}.c.{dns_project(project)}.internal"


def dns_project_expr(project_expr: str) -> str:
    """dns_project() as a Workflows expression, for a project known only when the
    workflow runs (its GOOGLE_CLOUD_PROJECT_ID)."""
    parts = f'text.split({project_expr}, ":")'
    # (if() computes both of its values: parts[0] always exists)
    return f'{parts}[len({parts}) - 1] + if(len({parts}) > 1, "." + {parts}[0], "")'


def internal_domain(zone: str | None, project: str | None, project_expr: str,
                    zone_expr: str = "failover.at.zone") -> str:
    """The Workflows expression of the zonal internal DNS suffix of the VMs,
    `.ZONE.c.PROJECT.internal`; `zone` None: the zone of this try (`zone_expr`)."""
    dns = expression_literal(dns_project(project)) if project else dns_project_expr(
        project_expr)
    if zone is None:
        return f'"." + {zone_expr} + ".c." + {dns} + ".internal"'
    return f'".{zone}.c." + {dns} + ".internal"'


def failover_steps(nodes: int) -> int:
    """Billed steps of one zone (or machine choice) the group fails over: the
    callback, the inserts, the nodes' deletes and the failover's own steps
    (measured: tests/local/test_gang_local.py)."""
    return FAILOVER_STEPS_FIXED + FAILOVER_STEPS_PER_NODE * nodes


def gang_values(spec: JobSpec, project_expr: str) -> dict[str, Any]:
    """What templates/gang.yaml.j2 needs; `nodes` is 0 for any other job. With a
    capacity plan of several zones or machine choices (spec.plan.failover) the
    zone is this try's (failover.at.zone): the group moves as a whole."""
    nodes = spec.data["nodes"]
    if nodes <= 1:
        return {"nodes": 0}
    zone = spec.data["zone"]
    failover = spec.plan is not None and spec.plan.failover
    zone_expr = "failover.at.zone" if failover else expression_literal(zone)
    region = zone.rpartition("-")[0]
    region_expr = "failover.at.region" if failover else expression_literal(region)
    return {
        "nodes": nodes,
        "master_port": spec.data["master_port"],
        # a compact placement policy per attempt, NAME-EXECUTION-ATTEMPT, in the region
        # of this try's zone; each node names it in its resourcePolicies
        "placement": spec.data["placement"] == "compact",
        "policy_region_yaml": "${failover.at.region}" if failover else quote(region),
        "policy_url_expr": (f'"projects/" + {project_expr} + "/regions/" + {region_expr} + '
                            '"/resourcePolicies/" + vm_base + "-" + string(attempt)'),
        "node_domain_expr": internal_domain(None if failover else zone, spec.data["project"],
                                            project_expr),
        # every node's entry in the result until its report replaces it
        "nodes_init": [{"rank": rank, "instance": None, "zone": zone, "exit_code": None,
                        "status": "stopped"} for rank in range(nodes)],
        "insert_parallelism": min(nodes, MAX_CONCURRENT_BRANCHES),
        "rank_expr": RANK_EXPR,
        "node_entry_expr": ('{"rank": rank, "instance": vm_base + "-" + string(attempt) + "-" + '
                            f'string(rank), "zone": {zone_expr}, "exit_code": '
                            'map.get(event.http_request.body, "exit_code"), '
                            '"status": event.http_request.body.status}'),
    }
