"""The template values of the capacity layer (wfgen.job.capacity): a job with one
zone and one machine choice renders its insert statically, as it always did
(no extra step); a job with other zones or choices gets the plan as data and
expressions that read this try's entry (`failover.at`), so its success path
costs the same steps and each zone it fails over costs a few."""

from __future__ import annotations

from typing import Any

from wfgen.job import capacity
from wfgen.job.quoting import expression_literal, quote
from wfgen.job.rules import format_duration

TRIED_KEPT = capacity.TRIED_KEPT


def _x(text: str) -> str:
    return "${" + text + "}"


def values(spec: Any, *, margin_s: int) -> dict[str, Any]:
    """What the template needs: `failover` says whether the plan has more than one
    entry; the *_yaml values are ready YAML (a literal, or an expression)."""
    plan: capacity.Plan = spec.plan
    data = spec.data
    first = plan.choices[0]
    zone = plan.entries[0][0]
    timeout_s = spec.timeout_s
    run_s = f"int(deadline - sys.now()) + {margin_s}"
    flex = any(c.provisioning == "flex-start" for c in plan.choices)
    subnet = data["network"]["subnetwork"]
    out: dict[str, Any] = {
        "failover": plan.failover,
        "flex": flex,
        "scheduling": capacity.scheduling(first),
        "reservation_affinity": capacity.reservation_affinity(first),
        "instance_params": capacity.instance_params(first, timeout_s),
        "max_run_expr": _capped(run_s, capacity.run_cap_s(first)),
        "stockout_regex": capacity.STOCKOUT_REGEX,
        "flex_insert_timeout_s": capacity.flex_wait_s(timeout_s) + 300,
        # what a VM that vanished was last seen as; never seen: still queued if flex-start
        "gone_was_expr": 'map.get(default(vm, {"status": "PENDING"}), "status")',
    }
    if not plan.failover:
        region = zone.rpartition("-")[0]
        out.update(
            zone_yaml=quote(zone), delete_zone_yaml=quote(zone),
            machine_type_yaml=quote(f"zones/{zone}/machineTypes/{first.type}"),
            subnetwork_yaml=quote(f"regions/{region}/subnetworks/{subnet}") if subnet else "",
            gpu_count_yaml=quote(str(first.gpu_count)))
        return out
    choice = "failover.choice"
    tasks = data["tasks"]
    pause = capacity.round_pause_s(plan, timeout_s, spec.heartbeat_s,
                                   tasks["parallelism"] if tasks else 1)
    out["round_pause_s"] = pause
    out["gone_was_expr"] = (f'map.get(default(vm, {{"status": if({choice}.scheduling.'
                            'provisioningModel == "FLEX_START", "PENDING", "")}), "status")')
    out.update(
        zone_yaml=_x("failover.at.zone"), delete_zone_yaml=_x("zone"),
        machine_type_yaml=_x("failover.at.machineType"),
        subnetwork_yaml=_x('"regions/" + failover.at.region + "/subnetworks/" + '
                           + expression_literal(subnet)) if subnet else "",
        gpu_count_yaml=_x(f"{choice}.gpus"),
        failover_scheduling=(f'map.merge({choice}.scheduling, {{"maxRunDuration": {{"seconds": '
                             f"if({run_s} > {choice}.cap, {choice}.cap, {run_s})}}}})"),
        failover_state=_state(plan, timeout_s, data["timeout"]),
        failover_order=plan.order_text().splitlines(),
        tried_stockout=_tried('"no capacity"'),
        tried_append=_tried("event.http_request.body.status"),
        failover_message=(
            'message + if(round_over, "; no zone has capacity for any choice: waiting '
            f'{format_duration(pause)}, then trying again from " + failover.plan[0].zone, '
            '"; trying " + '
            'failover.at.zone + if(failover.at.choice == from_choice, "", " with " + '
            'failover.choice.label))'),
        no_capacity_result=(
            'job_result({"status": "unavailable", "message": failover.no_capacity}, attempt, '
            'vm_base + "-" + string(attempt), start_time, failover.at.zone, '
            "failover.choice.label, failover.tried)"),
    )
    return out


def _capped(run_s: str, cap: int) -> str:
    if cap >= capacity.NO_CAP_S:
        return run_s
    return f"if({run_s} > {cap}, {cap}, {run_s})"


def _state(plan: capacity.Plan, timeout_s: int, timeout: str) -> dict[str, Any]:
    """The failover state run_job starts with (one parameter: a subworkflow of the
    generated workflow keeps to the 10 parameters the Workflows schema allows)."""
    entries = capacity.workflow_plan(plan)
    choices = capacity.workflow_choices(plan, timeout_s)
    return {
        "slot": 0, "at": entries[0], "choice": choices[entries[0]["choice"]], "tried": [],
        "plan": entries, "choices": choices, "slots": capacity.slot_of(plan),
        "next_zone": capacity.next_zone(plan),
        "no_capacity": (f"no capacity until the timeout ({timeout}) for any choice in any "
                        f"zone: {plan.everything()}"),
    }


def _tried(result: str) -> str:
    return (f"if(len(failover.tried) < {TRIED_KEPT}, list.concat(failover.tried, "
            f"{{\"zone\": failover.at.zone, \"choice\": failover.choice.label, "
            f"\"result\": {result}}}), failover.tried)")


def job_result_call(failover: bool) -> str:
    """The call that builds the result map at the end of run_job."""
    base = ('job_result(event.http_request.body, attempt, vm_base + "-" + string(attempt), '
            "start_time")
    if not failover:
        return base + ")"
    return base + ", failover.at.zone, failover.choice.label, failover.tried)"
